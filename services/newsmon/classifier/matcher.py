"""One Aho-Corasick automaton for every term of every topic and gazetteer name; queries run on the hits.

Hits are kept only at Unicode word boundaries. An Arabic term may follow proclitics (و ف ب ل ك ال and their
combinations) inside the same word; a term without `*` must end where the word ends, so `حلب` hits `وحلب` and
`لحلب` but not `الحلبي`. Arabic terms without `*` also match with attached pronouns and the accusative alif
(words of four letters or more: `قوات` finds `قواتها`, `جنود` finds `جنودا`, `قيادة` finds `قيادتها`);
gazetteer names match as written. A verb stem written `~سحب` also matches `يسحب`, `تسحب`, `ستسحب`. English
words also match simple inflections (-s, -es, -ed, -ing, -ies, -ied).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass, field

import ahocorasick

from newsmon.classifier import morphology as m
from newsmon.classifier import query as q
from newsmon.classifier.normalize import is_arabic, strip_article


@dataclass
class Hits:
    """Hits of one field: term index → [(start, end)] in the normalized text."""

    norm: str
    spans: dict[int, list[tuple[int, int]]] = field(default_factory=dict)


class Automaton:
    """Terms registered once (deduplicated), compiled into one automaton.

    Patterns carry their word start: a leading space, and for Arabic each proclitic (and, for a verb stem,
    each verb prefix) it may take; a Latin pattern also its trailing space unless `*`. What follows an Arabic
    pattern inside its word (an ending) is checked on each hit. (Bare patterns would make a smaller
    automaton, but one much slower to run over Arabic text.)
    """

    def __init__(self) -> None:
        self.terms: list[q.Term] = []
        self._index: dict[q.Term, int] = {}
        self._auto: ahocorasick.Automaton = ahocorasick.Automaton()
        self._body: ahocorasick.Automaton = self._auto
        # Latin pattern → (length of its leading space, length of its trailing space, term indices)
        self._patterns: dict[str, tuple[int, int, list[int]]] = {}
        # Arabic pattern (space, lead, form) → [(term index, length of the form, end rule)]
        self._arabic: dict[str, list[tuple[int, int, int]]] = {}

    def add(self, term: q.Term) -> int:
        """Register a term; returns its index."""
        tid = self._index.get(term)
        if tid is not None:
            return tid
        tid = len(self.terms)
        self.terms.append(term)
        self._index[term] = tid
        if is_arabic(term.text):
            stem = strip_article(term.text)
            leads: Iterable[str] = ("", *(m.VERB_LEADS if term.verb else m.LEADS))
            if term.article and stem != term.text:
                leads = m.ARTICLE_LEADS
            for form, rule in m.arabic_patterns(stem, term):
                for lead in leads:
                    self._arabic.setdefault(" " + lead + form, []).append((tid, len(form), rule))
            return tid
        trail = "" if term.prefix else " "
        for form in self._forms(term):
            entry = self._patterns.setdefault(" " + form + trail, (1, len(trail), []))
            entry[2].append(tid)
        return tid

    def index(self, term: q.Term) -> int:
        return self._index[term]

    @staticmethod
    def _forms(term: q.Term) -> set[str]:
        text = term.text
        out = {text}
        if not term.prefix and not term.exact:
            head, _, last = text.rpartition(" ")
            out |= {(head + " " + v if head else v) for v in m.inflections(last)}
        return out

    def compile(self, body_terms: set[int] | None = None) -> None:
        """Build the automaton; `body_terms`: the only terms an article's body needs (the others are used
        under `title:` alone), scanned there with a second, smaller automaton (None: one for both)."""
        self._auto = self._build(None)
        self._body = self._auto if body_terms is None else self._build(body_terms)

    def _build(self, keep: set[int] | None) -> ahocorasick.Automaton:
        auto = ahocorasick.Automaton()
        for pattern, (lead, trail, tids) in self._patterns.items():
            kept = tuple(t for t in tids if keep is None or t in keep)
            if kept:  # span of a hit ending at `end` of the padded text, normalized: (end - a, end - b)
                auto.add_word(pattern, (len(pattern) - lead, trail, kept, None))
        for pattern, rules in self._arabic.items():
            rkept = tuple(r for r in rules if keep is None or r[0] in keep)
            if rkept:
                auto.add_word(pattern, (0, 0, (), rkept))
        if len(auto):
            auto.make_automaton()
        return auto

    def scan(self, norm: str, body: bool = False) -> Hits:
        """All hits at word boundaries in one normalized text (boundaries are spaces after normalization);
        `body`: an article's body, where terms used only under `title:` are not looked for."""
        hits = Hits(norm)
        auto = self._body if body else self._auto
        if not len(auto) or not norm:
            return hits
        spans = hits.spans
        text = " " + norm + " "
        for end, (a, b, tids, rules) in auto.iter(text):
            if rules is None:  # Latin: the pattern carries its boundaries; a, b: offsets of the term in it
                span = (end - a, end - b)
                for tid in tids:
                    if tid in spans:
                        spans[tid].append(span)
                    else:
                        spans[tid] = [span]
                continue
            after = "" if text[end + 1] == " " else text[end + 1:text.find(" ", end + 1)]
            for tid, n, rule in rules:  # Arabic: what follows the form in its word must fit the rule
                if after and (rule == m.EXACT or (rule == m.ENDINGS and after not in m.ENDING_SET)):
                    continue
                if rule == m.PRONOUN and after not in m.PRONOUNS:
                    continue
                spans.setdefault(tid, []).append((end - n, end))
        return hits


