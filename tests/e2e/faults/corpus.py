"""A generated stream of news items (Arabic and English), written for these tests from our own templates.

`build()` spreads `feeds × per_feed` items over the feeds; `stories` of them are Syria military-shift reports that
must each make exactly one NEW alert, the rest are negatives: Syria news that is not military (aid, economy,
sport, trade), fighting elsewhere (no Syria), and unrelated news. Each item has a release time (seconds after the
stream starts) at which the feed server starts listing it.

The alerting stories are kept clearly distinct: each names its own place and is dated its own `SPACING` apart,
more than the classifier's story window the tests configure (`STORY_WINDOW`), so no two can join one story; the
Syria negatives get their own dates on that grid too.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

STORY_WINDOW = "1h"
SPACING = timedelta(hours=3)

# (English, Arabic) names of specific places from the gazetteer.
PLACES = [
    ("Aleppo", "حلب"), ("Idlib", "إدلب"), ("Hama", "حماة"), ("Homs", "حمص"), ("Latakia", "اللاذقية"),
    ("Tartus", "طرطوس"), ("Deir ez-Zor", "دير الزور"), ("Raqqa", "الرقة"), ("Hasakah", "الحسكة"),
    ("Qamishli", "القامشلي"), ("Daraa", "درعا"), ("Suwayda", "السويداء"), ("Quneitra", "القنيطرة"),
    ("Manbij", "منبج"), ("Kobani", "كوباني"), ("Afrin", "عفرين"), ("Tal Rifaat", "تل رفعت"),
    ("Jarablus", "جرابلس"), ("Azaz", "اعزاز"), ("Tal Abyad", "تل أبيض"), ("Ras al-Ain", "رأس العين"),
    ("Ain Issa", "عين عيسى"), ("Tabqa", "الطبقة"), ("Saraqeb", "سراقب"), ("Maarat al-Numan", "معرة النعمان"),
    ("Khan Sheikhoun", "خان شيخون"), ("Jisr al-Shughur", "جسر الشغور"), ("Atareb", "الأتارب"),
    ("Safira", "السفيرة"), ("Rastan", "الرستن"), ("Talbiseh", "تلبيسة"), ("Salamiyah", "السلمية"),
    ("Mhardeh", "محردة"), ("Suran", "صوران"), ("Morek", "مورك"), ("Latamneh", "اللطامنة"),
    ("Zabadani", "الزبداني"), ("Douma", "دوما"), ("Harasta", "حرستا"), ("Darayya", "داريا"),
    ("Abu Kamal", "البوكمال"), ("Jableh", "جبلة"), ("Baniyas", "بانياس"), ("Qardaha", "القرداحة"),
    ("Sanamayn", "الصنمين"), ("Bosra", "بصرى الشام"), ("Deir Hafer", "دير حافر"), ("Maskana", "مسكنة"),
]

_FORCES_EN = ["Rebel fighters", "Syrian army troops", "Opposition forces", "Government forces",
              "Turkish-backed factions", "Syrian Democratic Forces"]
_FORCES_AR = ["فصائل المعارضة", "قوات الجيش السوري", "الفصائل المسلحة", "القوات الحكومية", "قوات سوريا الديمقراطية"]

_MIL_TITLES_EN = [
    "{force} capture {place} after days of heavy fighting",
    "Airstrikes pound {place} as {force} launch a new offensive",
    "{force} withdraw from {place} under heavy artillery shelling",
    "Russian warplanes bomb {place} to halt a rebel offensive",
    "{force} seize control of {place} in a lightning offensive",
]
_MIL_LINES_EN = [
    "Fierce clashes broke out on the front lines around {place} before dawn, residents said.",
    "Military sources reported dozens of airstrikes on supply lines leading to {place}.",
    "Reinforcements were sent toward {place} as the army tried to shore up its positions.",
    "Drone strikes hit an ammunition depot on the edge of {place}, according to monitors.",
    "The offensive is the largest change in territorial control in the area for years.",
    "Commanders said troops had encircled the remaining military positions near {place}.",
]
_MIL_TITLES_AR = [
    "{force} تسيطر على {place} بعد معارك عنيفة",
    "غارات جوية روسية على {place} والقوات الحكومية تتصدى لهجوم الفصائل",
    "انسحاب {force} من {place} تحت القصف المدفعي",
    "اشتباكات عنيفة في محيط {place} و{force} تتقدم نحو مواقع عسكرية",
]
_MIL_LINES_AR = [
    "وقالت مصادر ميدانية إن الطيران الحربي شن غارات مكثفة على خطوط الإمداد المؤدية إلى {place}.",
    "ودفعت القوات الحكومية بتعزيزات عسكرية إلى جبهات القتال قرب {place}.",
    "وأفاد مراسلون بأن المعارك تركزت على خطوط التماس شمال {place} منذ فجر اليوم.",
    "واستهدفت طائرات مسيرة مخازن أسلحة في ريف {place} وفق مصادر محلية.",
    "ويعد هذا التقدم أكبر تغير في خريطة السيطرة العسكرية في المنطقة منذ سنوات.",
]

_SYRIA_OTHER = [  # Syria, not military: may match other topics, never the military one
    ("en", "Aid convoy reaches families in {place} as winter sets in",
     "Trucks carrying food, blankets and medicine arrived in {place} on Tuesday, the Red Crescent said. "
     "Aid workers said thousands of displaced families still need shelter before the snow."),
    ("en", "Syria's lira slides to a record low as fuel prices climb in {place}",
     "Traders in {place} said bread and fuel prices rose again this week as the currency weakened. "
     "Economists expect inflation to stay high while imports remain expensive."),
    ("en", "Syrian national team beats Jordan in a friendly played in {place}",
     "Two goals in the second half gave the Syrian side a comfortable win in front of a full stadium in "
     "{place}. The coach praised his young players ahead of the regional cup."),
    ("en", "Farmers around {place} expect a better wheat harvest this year",
     "Rain in the spring helped wheat fields around {place}, farmers in Syria said, though the cost of "
     "fertiliser and fuel remains a worry for many families."),
    ("ar", "قافلة مساعدات إنسانية تصل إلى {place} وتوزع الأغذية على النازحين",
     "وصلت قافلة مساعدات تابعة للهلال الأحمر إلى {place} في سوريا محملة بالأغذية والأدوية، وقال عاملون في "
     "الإغاثة إن آلاف العائلات النازحة ما زالت بحاجة إلى مأوى قبل الشتاء."),
    ("ar", "ارتفاع أسعار الخبز والوقود في {place} مع تراجع الليرة السورية",
     "قال تجار في {place} إن أسعار الخبز والوقود ارتفعت هذا الأسبوع مع تراجع سعر صرف الليرة السورية، "
     "ويتوقع اقتصاديون استمرار التضخم."),
    ("ar", "المنتخب السوري يفوز على نظيره الأردني وديا في {place}",
     "حقق المنتخب السوري لكرة القدم فوزا مستحقا على نظيره الأردني في مباراة ودية أقيمت في {place} أمام "
     "جمهور غفير."),
]

_ELSEWHERE = [  # fighting, but not in Syria
    ("en", "Drones strike a fuel depot near Kharkiv overnight",
     "Air defence units shot down most of the drones, officials in Ukraine said, but a fire broke out at the "
     "depot on the outskirts of Kharkiv."),
    ("en", "Heavy fighting reported around El Fasher in Sudan",
     "Paramilitary forces shelled the city for a third day, aid groups in Sudan said, as civilians fled."),
    ("ar", "اشتباكات عنيفة في محيط الفاشر بالسودان",
     "قالت مصادر محلية في السودان إن قوات الدعم السريع قصفت أحياء في الفاشر لليوم الثالث."),
]

_UNRELATED = [
    ("en", "United come from behind to beat City in the derby",
     "Two second-half goals turned the derby around on Sunday as United climbed to third in the table."),
    ("en", "Stocks edge higher as oil prices slip",
     "Shares rose modestly in early trading while crude futures fell for a second day on weaker demand."),
    ("en", "New smartphone sales beat expectations in the holiday quarter",
     "The company said demand for its latest model was strongest in Asia and Europe."),
    ("en", "Storm brings heavy rain and strong winds to the coast",
     "Forecasters warned of flooding in low-lying areas and advised drivers to avoid coastal roads."),
    ("en", "City council approves a new cycling network",
     "The plan adds forty kilometres of protected lanes over the next three years."),
    ("ar", "الهلال يتصدر الدوري بعد فوزه على النصر",
     "انتزع الهلال صدارة الدوري بفوز ثمين على النصر بهدفين مقابل هدف في مباراة مثيرة."),
    ("ar", "البنك المركزي يبقي أسعار الفائدة دون تغيير",
     "قرر البنك المركزي الإبقاء على أسعار الفائدة عند مستواها الحالي مشيرا إلى تراجع التضخم."),
    ("ar", "افتتاح معرض الكتاب بمشاركة مئات دور النشر",
     "افتتح معرض الكتاب أبوابه أمام الزوار بمشاركة مئات من دور النشر العربية والأجنبية."),
    ("ar", "موجة حر تضرب المنطقة وتحذيرات من ارتفاع درجات الحرارة",
     "حذرت الأرصاد الجوية من موجة حر تستمر حتى نهاية الأسبوع مع ارتفاع كبير في درجات الحرارة."),
]


@dataclass(frozen=True)
class Item:
    """One news item of the stream."""

    guid: str
    feed: int
    title: str
    text: str
    lang: str
    published: datetime
    release: float  # seconds after the stream starts
    alerts: bool  # a Syria military-shift story that must make one NEW alert

    @property
    def url(self) -> str:
        return f"https://news.example.org/{self.guid}"


@dataclass(frozen=True)
class Corpus:
    """The items of the stream, per feed in release order."""

    items: list[Item]
    feeds: int
    duration: float

    def of_feed(self, feed: int) -> list[Item]:
        return [i for i in self.items if i.feed == feed]

    @property
    def expected(self) -> dict[str, Item]:
        """The alerting items by URL (the alert's `url`)."""
        return {i.url: i for i in self.items if i.alerts}


def _military(rng: random.Random, n: int, lang: str) -> tuple[str, str]:
    en, ar = PLACES[n % len(PLACES)]
    if lang == "en":
        place, force = en, rng.choice(_FORCES_EN)
        title = rng.choice(_MIL_TITLES_EN).format(force=force, place=place)
        lines = rng.sample(_MIL_LINES_EN, 3)
        text = " ".join(line.format(place=place) for line in lines) + f" The fighting was in Syria's {place} area."
    else:
        place, force = ar, rng.choice(_FORCES_AR)
        title = rng.choice(_MIL_TITLES_AR).format(force=force, place=place)
        lines = rng.sample(_MIL_LINES_AR, 3)
        text = " ".join(line.format(place=place) for line in lines)
    return title[0].upper() + title[1:], text


def build(feeds: int = 50, per_feed: int = 104, stories: int = 60, duration: float = 60.0,
          seed: int = 7, now: datetime | None = None) -> Corpus:
    """The stream: `feeds × per_feed` items released over `duration` seconds, `stories` of them alerting."""
    rng = random.Random(seed)
    now = now or datetime.now(UTC)
    total = feeds * per_feed
    kinds = ["story"] * stories + ["syria"] * (total // 10) + ["elsewhere"] * (total // 20)
    kinds += ["unrelated"] * (total - len(kinds))
    rng.shuffle(kinds)
    slot = 0  # the date grid of Syria items, SPACING apart
    items: list[Item] = []
    for n, kind in enumerate(kinds):
        feed = n % feeds
        release = round(rng.uniform(0.0, duration), 3)
        published = now - timedelta(minutes=rng.uniform(1, 600))
        if kind == "story":
            lang = "en" if slot % 2 else "ar"
            title, text = _military(rng, slot, lang)
        elif kind == "syria":
            lang, title, text = rng.choice(_SYRIA_OTHER)
            place = PLACES[rng.randrange(len(PLACES))][0 if lang == "en" else 1]
            title, text = title.format(place=place), text.format(place=place)
        else:
            lang, title, text = rng.choice(_ELSEWHERE if kind == "elsewhere" else _UNRELATED)
        if kind in ("story", "syria"):
            published, slot = now - SPACING * (slot + 1), slot + 1
        items.append(Item(f"f{feed:02d}-{n:05d}-{kind}", feed, title, text, lang, published, release,
                          kind == "story"))
    items.sort(key=lambda i: i.release)
    return Corpus(items, feeds, duration)
