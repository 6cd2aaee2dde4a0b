"""The topic query language: tokens → AST, with syntax errors at line:column.

    query   := or
    or      := and ("OR" and)*
    and     := near (["AND"] near)*          adjacency is AND
    near    := unary ("NEAR/" n unary)*     within n words, same field
    unary   := "NOT" unary | primary
    primary := "(" or ")" | FIELD ":" primary | "phrase words" | term | term* | ~term | @group

Terms are normalized like article text (see normalize.py); `term*` is a prefix wildcard. Operators are upper
case; lower-case `and`/`or`/`not` are ordinary words.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from newsmon.classifier.normalize import clean_term
from newsmon.errors import QuerySyntaxError

FIELDS = ("title", "lead", "text")  # lead: the opening of the text (see engine.lead_end)


@dataclass(frozen=True, slots=True)
class Term:
    """A word or phrase; `prefix`: trailing-* wildcard; `exact`: no English inflection (gazetteer names);
    `verb`: a leading `~` on an Arabic verb stem, which then also matches its imperfect and future forms
    (ي ت ن سي ست سن before the stem: `~سحب` finds `تسحب`, `يسحب`, `ستسحب`); `article`: an Arabic place name
    written with its article matches only with it (`الرقة`, `بالرقة`, not `رقة`, tenderness; `القريتين`, not
    `قريتين`, two villages)."""

    text: str
    prefix: bool = False
    exact: bool = False
    verb: bool = False
    article: bool = False


@dataclass(frozen=True, slots=True)
class Group:
    """A reference to a named term group (`@name`)."""

    name: str


@dataclass(frozen=True, slots=True)
class Not:
    child: Node


@dataclass(frozen=True, slots=True)
class And:
    children: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Or:
    children: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Near:
    children: tuple[Node, ...]
    distance: int


@dataclass(frozen=True, slots=True)
class Field:
    field: str
    child: Node


Node = Term | Group | Not | And | Or | Near | Field

_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<lp>\() | (?P<rp>\))
  | (?P<near>NEAR/(?P<n>\d+)(?![\w*]))
  | (?P<op>(?:AND|OR|NOT)(?![\w*/]))
  | (?P<field>(?:title|lead|text):)
  | (?P<phrase>"[^"]*")
  | (?P<open>")
  | (?P<group>@[\w.-]+)
  | (?P<word>[^\s()"]+)
""", re.VERBOSE)


@dataclass(frozen=True, slots=True)
class _Tok:
    kind: str
    value: str
    pos: int


def _where(src: str, pos: int) -> tuple[int, int]:
    line = src.count("\n", 0, pos) + 1
    return line, pos - (src.rfind("\n", 0, pos) + 1) + 1


