"""The classifier engine: packs + gazetteer in one automaton; classify = detect, normalize, scan, score.

Score of a topic whose query holds: 1 - exp(-raw / scale), where raw sums, over the distinct terms the query
used positively (only those of its `score_groups` when it has some), the field weight (title 2, text 1 by
default; `lead`, the text's opening, weighs as text unless the topic says otherwise) plus a quarter per repeat
(at most 4). A topic is listed only when its query holds and its score reaches its threshold.

The lead is the opening of the text (see `lead_end`): news is written with the event first and background
after, so a query may ask where a term is (`lead:`), and a topic may weigh the rest of a long text less.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from newsmon.classifier import gazetteer, lang, packs
from newsmon.classifier import query as q
from newsmon.classifier.matcher import Automaton, Evaluation, Hits, Query
from newsmon.classifier.normalize import normalize, offset_map, to_original
from newsmon.errors import ConfigError
from newsmon.events import Entity, Span, TopicMatch

if TYPE_CHECKING:
    from newsmon.classifier.semantic import SemanticScorer
    from newsmon.settings import Settings

MASK_GROUP = "mask"
TEASER = 2.0  # a lead's terms weigh this much more when the title has no scored term (a label, a teaser)
MAX_SPANS = 10
MAX_TERMS_SHOWN = 20
LEAD_MIN, LEAD_MAX = 200, 400  # the lead: the text up to the first sentence end after LEAD_MIN, at most LEAD_MAX
_SENTENCE_END = re.compile(r"[.!?؟…](?=\s)|\n")


@dataclass
class Classification:
    """What the engine found in one article."""

    lang: str | None
    matches: list[TopicMatch]
    places: list[Entity] = field(default_factory=list)
    actors: list[Entity] = field(default_factory=list)
    # every topic whose query held, over or under its threshold (preview, eval)
    scores: dict[str, TopicMatch] = field(default_factory=dict)
    # ids of the places and actors named in the title or the lead: where the event is (a long article names
    # half the country in its background). A matched article lists these first in `places` and `actors`;
    # stories group on these alone.
    focus: frozenset[str] = frozenset()


class Engine:
    """Compiled topics and gazetteer; `classify` is pure and thread-compatible (no shared mutable state)."""

    def __init__(self, loaded: packs.Packs, gaz: gazetteer.Gazetteer) -> None:
        self.packs = loaded
        self.gazetteer = gaz
        self.auto = Automaton()
        self._entity_of: dict[int, list[str]] = {}
        for eid, names in gaz.names.items():
            for name in names:
                tid = self.auto.add(_exact(name, place=gaz.entities[eid].kind == "place"))
                self._entity_of.setdefault(tid, []).append(eid)
        groups = {name: frozenset(self.auto.add(t) for t in loaded.expand(name, (), "group @" + name))
                  for name in loaded.groups}
        self.queries: dict[str, Query] = {}
        # Topics with score_groups score only the terms of those groups (the query still decides relevance).
        self._scored: dict[str, frozenset[int] | None] = {
            t.id: frozenset().union(*(groups[g] for g in t.score_groups)) if t.score_groups else None
            for t in loaded.topics.values()}
        body = set(self._entity_of)  # gazetteer names are looked for everywhere (places, actors)
        # Phrases whose words are evidence of nothing else ("since the fall of Assad" is a date, "Rising Lion" an
        # operation's name): hits inside them are dropped before any query runs.
        self._mask = groups.get(MASK_GROUP, frozenset())
        body |= self._mask
        for topic in loaded.topics.values():
            for leaf in q.walk_terms(topic.ast):
                if isinstance(leaf, q.Term):
                    self.auto.add(leaf)
            for leaf in _outside_title(topic.ast):
                body |= groups[leaf.name] if isinstance(leaf, q.Group) else {self.auto.index(leaf)}
            self.queries[topic.id] = Query(topic.ast, self.auto, groups)
        self.auto.compile(body)
        self.semantic: SemanticScorer | None = None  # classifier.semantic_weight > 0 (load_engine)
        self._labels = [t.text + ("*" if t.prefix else "") for t in self.auto.terms]

    @property
    def topics(self) -> list[packs.Topic]:
        return list(self.packs.topics.values())

    def classify(self, title: str, text: str, lang: str | None = None,
                 all_spans: bool = False) -> Classification:
        """Classify one article; only topics over their threshold are in `matches` (and have spans)."""
        body = self._masked(self.auto.scan(normalize(text), body=True))
        fields = {"title": self._masked(self.auto.scan(normalize(title))), "text": body}
        detected = lang or _detect(title, text)
        places, actors = self._entities({"title": fields["title"], "text": body})
        originals = {"title": title, "text": text}
        scores: dict[str, TopicMatch] = {}
        ev = Evaluation(fields)
        hit_tids = set(fields["title"].spans) | set(body.spans)
        for tid, query in self.queries.items():
            topic = self.packs.topics[tid]
            ev.used = set()
            if not hit_tids or not query.may_hold(hit_tids):
                continue
            _lead(fields, text)  # found when a query first runs (most articles run none)
            if not query.evaluate(ev):
                continue
            # with the semantic blend a topic may cross its threshold either way: keep every candidate's spans
            scores[tid] = self._explain(topic, ev, originals, all_spans or self.semantic is not None)
        if self.semantic is not None and scores:  # only candidates (a query held) are embedded
            scores = self.semantic.blend(title, text, scores, self.packs.topics)
        matches = [m for tid, m in scores.items() if m.score >= self.packs.topics[tid].threshold]
        matches.sort(key=lambda m: -m.score)
        focus = self._focus(fields, text) if matches else frozenset()
        if focus:  # the event's own places and actors first (the seed's "air support in Idlib, Hama" stays)
            places.sort(key=lambda p: p.id not in focus)
            actors.sort(key=lambda a: a.id not in focus)
        return Classification(detected, matches, places, actors, scores, focus)

    def _masked(self, hits: Hits) -> Hits:
        """`hits` without the hits of other terms that overlap a mask phrase."""
        masks = [span for tid in self._mask.intersection(hits.spans) for span in hits.spans[tid]]
        if not masks:
            return hits
        for tid in list(hits.spans):
            if tid in self._mask:
                continue
            kept = [(s, e) for s, e in hits.spans[tid] if not any(s < me and ms < e for ms, me in masks)]
            if kept:
                hits.spans[tid] = kept
            else:
                del hits.spans[tid]
        return hits

    def _focus(self, fields: dict[str, Hits], text: str) -> frozenset[str]:
        _lead(fields, text)
        return frozenset(eid for f in ("title", "lead") for tid in fields[f].spans
                         for eid in self._entity_of.get(tid, ()))

    def _entities(self, fields: dict[str, Hits]) -> tuple[list[Entity], list[Entity]]:
        counts: dict[str, int] = {}
        for hits in fields.values():
            for tid, spans in hits.spans.items():
                for eid in self._entity_of.get(tid, ()):
                    counts[eid] = counts.get(eid, 0) + len(spans)
        ranked = [self.gazetteer.entities[e] for e in sorted(counts, key=lambda e: -counts[e])]
        return [e for e in ranked if e.kind == "place"], [e for e in ranked if e.kind == "actor"]

    def _explain(self, topic: packs.Topic, ev: Evaluation, originals: dict[str, str],
                 all_spans: bool) -> TopicMatch:
        counts: dict[str, list[str]] = {}
        used = sorted(ev.used)
        for f, tid in used:
            n = len(ev.fields[f].spans[tid])
            counts.setdefault(self._labels[tid], []).append(f if n == 1 else f"{f} x{n}")
        contrib = self._contributions(topic, ev, used, untitled=not originals["title"].strip())
        raw = sum(contrib.values())
        score = round(1 - math.exp(-raw / topic.scale), 4)
        over = score >= topic.threshold
        fields = {f: round(score * v / raw, 4) for f, v in contrib.items()} if raw else {}
        shown = list(counts.items())[:MAX_TERMS_SHOWN]
        more = f" and {len(counts) - len(shown)} more" if len(counts) > len(shown) else ""
        found = "; ".join(f"{t} ({', '.join(w)})" for t, w in shown)
        explanation = (f"query of {topic.id} holds; {len(counts)} term(s): {found}{more}; "
                       f"score {score} {'over' if over else 'under'} threshold {topic.threshold}")
        spans = self._spans(used, ev, originals) if over or all_spans else []
        return TopicMatch(topic=topic.id, title=topic.title, severity=topic.severity, score=score,
                          terms=list(counts), spans=spans, fields=fields, explanation=explanation)

    def _contributions(self, topic: packs.Topic, ev: Evaluation, used: list[tuple[str, int]],
                       untitled: bool) -> dict[str, float]:
        """Field weight per scored term, plus a quarter per repeat (max 4).

        A place in the text counts once (a word hit by two terms, say `topple` and `toppled`, is one piece of
        evidence). A text term first found in the lead weighs `lead`; without a title, it weighs as a title.
        """
        scored = self._scored[topic.id]
        claimed: set[tuple[str, int]] = set()
        contrib: dict[str, float] = {}
        lead = ev.fields["lead"].spans
        # a title with no scored term (a label, a teaser: "Night of explosions south of Damascus") counts as none
        teaser = not any(f == "title" and (scored is None or tid in scored) for f, tid in used)
        rest = 0.0  # text after the lead, added at the end up to topic.text_max
        for f, tid in used:
            if scored is not None and tid not in scored:
                continue
            starts = {(f, s) for s, _ in ev.fields[f].spans[tid]} - claimed
            if not starts:
                continue
            claimed |= starts
            where = f
            if f == "text" and tid in lead and any(("text", s) in starts for s, _ in lead[tid]):
                where = "title" if untitled else "lead"
            value = topic.weights.get(where, 1.0) * (1 + 0.25 * min(len(starts) - 1, 4))
            if where == "lead" and teaser:
                value *= TEASER
            if where == "text":
                rest += value
            else:
                contrib[f] = contrib.get(f, 0.0) + value
        if rest:
            contrib["text"] = contrib.get("text", 0.0) + min(rest, topic.text_max)
        return contrib

    def _spans(self, used: list[tuple[str, int]], ev: Evaluation, originals: dict[str, str]) -> list[Span]:
        """The first occurrence of each used term (title first, then text order), at most MAX_SPANS."""
        firsts = sorted((f != "title", ev.fields[f].spans[tid][0], f, tid) for f, tid in used)[:MAX_SPANS]
        omaps = ev.offset_maps  # shared by the topics of one article
        spans = []
        for _, (s, e), f, tid in firsts:
            if f not in omaps:
                omaps[f] = offset_map(originals[f])
            os_, oe = to_original(omaps[f], s, e)
            # model_construct: values are built here and valid; validation would dominate the cost
            spans.append(Span.model_construct(field=f, start=os_, end=oe, term=self._labels[tid],  # type: ignore[arg-type]
                                              text=originals[f][os_:oe]))
        return spans

    def preview(self, title: str, text: str, lang: str | None = None,
                draft_topic_toml: str | None = None) -> Classification:
        """Classify with an extra draft pack (groups, topics); `scores` has every topic whose query held."""
        engine = self
        if draft_topic_toml is not None:
            loaded = packs.Packs(dict(self.packs.groups), dict(self.packs.topics))
            ids = packs.load_text(loaded, draft_topic_toml, "draft")
            if not ids:
                raise ConfigError("draft: no [[topics]] entry")
            loaded.check()
            engine = Engine(loaded, self.gazetteer)
            engine.semantic = self.semantic
        return engine.classify(title, text, lang, all_spans=True)


def lead_end(text: str) -> int:
    """Where the lead ends in `text`: at the first sentence end after LEAD_MIN characters (a short text is all
    lead), at most LEAD_MAX."""
    if len(text) <= LEAD_MAX:
        return len(text)
    end = _SENTENCE_END.search(text, LEAD_MIN, LEAD_MAX)
    return end.end() if end else LEAD_MAX


def _lead(fields: dict[str, Hits], text: str) -> None:
    """Add the lead's hits to `fields` once (a short text is all lead: its hits are the text's)."""
    if "lead" not in fields:
        body = fields["text"]
        short = len(text) <= LEAD_MAX
        fields["lead"] = body if short else _opening(body, len(normalize(text[:lead_end(text)])))


def _opening(body: Hits, cut: int) -> Hits:
    """The hits of `body` that start before `cut` (the lead), on the same normalized text."""
    spans = {}
    for tid, found in body.spans.items():
        kept = [s for s in found if s[0] < cut]
        if kept:
            spans[tid] = kept
    return Hits(body.norm, spans)


def _outside_title(node: q.Node, in_title: bool = False) -> list[q.Term | q.Group]:
    """The leaves of a query that may match outside a `title:` scope (the body must be scanned for them)."""
    if isinstance(node, q.Term | q.Group):
        return [] if in_title else [node]
    if isinstance(node, q.Field):
        return _outside_title(node.child, node.field == "title")
    if isinstance(node, q.Not):
        return _outside_title(node.child, in_title)
    return [leaf for child in node.children for leaf in _outside_title(child, in_title)]


def _exact(name: str, place: bool) -> q.Term:
    """A gazetteer name as written; a place's Arabic name keeps its article (`article`)."""
    term = q.parse_term(name, "gazetteer", exact=True)
    assert isinstance(term, q.Term)
    return replace(term, article=True) if place else term


def _detect(title: str, text: str) -> str | None:
    return lang.detect(title, text)


def load_engine(settings: Settings | None = None, extra_topic_dirs: Sequence[Path] = ()) -> Engine:
    """Built-in packs, then `settings.classifier.topics_dirs`, then `extra_topic_dirs` (later ids replace)."""
    loaded = packs.Packs()
    gaz = gazetteer.load()
    loaded.groups.update({name: [_exact(n, place=name.startswith("place")) for n in names]
                          for name, names in gaz.groups.items()})
    dirs = [packs.BUILTIN_DIR]
    if settings is not None:
        dirs += list(settings.classifier.topics_dirs)
    packs.load_paths(loaded, dirs + list(extra_topic_dirs))
    loaded.check()
    engine = Engine(loaded, gaz)
    if settings is not None and settings.classifier.semantic_weight > 0:
        from newsmon.classifier import semantic  # imported only when on: numpy and the model cost start-up time

        engine.semantic = semantic.load(settings.classifier.semantic_weight, engine.topics)
    return engine
