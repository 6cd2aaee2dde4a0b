"""Normalization, the query language, matching rules, spans and scores, through the engine's surface."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from newsmon.classifier.engine import Engine, load_engine
from newsmon.classifier.matcher import Automaton
from newsmon.classifier.normalize import PROCLITICS, normalize, offset_map, to_original
from newsmon.classifier.query import Term, parse
from newsmon.errors import ConfigError, QuerySyntaxError


@pytest.fixture(scope="module")
def engine() -> Engine:
    return load_engine()


def draft(query: str, threshold: float = 0.0) -> str:
    return f'[[topics]]\nid = "t"\nthreshold = {threshold}\nquery = """{query}"""\n'


def hits(engine: Engine, query: str, text: str, title: str = "") -> list[tuple[str, int, int, str]]:
    c = engine.preview(title, text, draft_topic_toml=draft(query))
    m = c.scores.get("t")
    return [] if m is None else [(s.field, s.start, s.end, s.text) for s in m.spans]


@pytest.mark.parametrize("text", ["وحلب", "بحلب", "لحلب", "فبحلب", "والحلب", "حلب،", "(حلب)"],
                         ids=["wa", "bi", "li", "fa-bi", "wa-al", "comma", "parens"])
def test_arabic_proclitics_match(engine: Engine, text: str) -> None:
    assert hits(engine, "حلب", f"وصلت القوات {text} أمس")


@pytest.mark.parametrize("text", ["الحلبي", "حلبية", "محلب"], ids=["surname", "suffix", "inside"])
def test_arabic_no_match_inside_longer_word(engine: Engine, text: str) -> None:
    assert not hits(engine, "حلب", f"قال {text} اليوم")


def test_prefix_wildcard_matches_longer_words(engine: Engine) -> None:
    assert hits(engine, "حلب*", "قال الحلبي اليوم")
    assert hits(engine, "سيطر*", "وسيطرت الفصائل")
    assert hits(engine, "captur*", "They CAPTURED it")


def test_english_case_and_inflection(engine: Engine) -> None:
    assert hits(engine, "capture", "Rebels captured the town")
    assert hits(engine, '"air strike"', "Several air strikes hit")
    assert not hits(engine, "@place", "Hamas said")  # gazetteer names are not inflected


@pytest.mark.parametrize(("text", "place"), [("سيطرت على القريتين", "qaryatayn"), ("اشتدت المعارك بالرقة", "raqqa"),
                                            ("قصف للرقة", "raqqa"), ("سيطرت على قريتين في سومي", None),
                                            ("رقة القلب", None)],
                         ids=["article", "bi-article", "li-article", "two-villages", "tenderness"])
def test_an_arabic_place_name_keeps_its_article(engine: Engine, text: str, place: str | None) -> None:
    # القريتين (al-Qaryatayn) is also "two villages" without its article, الرقة (Raqqa) "tenderness"
    assert [p.id for p in engine.classify(text, "", "ar").places] == ([place] if place else [])


def test_a_group_entry_in_double_quotes_is_not_inflected(engine: Engine) -> None:
    pack = draft("@rail") + """[groups]\nrail = ['"train"', "convoy"]\n"""
    for text, found in [("a new train to Aleppo", ["train"]), ("troops in training", []),
                        ("two convoys left", ["convoys"])]:
        m = engine.preview("", text, draft_topic_toml=pack).scores.get("t")
        assert ([s.text for s in m.spans] if m else []) == found, text


def test_normalization_of_arabic_variants() -> None:
    assert normalize("أإآٱ") == "اااا"
    assert normalize("مدرسةُ عَلى") == "مدرسه علي"
    assert normalize("حـــلب") == "حلب"
    assert normalize("Ça VA") == "ca va"


def test_spans_point_into_the_original_text(engine: Engine) -> None:
    text = "قالت المصادر إنّ الفصائلَ سَيطرتْ على مدينةِ حَلَب، بعد معارك."
    spans = hits(engine, "حلب", text)
    assert spans == [("text", text.index("حَلَب"), text.index("حَلَب") + len("حَلَب"), "حَلَب")]
    spans = hits(engine, "سيطر*", text)
    assert [s[3] for s in spans] == ["سَيطر"]  # the prefix, diacritics included
    title = "Rebels take ALEPPO"
    assert hits(engine, "title:aleppo", "", title=title) == [("title", 12, 18, "ALEPPO")]


def test_boolean_operators_near_and_fields(engine: Engine) -> None:
    text = "the rebels captured the town of saraqeb yesterday"
    assert hits(engine, "rebels NEAR/3 captured", text)
    assert not hits(engine, "rebels NEAR/3 yesterday", text)
    assert not hits(engine, "rebels AND NOT saraqeb", text)
    assert hits(engine, "(rebels OR militants) saraqeb", text)
    assert not hits(engine, "title:rebels", text)
    assert hits(engine, "@place", text)


@pytest.mark.parametrize(("query", "line", "col"), [
    ("a AND (b", 1, 9), ("a\n  OR \"x", 2, 6), ("x*y", 1, 1), ("OR b", 1, 1), ("a )", 1, 3),
    ("a NEAR/2 (b AND c)", 1, 3), ("", 1, 1), ("a\nb\n   NOT", 3, 7),
], ids=["paren", "phrase", "inner-wildcard", "leading-or", "stray-paren", "near-and", "empty",
        "dangling-not"])
def test_syntax_errors_have_line_and_column(query: str, line: int, col: int) -> None:
    with pytest.raises(QuerySyntaxError) as err:
        parse(query)
    assert (err.value.line, err.value.column) == (line, col)
    assert f"{line}:{col}:" in str(err.value)


def test_bad_drafts_are_config_errors(engine: Engine) -> None:
    with pytest.raises(QuerySyntaxError):
        engine.preview("", "", draft_topic_toml=draft("a AND ("))
    with pytest.raises(ConfigError, match="unknown group @nope"):
        engine.preview("", "", draft_topic_toml=draft("@nope"))
    with pytest.raises(ConfigError, match="invalid TOML"):
        engine.preview("", "", draft_topic_toml="[[topics]\n")


def test_topics_listing_and_extra_dirs(tmp_path: Path) -> None:
    pack = '[[topics]]\nid = "syria-military-shifts"\nquery = "zzz"\n'
    (tmp_path / "x.toml").write_text(pack, encoding="utf-8")
    engine = load_engine(extra_topic_dirs=[tmp_path])
    topic = next(t for t in engine.topics if t.id == "syria-military-shifts")
    assert topic.query == "zzz"
    ids = {t.id for t in load_engine().topics}
    assert {"syria-military-shifts", "syria-humanitarian", "gaza-israel-war", "ukraine-war"} <= ids


def test_scores_and_fields(engine: Engine) -> None:
    c = engine.classify("Rebels capture Aleppo in lightning offensive",
                        "Opposition fighters seized Aleppo after Syrian government forces withdrew.")
    m = c.matches[0]
    assert m.topic == "syria-military-shifts" and 0.6 <= m.score <= 1.0
    assert set(m.fields) == {"title", "text"} and m.fields["title"] > 0
    assert "aleppo" in m.terms and c.lang == "en"
    assert [p.id for p in c.places] == ["aleppo"] and c.places[0].lat is not None



# Titles that use the forces' vocabulary for something that is not a military move, each next to a title of the
# same kind that is one (the exclusion must not swallow it).
NOT_A_MOVE = [
    ("Syrian army recruitment drive draws thousands in Homs", "IS attack on army recruitment centre in Homs kills 5"),
    ("حملة تجنيد للجيش السوري تستقطب الآلاف في حمص", "غارة إسرائيلية على معسكر تدريب للجيش السوري في حمص"),
    ("Syrian army firefighting helicopters battle Latakia forest fires",
     "Syrian army helicopters strike insurgents in Latakia forests"),
    ("Syrian army seizes huge captagon haul in raid near Damascus",
     "Jordan strikes drug smugglers' hideouts inside Syria"),
    ("Syrian woman searches for son who vanished at army checkpoint in 2013",
     "Gunmen kill two soldiers at army checkpoint in Daraa"),
    ("Washington weighing full withdrawal of troops from Syria, report says",
     "US troops withdraw from base in northeast Syria"),
    ("Hezbollah commander killed in Israeli strike in south Lebanon was veteran of Syria war",
     "Syrian army shells Hezbollah positions in Lebanon"),
    ("Turkey threatens new offensive against SDF in Syria", "Turkish drones strike SDF positions in Syria"),
    ("إسرائيل تحذر دمشق من نشر قوات في جنوب سوريا", "إسرائيل تحذر دمشق بعد غارات على مواقع عسكرية جنوب سوريا"),
    ("Syrian army officer killed in family dispute in Homs", "Syrian army officer killed in ambush in Homs"),
    ("مسيرة إسرائيلية تستهدف سيارة قرب الحدود السورية", "مسيرة إسرائيلية تستهدف سيارة في ريف القنيطرة"),
    ("Hundreds of Syrians cross from Lebanon as Israeli strikes intensify",
     "Hezbollah and Syrian forces clash on Lebanon border"),
    ("Manbij market reopens as traders return", "Car bomb kills 20 in Manbij market"),
]


@pytest.mark.parametrize(("negative", "positive"), NOT_A_MOVE, ids=[f"pair{i}" for i in range(len(NOT_A_MOVE))])
def test_military_words_without_a_military_move(engine: Engine, negative: str, positive: str) -> None:
    topic = "syria-military-shifts"
    assert topic not in {m.topic for m in engine.classify(negative, "").matches}
    assert topic in {m.topic for m in engine.classify(positive, "").matches}


_text = st.text(alphabet=st.characters(codec="utf-8"), max_size=80)


@settings(max_examples=200, deadline=None, database=None)
@given(_text)
def test_normalizer_never_crashes_and_is_stable(text: str) -> None:
    norm = normalize(text)
    assert normalize(norm) == norm


@settings(max_examples=200, deadline=None, database=None)
@given(_text)
def test_parser_never_crashes(text: str) -> None:
    try:
        parse(text)
    except QuerySyntaxError as exc:
        assert exc.line >= 1 and exc.column >= 1


@settings(max_examples=300, deadline=None, database=None)
@given(term=_text.filter(lambda t: any(c.isalnum() for c in normalize(t))), left=_text, right=_text)
def test_a_normalized_term_matches_itself_in_any_text(term: str, left: str, right: str) -> None:
    words = normalize(term).split()
    phrase = " ".join(words)
    query = '"' + phrase.replace('"', " ") + '"'
    if not phrase.replace('"', " ").strip():
        return
    try:
        node = parse(query)
    except QuerySyntaxError:
        return  # e.g. a lone '*' wildcard shape; the parser's own property covers these
    assert isinstance(node, Term)
    auto = Automaton()  # one term alone: compiling the full engine per example would be slow
    tid = auto.add(node)
    auto.compile()
    assert tid in auto.scan(normalize(f"{left} {phrase} {right}")).spans


@pytest.mark.parametrize("text", ["روسيا تسحب قواتها", "وسيسحب الجيش", "فتسحب الفصائل", "سحب القوات"],
                         ids=["ta", "wa-sa-ya", "fa-ta", "past"])
def test_arabic_verb_stem_matches_imperfect_and_future(engine: Engine, text: str) -> None:
    assert hits(engine, "~سحب", f"قالت المصادر إن {text} اليوم")


def test_arabic_verb_prefixes_only_with_a_verb_stem(engine: Engine) -> None:
    assert not hits(engine, "سحب", "قالت إن روسيا تسحب قواتها")
    assert not hits(engine, "~سحب", "قالت إن السحابة مرت")  # still a whole word, no inner match


@pytest.mark.parametrize(("term", "word"), [("قوات", "قواتها"), ("جنود", "جنودا"), ("قيادة", "قيادتها"),
                                            ("مقاتلين", "ومقاتليهم"), ("الفصائل", "بفصائلها"),
                                            ("مسيرة", "مسيرتين"), ("مسيرة", "مسيرتان"), ("مسيرة", "المسيرات")],
                         ids=["pronoun", "accusative", "ta-marbuta", "plural-pronoun", "article-pronoun",
                              "dual", "dual-nominative", "feminine-plural"])
def test_arabic_endings_keep_the_word(engine: Engine, term: str, word: str) -> None:
    text = f"قال المتحدث إن {word} وصلت"
    spans = hits(engine, term, text)
    assert spans and spans[0][3] in word


@pytest.mark.parametrize(("term", "text"), [("زار", "أعلنت وزارة الدفاع"), ("قوات", "قواتيات كثيرة"),
                                            ("قيادة", "قيادتا الجيش")],
                         ids=["short-word", "not-an-ending", "ta-marbuta-no-alif"])
def test_arabic_endings_do_not_overreach(engine: Engine, term: str, text: str) -> None:
    assert not hits(engine, term, text)


def test_terms_used_under_title_and_elsewhere_are_found_in_the_body(engine: Engine) -> None:
    query = "(title:banana AND apple) OR (apple NEAR/3 banana)"
    assert hits(engine, query, "an apple and a banana")
    assert not hits(engine, "title:banana AND apple", "an apple and a banana")
    assert hits(engine, "title:banana AND apple", "an apple", title="one banana")


_arabic_letter = st.sampled_from("ابتثجحخدذرزسشصضطظعغفقكلمنهويء")


@settings(max_examples=300, deadline=None, database=None)
@given(word=st.text(alphabet=_arabic_letter, min_size=4, max_size=9).filter(lambda w: not w.startswith("ا")),
       lead=st.sampled_from(["", *sorted(PROCLITICS)]),
       ending=st.sampled_from(["", "ه", "ها", "هم", "هما", "هن", "ا"]),
       left=_text, right=_text)
def test_an_arabic_word_matches_after_any_proclitic_and_before_any_ending(word: str, lead: str, ending: str,
                                                                          left: str, right: str) -> None:
    auto = Automaton()
    node = parse(word)
    assert isinstance(node, Term)
    tid = auto.add(node)
    auto.compile()
    surface = word
    if word.endswith("ه") and ending:  # a final ة (normalized ه) takes its ت form before a pronoun
        if ending == "ا":
            return
        surface = word[:-1] + "ت"
    assert tid in auto.scan(normalize(f"{left} {lead}{surface}{ending} {right}")).spans


def test_near_counts_whole_words_only(engine: Engine) -> None:
    # the rest of a prefix term's word, or a proclitic before an Arabic hit, is not a word in between
    assert hits(engine, "rebel* NEAR/4 taken", "rebels say they have taken the prison")
    assert not hits(engine, "rebel* NEAR/3 taken", "rebels say they have taken the prison")
    assert hits(engine, "الفصائل NEAR/2 حلب", "قالت الفصائل دخلت وحلب")



MARKS = ["\u064b", "\u064c", "\u064d", "\u064e", "\u064f", "\u0650", "\u0651", "\u0652", "\u0640", "\u200c", "\u200d"]
_AUTO = Automaton()
_HALAB = _AUTO.add(Term("حلب"))
_AUTO.compile()


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(min_value=0, max_value=50), st.sampled_from(MARKS)), max_size=10))
def test_tashkeel_anywhere_keeps_matches_and_spans(marks: list[tuple[int, str]]) -> None:
    # Arabic news is full of tanween, shadda and tatweel: they change neither the match nor where its span points
    plain = "قالت المصادر إن الفصائل دخلت مدينة حلب بعد معارك"
    text = plain
    for pos, mark in sorted(marks, reverse=True):
        text = text[:pos] + mark + text[pos:]
    norm = normalize(text)
    assert norm == normalize(plain)
    spans = _AUTO.scan(norm).spans[_HALAB]
    assert len(spans) == 1
    start, end = to_original(offset_map(text), *spans[0])
    assert normalize(text[start:end]) == "حلب" and text[start] == "ح"
