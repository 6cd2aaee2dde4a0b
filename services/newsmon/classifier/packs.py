"""Topic packs: TOML files with named term groups and topics (ids, queries, weights, thresholds, severities).

A pack file holds `[groups]` (name = list of entries: `word`, `prefix*`, `several words`, `@other`) and
`[[topics]]`. Groups are shared by every pack; a later pack may add groups and add or replace topics (by id).
"""

from __future__ import annotations

import math
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from newsmon.classifier import query as q
from newsmon.errors import ConfigError, QuerySyntaxError

BUILTIN_DIR = Path(__file__).with_name("packs")
_ID = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")
_GROUP = re.compile(r"^[A-Za-z_][\w.-]*$")
SEVERITIES = ("info", "low", "medium", "high", "critical")


@dataclass(frozen=True)
class Topic:
    """One topic definition (the `topics` listing of the engine)."""

    id: str
    title: str
    description: str
    languages: tuple[str, ...]
    severity: str
    threshold: float
    query: str
    weights: dict[str, float]
    scale: float
    text_max: float  # what the text after its lead may add to the raw score at most (inf: no limit)
    source: str
    score_groups: tuple[str, ...]
    ast: q.Node = field(repr=False, compare=False)


@dataclass
class Packs:
    """Every group and topic loaded, in load order."""

    groups: dict[str, list[q.Term | q.Group]] = field(default_factory=dict)
    topics: dict[str, Topic] = field(default_factory=dict)

    def add_groups(self, raw: Any, source: str) -> None:
        if not isinstance(raw, dict):
            raise ConfigError(f"{source}: [groups] must be a table of name = [terms]")
        for name, entries in raw.items():
            if not _GROUP.match(name) or not isinstance(entries, list) or not entries:
                raise ConfigError(f"{source}: group {name!r} must be a non-empty list of strings")
            terms: list[q.Term | q.Group] = []
            for i, entry in enumerate(entries):
                if not isinstance(entry, str):
                    raise ConfigError(f"{source}: group {name} entry {i + 1} must be a string")
                try:
                    terms.append(q.parse_term(entry, source=f"{source}: group {name} entry {i + 1}"))
                except QuerySyntaxError as exc:
                    raise ConfigError(str(exc)) from None
            self.groups[name] = terms

    def check(self) -> None:
        """Every `@group` used exists and groups do not refer to themselves in a cycle."""
        for name in self.groups:
            self.expand(name, (), "group @" + name)
        for topic in self.topics.values():
            for name in topic.score_groups:
                self.expand(name, (), f"{topic.source}: topic {topic.id} score_groups")
            for leaf in q.walk_terms(topic.ast):
                if isinstance(leaf, q.Group):
                    self.expand(leaf.name, (), f"{topic.source}: topic {topic.id}")

    def expand(self, name: str, seen: tuple[str, ...], where: str) -> list[q.Term]:
        """All terms of a group, nested groups included."""
        if name not in self.groups:
            raise ConfigError(f"{where}: unknown group @{name}")
        if name in seen:
            raise ConfigError(f"{where}: group @{name} refers to itself")
        out: list[q.Term] = []
        for entry in self.groups[name]:
            if isinstance(entry, q.Group):
                out.extend(self.expand(entry.name, (*seen, name), where))
            else:
                out.append(entry)
        return out


def _num(raw: dict[str, Any], key: str, default: float, source: str) -> float:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{source}: {key} must be a number, got {value!r}")
    return float(value)


def parse_topic(raw: Any, source: str) -> Topic:
    """One `[[topics]]` table → Topic; ConfigError / QuerySyntaxError when invalid."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: each [[topics]] entry must be a table")
    tid = raw.get("id")
    if not isinstance(tid, str) or not _ID.match(tid):
        raise ConfigError(f"{source}: topic id {tid!r} must be lower-case letters, digits, '-', '_' or '.'")
    where = f"{source}: topic {tid}"
    unknown = set(raw) - {"id", "title", "description", "languages", "severity", "threshold", "query",
                          "weights", "scale", "text_max", "score_groups"}
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    text = raw.get("query")
    if not isinstance(text, str):
        raise ConfigError(f"{where}: query must be a string")
    severity = raw.get("severity", "info")
    if severity not in SEVERITIES:
        raise ConfigError(f"{where}: severity must be one of {', '.join(SEVERITIES)}")
    threshold = _num(raw, "threshold", 0.5, where)
    if not 0 <= threshold <= 1:
        raise ConfigError(f"{where}: threshold must be between 0 and 1")
    weights_raw = raw.get("weights", {})
    if not isinstance(weights_raw, dict) or set(weights_raw) - set(q.FIELDS):
        raise ConfigError(f"{where}: weights must be a table with title, lead and/or text")
    weights = {"title": 2.0, "text": 1.0} | {k: _num(weights_raw, k, 1.0, where) for k in weights_raw}
    weights.setdefault("lead", weights["text"])
    if _num(raw, "text_max", 0.0, where) < 0:
        raise ConfigError(f"{where}: text_max must not be negative")
    langs = raw.get("languages", [])
    if not isinstance(langs, list) or not all(isinstance(x, str) for x in langs):
        raise ConfigError(f"{where}: languages must be a list of language codes")
    score_groups = raw.get("score_groups", [])
    if not isinstance(score_groups, list) or not all(isinstance(g, str) for g in score_groups):
        raise ConfigError(f"{where}: score_groups must be a list of group names")
    return Topic(id=tid, title=str(raw.get("title", tid)), description=str(raw.get("description", "")),
                 languages=tuple(langs), severity=severity, threshold=threshold, query=text.strip(),
                 weights=weights, scale=_num(raw, "scale", 4.0, where),
                 text_max=_num(raw, "text_max", math.inf, where), source=source,
                 score_groups=tuple(g.lstrip("@") for g in score_groups),
                 ast=q.parse(text.strip(), source=where))


def load_text(packs: Packs, text: str, source: str) -> list[str]:
    """Add one pack's groups and topics; returns the topic ids it defined."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: invalid TOML: {exc}") from None
    unknown = set(data) - {"groups", "topics"}
    if unknown:
        raise ConfigError(f"{source}: unknown section(s) {', '.join(sorted(unknown))}")
    packs.add_groups(data.get("groups", {}), source)
    topics = data.get("topics", [])
    if not isinstance(topics, list):
        raise ConfigError(f"{source}: topics must be an array of tables ([[topics]])")
    ids = []
    for raw in topics:
        topic = parse_topic(raw, source)
        packs.topics[topic.id] = topic
        ids.append(topic.id)
    return ids


def load_paths(packs: Packs, paths: list[Path]) -> None:
    """Load pack files and directories of `*.toml` (sorted by name) in order."""
    for path in paths:
        if path.is_dir():
            files = sorted(path.glob("*.toml"))
        elif path.is_file():
            files = [path]
        else:
            raise ConfigError(f"topic pack path not found: {path}")
        for file in files:
            try:
                text = file.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise ConfigError(f"{file}: cannot read topic pack: {exc}") from None
            load_text(packs, text, str(file))
