"""The gazetteer: Syrian places (with coordinates) and actors, each with English and Arabic spellings.

Data lives in `places.tsv` and `actors.tsv` beside this module (tab-separated, `|` between spellings).
Names are matched through the same automaton as topic terms; they also become term groups usable in queries:
`@place` (every place), `@place_<type>`, `@actor_<type>` and `@syria_actor` (actors that are Syrian parties).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from newsmon.errors import ConfigError
from newsmon.events import Entity

_DIR = Path(__file__).parent


@dataclass(frozen=True)
class Gazetteer:
    """Entities and the spellings that name them."""

    entities: dict[str, Entity]
    names: dict[str, list[str]]  # entity id → spellings (English and Arabic)
    groups: dict[str, list[str]]  # group name → spellings


def _rows(path: Path, ncols: int) -> list[list[str]]:
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        cols = line.split("\t")
        if len(cols) != ncols:
            raise ConfigError(f"{path}:{n}: expected {ncols} tab-separated columns, got {len(cols)}")
        rows.append(cols)
    return rows


def _spellings(en: str, ar: str) -> list[str]:
    return [s.strip() for s in (en.split("|") + ar.split("|")) if s.strip()]


def load(directory: Path = _DIR) -> Gazetteer:
    """Read places.tsv and actors.tsv."""
    entities: dict[str, Entity] = {}
    names: dict[str, list[str]] = {}
    groups: dict[str, list[str]] = {"place": [], "syria_actor": []}
    for eid, typ, lat, lon, en, ar in _rows(directory / "places.tsv", 6):
        entities[eid] = Entity(id=eid, kind="place", name_en=en.split("|")[0], name_ar=ar.split("|")[0],
                               type=typ, lat=float(lat), lon=float(lon))
        names[eid] = _spellings(en, ar)
        groups["place"] += names[eid]
        groups.setdefault(f"place_{typ}", []).extend(names[eid])
    for eid, typ, syrian, en, ar in _rows(directory / "actors.tsv", 5):
        entities[eid] = Entity(id=eid, kind="actor", name_en=en.split("|")[0], name_ar=ar.split("|")[0],
                               type=typ)
        names[eid] = _spellings(en, ar)
        groups.setdefault(f"actor_{typ}", []).extend(names[eid])
        if syrian == "1":
            groups["syria_actor"] += names[eid]
    return Gazetteer(entities, names, groups)
