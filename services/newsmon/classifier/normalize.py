"""Text normalization shared by queries and articles (Arabic and Latin scripts).

Normalization is a per-character mapping, so the normalized text can be mapped back to the original offsets:
each character becomes NFKD without combining marks (this removes Arabic tashkeel and Latin accents, and turns
أ إ آ into ا), lower case, then ٱ→ا, ى→ي, ة→ه, tatweel and zero-width characters dropped, and punctuation
turned into spaces. Word boundaries are decided with `str.isalnum`, never with an ASCII `\\b`.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

_ARABIC_FIXES = {"\u0671": "\u0627", "\u0649": "\u064a", "\u0629": "\u0647", "\u0640": ""}
_DROPPED = {"\u200b", "\u200c", "\u200d", "\u200e", "\u200f", "\u2060", "\ufeff", "\u061c"}
_SPACE_CATEGORIES = ("P", "Z", "S", "C")
# Code point ranges where the mapping differs from plain `str.lower` (precomputed into one translate table).
_TABLE_RANGES = ((0x0000, 0x0250), (0x0300, 0x0370), (0x0600, 0x0700), (0x0750, 0x0780), (0x08A0, 0x0900),
                 (0x2000, 0x2070), (0x3000, 0x3040), (0xFB50, 0xFE00), (0xFE00, 0xFE10), (0xFE70, 0xFF00),
                 (0xFF00, 0xFF70))
PROCLITICS: frozenset[str] = frozenset(
    c + p + a
    for c in ("", "و", "ف")
    for p in ("", "ب", "ل", "ك")
    for a in ("", "ال")
    if c + p + a
) | {"لل", "ولل", "فلل"}


@lru_cache(maxsize=4096)
def fold_char(ch: str) -> str:
    """The normalized form of one character (possibly empty or several characters)."""
    if ch in _DROPPED or ch in ("\u0640",):
        return ""
    if ch.isspace() or unicodedata.category(ch)[0] in _SPACE_CATEGORIES:
        return " "
    out = []
    for c in unicodedata.normalize("NFKD", ch):
        cat = unicodedata.category(c)
        if cat in ("Mn", "Me", "Cf"):
            continue
        for low in c.lower():
            low = _ARABIC_FIXES.get(low, low)
            if low and not low.isalnum() and unicodedata.category(low)[0] in _SPACE_CATEGORIES:
                low = " "
            out.append(low)
    return "".join(out)


def _build_table() -> tuple[dict[int, str], re.Pattern[str]]:
    table: dict[int, str] = {}
    changing: list[str] = []
    for lo, hi in _TABLE_RANGES:
        for cp in range(lo, hi):
            ch = chr(cp)
            if 0xD800 <= cp <= 0xDFFF:
                continue
            folded = fold_char(ch)
            if folded != ch.lower():
                table[cp] = folded
            if len(folded) != 1:
                changing.append(re.escape(ch))
    return table, re.compile("[" + "".join(changing) + "]")


_TABLE, _LENGTH_CHANGING = _build_table()
fold_char.cache_clear()


def normalize(text: str) -> str:
    """Normalize text for matching (same function for queries and articles)."""
    norm = text.translate(_TABLE).lower()
    if len(norm) != len(text) or _LENGTH_CHANGING.search(text):
        return "".join(fold_char(c) for c in text)
    return norm


def offset_map(text: str) -> list[int] | None:
    """Normalized index → original index, or None when they are the same (no character changed length)."""
    if not _LENGTH_CHANGING.search(text) and len(text.translate(_TABLE).lower()) == len(text):
        return None
    out: list[int] = []
    for i, c in enumerate(text):
        out.extend([i] * len(fold_char(c)))
    out.append(len(text))
    return out


def to_original(omap: list[int] | None, start: int, end: int) -> tuple[int, int]:
    """Map a normalized [start, end) span back to the original text."""
    if omap is None:
        return start, end
    if end <= start:
        return omap[start], omap[start]
    return omap[start], omap[end - 1] + 1


def is_arabic(word: str) -> bool:
    """True when the word is written in Arabic script."""
    return any("\u0600" <= c <= "\u06ff" or "\u0750" <= c <= "\u077f" or "\u08a0" <= c <= "\u08ff" for c in word)


def strip_article(term: str) -> str:
    """Drop a leading Arabic article (ال) from a normalized term, so the proclitic rule covers ال/لل/وال alike."""
    if term.startswith("ال") and len(term.split(" ", 1)[0]) >= 5:
        return term[2:]
    return term


def clean_term(text: str) -> str:
    """Normalize a query term: normalized, spaces collapsed, stripped."""
    return " ".join(normalize(text).split())


def is_word_char(ch: str) -> bool:
    """Unicode-aware word character (letters and digits of any script)."""
    return ch.isalnum()
