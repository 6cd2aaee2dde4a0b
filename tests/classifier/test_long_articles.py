"""Long articles: the lead (`lead:` scope and weight), the cap on the rest of the text, teaser titles and mask
phrases, through the engine's surface; then whole articles written for this test, each with war background."""

from __future__ import annotations

import math

import pytest

from newsmon.classifier.engine import LEAD_MAX, Engine, lead_end, load_engine
from newsmon.errors import ConfigError

FILLER = " ".join(["Shops opened late and the bakery queue was long again."] * 12)  # well past the lead


@pytest.fixture(scope="module")
def engine() -> Engine:
    return load_engine()


def score(engine: Engine, title: str, text: str, pack: str) -> float | None:
    m = engine.preview(title, text, draft_topic_toml=pack).scores.get("t")
    return None if m is None else m.score


def pack(query: str, extra: str = "") -> str:
    return f'[[topics]]\nid = "t"\nthreshold = 0.0\nscale = 4.0\n{extra}\nquery = """{query}"""\n'


def test_the_lead_ends_at_a_sentence_after_its_minimum() -> None:
    short = "Rebels entered the town at dawn."
    assert lead_end(short) == len(short)
    long = "Rebels entered the town at dawn after a night of shelling, residents said. " * 3 + FILLER
    end = lead_end(long)
    assert 200 <= end <= LEAD_MAX and long[end - 1] == "."
    assert lead_end("x" * 1000) == LEAD_MAX  # no sentence end: cut at the maximum


def test_lead_scope_sees_only_the_opening(engine: Engine) -> None:
    opening = "Rebels entered the town at dawn. "
    assert score(engine, "", opening + FILLER, pack("lead:rebels")) is not None
    assert score(engine, "", FILLER + " Rebels entered the town.", pack("lead:rebels")) is None
    assert score(engine, "", FILLER + " Rebels entered the town.", pack("rebels")) is not None
    assert score(engine, "", FILLER + " Rebels entered the town.", pack("text:rebels")) is not None


def test_the_rest_of_the_text_weighs_less_and_is_capped(engine: Engine) -> None:
    text = FILLER + " Alpha, beta and gamma were there."
    weights = "weights = { title = 2.0, lead = 1.0, text = 0.5 }"
    query = "alpha OR beta OR gamma OR delta"
    assert score(engine, "Delta report", text, pack(query, weights)) == round(1 - math.exp(-3.5 / 4), 4)
    capped = pack(query, weights + "\ntext_max = 0.6")
    assert score(engine, "Delta report", text, capped) == round(1 - math.exp(-2.6 / 4), 4)
    # the same terms in the lead are not capped and weigh `lead`
    in_lead = "Alpha, beta and gamma were there. " + FILLER
    assert score(engine, "Delta report", in_lead, capped) == round(1 - math.exp(-5.0 / 4), 4)


def test_a_lead_weighs_double_under_a_title_with_no_scored_term(engine: Engine) -> None:
    weights = "weights = { title = 2.0, lead = 1.0, text = 0.5 }"
    text = "Alpha was seen at dawn. " + FILLER
    assert score(engine, "Beta at night", text, pack("alpha OR beta", weights)) == round(1 - math.exp(-3.0 / 4), 4)
    assert score(engine, "Night at the river", text, pack("alpha OR beta", weights)) == round(
        1 - math.exp(-2.0 / 4), 4)


def test_words_inside_a_mask_phrase_are_no_evidence(engine: Engine) -> None:
    assert score(engine, "", "Prices have doubled since the fall of the old government.", pack("fall")) is None
    assert score(engine, "", "The fall of the city came at dawn.", pack("fall")) is not None
    assert score(engine, "", "الأسعار تضاعفت منذ سقوط الحكومة السابقة", pack("سقوط")) is None
    assert score(engine, "", "عملية الأسد الصاعد تستهدف منشآت", pack("@syria")) is None


def test_text_max_and_weights_are_checked(engine: Engine) -> None:
    with pytest.raises(ConfigError, match="text_max must not be negative"):
        engine.preview("", "", draft_topic_toml=pack("a", "text_max = -1"))
    with pytest.raises(ConfigError, match="weights must be a table with title, lead and/or text"):
        engine.preview("", "", draft_topic_toml=pack("a", "weights = { body = 1.0 }"))