SCOPE = ("title", "text")  # an unscoped term; `lead:` (the text's opening, engine.lead_end) only when asked for
_USED = {"lead": "text"}  # a hit in the lead is a hit in the text: explained and scored once, as text


@dataclass
class Evaluation:
    """The fields' hits and which term indices the query used positively."""

    fields: dict[str, Hits]
    used: set[tuple[str, int]] = field(default_factory=set)
    # Positions per (leaf, scope), shared by every topic evaluated on this article (groups recur in topics).
    positions: dict[tuple[q.Term | q.Group, tuple[str, ...]], list[tuple[str, int, int, int]]] = field(
        default_factory=dict)
    # Every term index hit in any field (filled on first use).
    hit_all: set[int] | None = None
    # Normalized → original offsets per field, for the explanation's spans (filled on first use).
    offset_maps: dict[str, list[int] | None] = field(default_factory=dict)


class Query:
    """A compiled query: groups expanded to term-index sets."""

    def __init__(self, node: q.Node, auto: Automaton, groups: dict[str, frozenset[int]]) -> None:
        self.node = node
        self.auto = auto
        self.groups = groups
        # Terms of which at least one must hit for the query to hold (None: no such set, e.g. a pure NOT).
        self.required = self._required(node)
        # Per NOT node, terms of which one must hit for its operand to hold: a title exclusion whose trigger
        # words are nowhere in the article is settled without walking it (queries carry many of them).
        self._not_required: dict[int, frozenset[int]] = {}
        self._index_nots(node)

    def _index_nots(self, node: q.Node) -> None:
        if isinstance(node, q.Not):
            req = self._required(node.child)
            if req is not None:
                self._not_required[id(node)] = req
        if isinstance(node, q.Not | q.Field):
            self._index_nots(node.child)
        elif isinstance(node, q.And | q.Or | q.Near):
            for child in node.children:
                self._index_nots(child)

    def _required(self, node: q.Node) -> frozenset[int] | None:
        if isinstance(node, q.Group):
            return self.groups[node.name]
        if isinstance(node, q.Term):
            return frozenset((self.auto.index(node),))
        if isinstance(node, q.Field):
            return self._required(node.child)
        if isinstance(node, q.Not):
            return None
        parts = [self._required(c) for c in node.children]
        if isinstance(node, q.Or):
            return None if any(p is None for p in parts) else frozenset().union(*parts)  # type: ignore[arg-type]
        known = [p for p in parts if p is not None]  # And, Near: every operand must hold
        return min(known, key=len) if known else None

    def may_hold(self, hit_tids: set[int]) -> bool:
        """False when the query cannot hold (none of its required terms hit): skips evaluating it."""
        return self.required is None or not self.required.isdisjoint(hit_tids)

    def _found(self, node: q.Term | q.Group, spans: dict[int, list[tuple[int, int]]]) -> Iterable[int]:
        if isinstance(node, q.Group):
            group = self.groups[node.name]
            return group.intersection(spans) if len(spans) < len(group) else [t for t in spans if t in group]
        tid = self.auto.index(node)
        return (tid,) if tid in spans else ()

    def evaluate(self, ev: Evaluation) -> bool:
        return self._eval(self.node, SCOPE, ev, True)

    def _eval(self, node: q.Node, scope: tuple[str, ...], ev: Evaluation, positive: bool) -> bool:
        if isinstance(node, q.Term | q.Group):
            found = False
            for f in scope:
                for tid in self._found(node, ev.fields[f].spans):
                    found = True
                    if not positive:
                        return True
                    ev.used.add((_USED.get(f, f), tid))
            return found
        if isinstance(node, q.Field):
            return self._eval(node.child, (node.field,), ev, positive)
        if isinstance(node, q.Not):
            req = self._not_required.get(id(node))
            if req is not None:
                if ev.hit_all is None:
                    ev.hit_all = set().union(*(h.spans for h in ev.fields.values()))
                if req.isdisjoint(ev.hit_all):
                    return True
            return not self._eval(node.child, scope, ev, False)
        if isinstance(node, q.And):
            return all(self._eval(c, scope, ev, positive) for c in node.children)
        if isinstance(node, q.Or):
            results = [self._eval(c, scope, ev, positive) for c in node.children]
            return any(results)
        return self._near(node, scope, ev, positive)

    def _positions(self, node: q.Node, scope: tuple[str, ...],
                   ev: Evaluation) -> list[tuple[str, int, int, int]]:
        """(field, start, end, term) of every hit of a NEAR operand, sorted."""
        if isinstance(node, q.Field):
            return self._positions(node.child, (node.field,), ev)
        if isinstance(node, q.Or | q.Near):
            return sorted(p for c in node.children for p in self._positions(c, scope, ev))
        assert isinstance(node, q.Term | q.Group)
        cached = ev.positions.get((node, scope))
        if cached is not None:
            return cached
        out: list[tuple[str, int, int, int]] = []
        ev.positions[(node, scope)] = out
        for f in scope:
            spans = ev.fields[f].spans
            for tid in self._found(node, spans):
                out.extend((f, s, e, tid) for s, e in spans[tid])
        out.sort()
        return out

    def _near(self, node: q.Near, scope: tuple[str, ...], ev: Evaluation, positive: bool) -> bool:
        first = self._positions(node.children[0], scope, ev)
        if not first:
            return False
        every = [first]
        for child in node.children[1:]:
            other = self._positions(child, scope, ev)
            if not other or not _any_within(first, other, node.distance, ev.fields):
                return False
            every.append(other)
        if positive:  # the explanation lists every hit of the operands (cheaper than tracking exact pairs)
            ev.used.update((_USED.get(f, f), tid) for positions in every for f, _, _, tid in positions)
        return True


def _any_within(first: list[tuple[str, int, int, int]], other: list[tuple[str, int, int, int]], distance: int,
                fields: dict[str, Hits]) -> bool:
    """Whether a hit of `first` has another hit of `other` at most `distance` words away (fewer than
    `distance` words between them, same field). A character window picks candidates; counting the words
    between them decides."""
    window = (distance + 2) * 40
    for f, s, e, tid in first:
        lo = bisect.bisect_left(other, (f, s - window))
        for of, os_, oe, otid in other[lo:]:
            if of != f or os_ > e + window:
                break
            if (os_, otid) == (s, tid):
                continue
            gap = fields[f].norm[e:os_] if os_ >= e else fields[f].norm[oe:s] if s >= oe else ""
            if _words_between(gap) < distance:
                return True
    return False


def _words_between(gap: str) -> int:
    """Whole words in the text between two hits: the rest of a hit's own word (after a prefix term, before it
    a proclitic) is not a word between them."""
    if gap[:1] not in ("", " "):
        gap = gap.partition(" ")[2]
    if gap[-1:] not in ("", " "):
        gap = gap.rpartition(" ")[0]
    return len(gap.split())
