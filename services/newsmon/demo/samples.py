"""Sample news items for the demo, written for newsmon (not taken from any outlet), and an RSS renderer."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import format_datetime
from xml.sax.saxutils import escape


@dataclass(frozen=True)
class Item:
    """One sample news item."""

    guid: str
    title: str
    text: str
    minutes_ago: int


# An Arabic outlet: the story that matters, plus items that must not alert.
ARABIC_DESK = [
    Item("demo-ar-1",
         "روسيا وإيران تؤكدان دعم دمشق بعد سيطرة فصائل المعارضة على حلب",
         "أعلنت موسكو وطهران وقوفهما إلى جانب الحكومة السورية بعدما بسطت فصائل المعارضة المسلحة سيطرتها على "
         "مدينة حلب وعدد من البلدات في ريفها، إثر هجوم مفاجئ بدأ قبل أيام. وقالت وزارة الدفاع الروسية إن "
         "طائراتها الحربية شنت غارات على مواقع الفصائل في ريف إدلب وشمال حماة دعما للجيش السوري. وذكرت "
         "مصادر عسكرية روسية أن موسكو أعفت قائد قواتها في سوريا من منصبه وعينت جنرالا آخر بدلا منه.",
         20),
    Item("demo-ar-2",
         "المنتخب الوطني يتأهل إلى نهائي كأس العرب بعد فوز مثير",
         "حقق المنتخب الوطني لكرة القدم فوزا مثيرا في الدقائق الأخيرة من نصف النهائي، ليضرب موعدا في النهائي "
         "يوم الجمعة. وأشاد المدرب بروح اللاعبين وبالجماهير التي ملأت المدرجات.",
         45),
    Item("demo-ar-3",
         "قافلة مساعدات أممية تصل إلى ريف دمشق",
         "وصلت قافلة تابعة للأمم المتحدة تحمل مواد غذائية وأدوية إلى بلدات في ريف دمشق، وقال مسؤول في "
         "المنظمة إن القافلة ستوزع المساعدات على آلاف العائلات خلال الأسبوع الجاري.",
         60),
]

# An English wire: unrelated business and sport first; its report of the same story arrives later in the demo.
ENGLISH_WIRE = [
    Item("demo-en-1",
         "Central bank holds interest rates as inflation cools",
         "The central bank kept its benchmark rate unchanged on Thursday, saying inflation had eased for a third "
         "month in a row while wage growth remained firm.",
         30),
    Item("demo-en-2",
         "Late winner keeps title race alive",
         "A stoppage-time header gave the visitors a 2-1 win on Saturday and kept them two points behind the "
         "league leaders with four games to play.",
         50),
]

ENGLISH_LATE = Item(
    "demo-en-3",
    "Rebels take most of Aleppo as Russian jets strike Idlib and Hama",
    "Syrian opposition fighters have seized control of most of Aleppo, the country's second-largest city, after "
    "a surprise offensive launched last week. Russian warplanes bombed rebel positions in Idlib province and "
    "northern Hama in support of government forces, Moscow said, while Iran pledged to keep backing President "
    "Bashar al-Assad. Russian military bloggers reported that the commander of Russia's forces in Syria had been "
    "replaced.",
    1)


def render_rss(title: str, link: str, lang: str, items: list[Item], now: datetime) -> bytes:
    """An RSS 2.0 document for the items, newest first."""
    parts = [f'<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel>'
             f"<title>{escape(title)}</title><link>{escape(link)}</link><language>{lang}</language>"
             f"<description>newsmon demo feed</description>"]
    for item in sorted(items, key=lambda i: i.minutes_ago):
        published = format_datetime(now - timedelta(minutes=item.minutes_ago))
        parts.append(f'<item><guid isPermaLink="false">{item.guid}</guid><title>{escape(item.title)}</title>'
                     f"<link>{escape(link)}/{item.guid}</link><description>{escape(item.text)}</description>"
                     f"<pubDate>{published}</pubDate></item>")
    parts.append("</channel></rss>")
    return "".join(parts).encode("utf-8")