# Whole articles, each with the war as background: what decides is the title and the lead.
FEATURE_EN = (
    "Damascus: a city waiting for spring",  # a feature title: no military word, no economy word
    "DAMASCUS - The Syrian pound held near 11,000 to the dollar on the black market this week, money changers in "
    "the capital said, as traders bet that Western governments would ease more sanctions before the winter. "
    "Importers of wheat and fuel said letters of credit were easier to open than at any time in a decade.\n\n"
    "The currency lost most of its value during the war that began in 2011, when the army fought rebel factions "
    "across the country and Russian jets and Iranian-backed militias helped Bashar al-Assad recapture Aleppo, "
    "Homs and the suburbs of Damascus. Air strikes and shelling destroyed factories in Aleppo's industrial zone, "
    "and the front lines cut farms off from the cities. After opposition fighters swept into the capital in "
    "December 2024, the new authorities dissolved the old army and merged armed factions into a new defence "
    "ministry.\n\n"
    "\"People are spending again,\" said a cloth merchant in the Hamidiyah market. Economists warned that the "
    "rally could fade if electricity stays rationed and public salaries are not raised.",
)
TEASER_EN = (
    "A quiet road near Jableh, then gunfire",
    "Gunmen ambushed a patrol of the General Security forces on the road between Jableh and Qardaha on Tuesday "
    "night, killing three members and wounding two, the interior ministry said, the deadliest attack on the "
    "security forces on the coast in weeks.\n\n"
    "The ministry said reinforcements were sent to the area and a search was under way in the hills above the "
    "road. Residents said checkpoints had been set up on the main roads into the town.\n\n"
    "The coast has been tense since March, when attacks on security forces by loyalists of the old government "
    "were followed by days of killings in Alawite villages. An inquiry later named hundreds of suspects. Farmers "
    "in the area said the harvest of olives had been delayed and schools in two villages stayed closed.",
)
FEATURE_AR = (
    "دمشق: مدينة تنتظر الربيع",
    "دمشق - حافظت الليرة السورية هذا الأسبوع على سعر قريب من 11 ألفا للدولار في السوق الموازية، بحسب صرافين في "
    "العاصمة، مع رهان التجار على أن تخفف الحكومات الغربية مزيدا من العقوبات قبل الشتاء. وقال مستوردو القمح والوقود "
    "إن فتح الاعتمادات بات أسهل من أي وقت خلال عقد.\n\n"
    "وخسرت العملة معظم قيمتها خلال الحرب التي بدأت عام 2011، حين خاض الجيش معارك مع فصائل المعارضة في أنحاء البلاد "
    "وساعدت الطائرات الروسية والميليشيات المدعومة من إيران بشار الأسد على استعادة حلب وحمص وريف دمشق. ودمرت الغارات "
    "والقصف مصانع المدينة الصناعية في حلب، وقطعت خطوط الجبهة الأرياف عن المدن. وبعد دخول فصائل المعارضة العاصمة في "
    "كانون الأول 2024، حلّت السلطات الجديدة الجيش السابق ودمجت الفصائل المسلحة في وزارة دفاع جديدة.\n\n"
    "وقال تاجر أقمشة في سوق الحميدية إن الناس عادوا إلى الشراء، فيما حذر اقتصاديون من أن التحسن قد يتلاشى إذا بقيت "
    "الكهرباء مقننة ولم ترفع الرواتب.",
)
TEASER_AR = (
    "طريق هادئ قرب جبلة... ثم رصاص",
    "نصب مسلحون كمينا لدورية من قوات الأمن العام على الطريق بين جبلة والقرداحة مساء الثلاثاء، ما أدى إلى مقتل "
    "ثلاثة من عناصرها وإصابة اثنين، بحسب وزارة الداخلية، في أعنف هجوم على قوات الأمن في الساحل منذ أسابيع.\n\n"
    "وقالت الوزارة إن تعزيزات أرسلت إلى المنطقة وإن عمليات تمشيط جارية في التلال المطلة على الطريق. وقال سكان إن "
    "حواجز أقيمت على المداخل الرئيسية للبلدة.\n\n"
    "ويسود التوتر الساحل منذ آذار، حين أعقبت هجمات موالين للحكومة السابقة على قوات الأمن أياما من القتل في قرى "
    "علوية، وسمّت لجنة تحقيق لاحقا مئات المشتبه بهم. وقال مزارعون إن قطاف الزيتون تأخر وإن مدارس قريتين بقيت مغلقة.",
)


@pytest.mark.parametrize(("negative", "positive"), [(FEATURE_EN, TEASER_EN), (FEATURE_AR, TEASER_AR)],
                         ids=["en", "ar"])
def test_long_articles_are_judged_by_title_and_lead(engine: Engine, negative: tuple[str, str],
                                                    positive: tuple[str, str]) -> None:
    topic = "syria-military-shifts"
    assert len(negative[1]) > LEAD_MAX and len(positive[1]) > LEAD_MAX
    assert topic not in {m.topic for m in engine.classify(*negative).matches}
    assert topic in {m.topic for m in engine.classify(*positive).matches}