class _Parser:
    def __init__(self, src: str, source: str) -> None:
        self.src, self.source = src, source
        self.toks = self._lex()
        self.i = 0

    def error(self, msg: str, pos: int) -> QuerySyntaxError:
        line, col = _where(self.src, pos)
        return QuerySyntaxError(msg, line, col, self.source)

    def _lex(self) -> list[_Tok]:
        toks: list[_Tok] = []
        for m in _TOKEN.finditer(self.src):
            kind = m.lastgroup or ""
            if kind == "n":
                kind = "near"
            if kind == "ws":
                continue
            if kind == "open":
                raise self.error("unterminated phrase (missing closing \")", m.start())
            value = m.group("n") if kind == "near" else m.group()
            toks.append(_Tok(kind, value, m.start()))
        toks.append(_Tok("end", "", len(self.src)))
        return toks

    def peek(self) -> _Tok:
        return self.toks[self.i]

    def take(self) -> _Tok:
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def parse(self) -> Node:
        if self.peek().kind == "end":
            raise self.error("empty query", 0)
        node = self.or_()
        tok = self.peek()
        if tok.kind != "end":
            raise self.error(f"unexpected {tok.value!r}", tok.pos)
        return node

    def or_(self) -> Node:
        items = [self.and_()]
        while self.peek().kind == "op" and self.peek().value == "OR":
            self.take()
            items.append(self.and_())
        return items[0] if len(items) == 1 else Or(tuple(items))

    def and_(self) -> Node:
        items = [self.near()]
        while True:
            tok = self.peek()
            if tok.kind == "op" and tok.value == "AND":
                self.take()
            elif tok.kind in ("end", "rp", "near") or (tok.kind == "op" and tok.value == "OR"):
                break
            items.append(self.near())
        return items[0] if len(items) == 1 else And(tuple(items))

    def near(self) -> Node:
        first = self.unary()
        items, distance = [first], 0
        while self.peek().kind == "near":
            tok = self.take()
            distance = max(distance, int(tok.value))
            items.append(self.unary())
        if len(items) == 1:
            return first
        for node in items:
            if not _positional(node):
                raise self.error("NEAR operands must be terms, phrases, groups or OR lists", tok.pos)
        return Near(tuple(items), distance)

    def unary(self) -> Node:
        tok = self.peek()
        if tok.kind == "op" and tok.value == "NOT":
            self.take()
            return Not(self.unary())
        return self.primary()

    def primary(self) -> Node:
        tok = self.take()
        if tok.kind == "lp":
            node = self.or_()
            close = self.take()
            if close.kind != "rp":
                raise self.error("missing closing parenthesis", close.pos)
            return node
        if tok.kind == "field":
            return Field(tok.value[:-1], self.primary())
        if tok.kind == "group":
            return Group(tok.value[1:])
        if tok.kind in ("phrase", "word"):
            return self.term(tok)
        if tok.kind == "end":
            raise self.error("unexpected end of query", tok.pos)
        raise self.error(f"unexpected {tok.value or tok.kind!r}", tok.pos)

    def term(self, tok: _Tok) -> Term:
        exact = tok.kind == "phrase"
        raw = tok.value[1:-1] if exact else tok.value
        verb = raw.startswith("~")
        raw = raw[1:] if verb else raw
        prefix = raw.endswith("*")
        text = clean_term(raw.rstrip("*"))
        if "*" in raw.rstrip("*"):
            raise self.error("a wildcard * is allowed only at the end of a term", tok.pos)
        if not text:
            raise self.error(f"empty term {tok.value!r}", tok.pos)
        if prefix and len(text) < 3:
            raise self.error("a prefix wildcard needs at least 3 characters", tok.pos)
        return Term(text, prefix=prefix, verb=verb)


def _positional(node: Node) -> bool:
    if isinstance(node, Term | Group):
        return True
    if isinstance(node, Or | Near):
        return all(_positional(c) for c in node.children)
    if isinstance(node, Field):
        return _positional(node.child)
    return False


def parse(src: str, source: str = "") -> Node:
    """Parse a query; QuerySyntaxError (with line and column) when it is not valid."""
    return _Parser(src, source).parse()


def parse_term(raw: str, source: str = "", exact: bool = False) -> Term | Group:
    """One group entry: `word`, `prefix*`, `several words` (phrase) or `@group`; `exact`: no inflection, as for
    an entry in double quotes (`"train"` is not `training`)."""
    raw = raw.strip()
    if raw.startswith("@"):
        return Group(raw[1:])
    exact = exact or (len(raw) > 1 and raw.startswith('"') and raw.endswith('"'))
    p = _Parser("", source)
    kind = "phrase" if " " in raw or raw.startswith('"') else "word"
    value = raw if raw.startswith('"') else (f'"{raw}"' if kind == "phrase" else raw)
    term = p.term(_Tok(kind, value, 0))
    return Term(term.text, term.prefix, True, term.verb) if exact and not term.prefix else term


def walk_terms(node: Node) -> list[Term | Group]:
    """Every leaf of the query, in order."""
    if isinstance(node, Term | Group):
        return [node]
    if isinstance(node, Not | Field):
        return walk_terms(node.child)
    return [leaf for child in node.children for leaf in walk_terms(child)]
