"""Word forms: English inflections, and how an Arabic term may be preceded and followed inside its word.

Arabic: proclitics (و ف ب ل ك ال and their combinations) may precede any term, imperfect and future prefixes
a verb stem written `~stem`; endings that keep a word's meaning may follow words of four letters or more.
"""

from __future__ import annotations

from newsmon.classifier import query as q
from newsmon.classifier.normalize import PROCLITICS

_VOWELS = set("aeiou")
# Imperfect (and future) prefixes of an Arabic verb: a `~stem` term also matches these before the stem.
VERB_PREFIXES = ("ي", "ت", "ن", "سي", "ست", "سن")


def inflections(word: str) -> set[str]:
    """Simple English inflections of a lower-case word (over-generation only adds patterns)."""
    if len(word) < 3 or not word.isascii() or not word.isalpha():
        return set()
    out = {word + "s", word + "es", word + "ed", word + "ing"}
    if word.endswith("e"):
        out |= {word + "d", word[:-1] + "ing"}
    if word.endswith("y") and word[-2] not in _VOWELS:
        out |= {word[:-1] + "ies", word[:-1] + "ied"}
    if len(word) <= 6 and word[-1] not in _VOWELS | {"w", "x", "y"} and word[-2] in _VOWELS \
            and word[-3] not in _VOWELS:
        out |= {word + word[-1] + "ed", word + word[-1] + "ing"}
    return out


# How an Arabic pattern may end inside its word: nothing after it, any letters (`*`), an ending that keeps the
# word's meaning (attached pronoun or accusative alif), or only an attached pronoun (the ت form of a final ة).
EXACT, PREFIX, ENDINGS, PRONOUN = 0, 1, 2, 3
PRONOUNS = frozenset(("ه", "ها", "هم", "هما", "هن"))
ENDING_SET = PRONOUNS | {"ا"}
LEADS = PROCLITICS  # what may precede a term in its word (a verb stem: VERB_LEADS)
VERB_LEADS = PROCLITICS | {p + v for p in ("", *PROCLITICS) for v in VERB_PREFIXES}
ARTICLE_LEADS = frozenset(p for p in PROCLITICS if p.endswith(("ال", "لل")))  # the article, after any proclitic


def arabic_patterns(stem: str, term: q.Term) -> list[tuple[str, int]]:
    """(pattern, end rule) of one Arabic form. Words of four letters or more (a phrase: its last word) also
    match with attached pronouns (ه ها هم هما هن) and the accusative alif, a final ة (normalized ه) in its ت
    form before a pronoun (`قيادة` → `قيادتها`) and in its dual and plural (`مسيرة` → `مسيرتين`, `مسيرات`), a
    sound plural without its ن (`مقاتلين` → `مقاتليهم`).
    Three-letter words keep no ending: after a proclitic their endings collide with other words (`زار` + ه =
    `زاره`, read in `وزارة`)."""
    if term.prefix:
        return [(stem, PREFIX)]
    if term.exact or len(stem.rsplit(" ", 1)[-1]) < 4:
        return [(stem, EXACT)]
    if stem.endswith("ه"):
        base = stem[:-1]  # its dual and sound plural keep the word: مسيرة → مسيرتين, مسيرتان, مسيرات
        return [(stem, EXACT), (base + "ت", PRONOUN), (base + "تين", ENDINGS), (base + "تان", ENDINGS),
                (base + "ات", ENDINGS)]
    if stem.endswith(("ين", "ون")):  # a sound plural drops its ن before a pronoun: مقاتلين → مقاتليهم
        return [(stem, ENDINGS), (stem[:-1], PRONOUN)]
    return [(stem, ENDINGS)]
