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
_ARABIC_LETTER = re.compile("[\u0600-\u06ff\u0750-\u077f\u08a0-\u08ff]")
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


def _in_table(cp: int) -> bool:
    return any(lo <= cp < hi for lo, hi in _TABLE_RANGES)


@lru_cache(maxsize=4096)
def _fold(c: str) -> str:
    """The normalized form of one already lower-cased character."""
    if c == "\u03c2":  # final sigma depends on context in str.lower; one form keeps folding per character
        return "\u03c3"
    if not _in_table(ord(c)):
        return c
    if c in _DROPPED or c == "\u0640":
        return ""
    if c.isspace() or unicodedata.category(c)[0] in _SPACE_CATEGORIES:
        return " "
    out = []
    for d in unicodedata.normalize("NFKD", c):
        if unicodedata.category(d) in ("Mn", "Me", "Cf"):
            continue
        for low in d.lower():
            low = _ARABIC_FIXES.get(low, low)
            if not low:
                continue
            if not low.isalnum() and unicodedata.category(low)[0] in _SPACE_CATEGORIES:
                low = " "
            out.append(low)
    return "".join(out)


def fold_char(ch: str) -> str:
    """The normalized form of one character of the original text (possibly empty or several characters)."""
    return "".join(_fold(c) for c in ch.lower())


# Frequent 1:1 replacements, applied with str.replace (much faster than a regex sub with a callback).
_COMMON: list[tuple[str, str]] = []
# The characters news text is full of (each costs one scan of the text; the rare rest go through one regex).
_FREQUENT = ".,;:!?'\"()-\n\t/" + "أإآةىئؤ،؛؟" + "\u2019\u2018\u201c\u201d\u2013\u2014\u00ab\u00bb"


def _build() -> tuple[dict[str, str], re.Pattern[str], re.Pattern[str], frozenset[str]]:
    table: dict[str, str] = {}
    changing: list[str] = ["\u03c2"]
    dropped: list[str] = []
    for lo, hi in _TABLE_RANGES:
        for cp in range(lo, hi):
            if 0xD800 <= cp <= 0xDFFF:
                continue
            c = chr(cp)
            folded = _fold(c)
            if not folded:
                dropped.append(c)
            elif len(folded) != 1:
                changing.append(re.escape(c))
            elif folded != c:
                table[c] = folded
    table["\u03c2"] = "\u03c3"
    common = [c for c in _FREQUENT if c in table]
    _COMMON.extend((c, table.pop(c)) for c in common)
    mapped = re.compile("[" + "".join(re.escape(c) for c in table) + "]")
    return table, mapped, re.compile("[" + "".join(changing) + "]"), frozenset(dropped)


# _EXPANDING: characters that fold to several (or context-dependent); _DROP: those that fold to nothing
# (tashkeel, tatweel, zero-width marks), common in Arabic news and handled without the per-character path.
_TABLE, _MAPPED, _EXPANDING, _DROP = _build()
_DROPPING = re.compile("[" + "".join(re.escape(c) for c in sorted(_DROP)) + "]")


def _replace(m: re.Match[str]) -> str:
    return _TABLE[m.group()]


def _fast(text: str) -> str | None:
    low = text.lower()
    if len(low) != len(text) or _EXPANDING.search(low):
        return None
    if _DROPPING.search(low):
        low = _DROPPING.sub("", low)
    for old, new in _COMMON:
        if old in low:
            low = low.replace(old, new)
    return _MAPPED.sub(_replace, low)


def normalize(text: str) -> str:
    """Normalize text for matching (same function for queries and articles)."""
    fast = _fast(text)
    return fast if fast is not None else "".join(fold_char(c) for c in text)


def offset_map(text: str) -> list[int] | None:
    """Normalized index → original index, or None when they are the same (no character changed length)."""
    low = text.lower()
    if len(low) == len(text) and not _EXPANDING.search(low):
        if not _DROPPING.search(low):
            return None
        kept: list[int] = []  # the runs between dropped marks (tashkeel is a few percent of the letters)
        start = 0
        for m in _DROPPING.finditer(low):
            kept.extend(range(start, m.start()))
            start = m.end()
        kept.extend(range(start, len(text)))
        kept.append(len(text))
        return kept
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
    return _ARABIC_LETTER.search(word) is not None


def strip_article(term: str) -> str:
    """Drop a leading article (ال) from a normalized term: the proclitic rule covers ال/لل/وال alike."""
    if term.startswith("ال") and len(term.split(" ", 1)[0]) >= 5:
        return term[2:]
    return term


def clean_term(text: str) -> str:
    """Normalize a query term: normalized, spaces collapsed, stripped."""
    return " ".join(normalize(text).split())


def is_word_char(ch: str) -> bool:
    """Unicode-aware word character (letters and digits of any script)."""
    return ch.isalnum()
