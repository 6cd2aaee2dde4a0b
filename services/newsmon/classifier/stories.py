"""Stories: articles about one event, across feeds and languages, share a story id.

An article joins the best recent story (last article within `settings.classifier.story_window`) of the same
kind (its top topic) when either its text is a near-duplicate of the story's first article in the same
language (bottom-k MinHash over word 3-shingles, similarity ≥ 0.5), or it shares a specific place with the
story and at least two specific entities (places other than the
country, armed groups) or half of them. Otherwise it starts a story. Entities are those of the title and the
lead (`Classification.focus`): a long article names half the country in its background, and grouping on those
would fold unrelated events into one story.
State lives in the store (store/stories.py), so it survives restarts and is shared by every worker.
"""

from __future__ import annotations

import hashlib
import zlib
from dataclasses import dataclass

from newsmon.classifier.engine import Classification
from newsmon.classifier.normalize import normalize
from newsmon.events import Article
from newsmon.store import stories as db
from newsmon.store.base import Store

SKETCH = 48
DUPLICATE = 0.5
_GENERIC_PLACES = {"country"}
_SPECIFIC_ACTORS = {"armed_group"}


@dataclass(frozen=True)
class StoryKey:
    """What an article brings to story grouping."""

    kind: str
    kinds: tuple[str, ...]
    entities: frozenset[str]
    places: frozenset[str]
    lang: str
    sketch: tuple[int, ...]
    when: float


def sketch(text: str) -> tuple[int, ...]:
    """Bottom-k MinHash of the word 3-shingles of a text (stable across processes)."""
    words = normalize(text).split()[:400]
    shingles = {" ".join(words[i:i + 3]) for i in range(max(1, len(words) - 2))}
    return tuple(sorted({zlib.crc32(s.encode()) for s in shingles})[:SKETCH])


def similarity(a: tuple[int, ...] | list[int], b: tuple[int, ...] | list[int]) -> float:
    """Estimated Jaccard similarity of two bottom-k sketches."""
    if not a or not b:
        return 0.0
    union = sorted(set(a) | set(b))[:SKETCH]
    both = set(a) & set(b)
    return sum(1 for h in union if h in both) / len(union)


def key_of(article: Article, c: Classification) -> StoryKey:
    """The grouping features of a classified article (it must have at least one match)."""
    places = frozenset(p.id for p in c.places if p.type not in _GENERIC_PLACES and p.id in c.focus)
    actors = frozenset(a.id for a in c.actors if a.type in _SPECIFIC_ACTORS and a.id in c.focus)
    when = (article.published or article.fetched_at).timestamp()
    return StoryKey(kind=c.matches[0].topic, kinds=tuple(m.topic for m in c.matches),
                    entities=places | actors, places=places, lang=c.lang or "und",
                    sketch=sketch(article.title + " " + article.text),
                    when=when)


def score(key: StoryKey, story: db.StoryRow) -> float:
    """How well an article fits a story; 0 when it does not belong."""
    dup = similarity(key.sketch, story.signatures.get(key.lang, []))
    if dup >= DUPLICATE:
        return 1.0 + dup
    shared = key.entities & set(story.entities)
    if not shared & key.places:
        return 0.0
    jaccard = len(shared) / len(key.entities | set(story.entities))
    if len(shared) >= 2 or jaccard >= 0.5:
        return jaccard
    return 0.0


def story_id_for(article_id: str) -> str:
    """A new story's id, derived from its first article (so a retried first attempt gets the same id)."""
    return "s_" + hashlib.sha256(article_id.encode()).hexdigest()[:20]


class StoryAssigner:
    """Finds or creates the story of a classified article."""

    def __init__(self, store: Store, window: float) -> None:
        self.store = store
        self.window = window

    async def assign(self, article: Article, c: Classification) -> str:
        """The article's story id (the same one on every redelivery)."""
        known = await db.story_of(self.store, article.id)
        if known is not None:
            return known
        key = key_of(article, c)
        found = await db.candidates(self.store, list(key.kinds), key.when - self.window)
        ranked = sorted(((score(key, s), s) for s in found if s.first_seen <= key.when + self.window),
                        key=lambda x: -x[0])
        if ranked and ranked[0][0] > 0:
            story = ranked[0][1]
            story.last_seen = max(story.last_seen, key.when)
            story.signatures.setdefault(key.lang, list(key.sketch))
            return await db.attach(self.store, article.id, story, is_new=False, seen=key.when)
        story = db.StoryRow(id=story_id_for(article.id), kind=key.kind, first_seen=key.when,
                            last_seen=key.when, entities=sorted(key.entities),
                            signatures={key.lang: list(key.sketch)})
        return await db.attach(self.store, article.id, story, is_new=True, seen=key.when)
