"""News items for the end-to-end tests, written for newsmon's tests (Arabic and English)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from xml.sax.saxutils import escape


@dataclass(frozen=True)
class Item:
    guid: str
    title: str
    text: str


# A paraphrase, in our own words, of the kind of report that started the project.
SYRIA_AR = Item(
    "e2e-ar-aleppo",
    "موسكو وطهران تعلنان دعم الأسد بعد سقوط حلب بيد فصائل المعارضة",
    "جددت روسيا وإيران دعمهما للرئيس السوري بعد أن سيطرت فصائل المعارضة المسلحة على مدينة حلب ومساحات "
    "واسعة في شمال البلاد خلال هجوم خاطف بدأ منتصف الأسبوع. وأكد الكرملين أن اتصالاته مع دمشق مستمرة، فيما "
    "قالت موسكو إن سلاح الجو الروسي يساند القوات الحكومية في التصدي للفصائل في محافظات إدلب وحماة وحلب. "
    "وأفاد مدونون عسكريون روس بأن قيادة القوات الروسية في سوريا شهدت تغييرا، إذ عُيّن جنرال جديد خلفا "
    "للقائد السابق.",
)

UNRELATED = [
    Item("e2e-en-football", "United come from behind to beat City in the derby",
         "Two second-half goals turned the derby around on Sunday as United climbed to third in the table. "
         "The manager praised his substitutes after the final whistle."),
    Item("e2e-en-markets", "Stocks edge higher as oil prices slip",
         "Shares rose modestly in early trading while crude futures fell for a second day on signs of weaker "
         "demand. Bond yields were little changed ahead of the inflation report."),
    Item("e2e-ar-football", "الهلال يتصدر الدوري بعد فوزه على النصر",
         "انتزع الهلال صدارة الدوري بفوز ثمين على النصر بهدفين مقابل هدف في مباراة مثيرة شهدت طرد لاعبين."),
    Item("e2e-ar-economy", "البنك المركزي يبقي أسعار الفائدة دون تغيير",
         "قرر البنك المركزي الإبقاء على أسعار الفائدة عند مستواها الحالي، مشيرا إلى تراجع التضخم للشهر الثالث."),
]


def rss(items: list[Item], now: datetime | None = None, lang: str = "ar") -> bytes:
    """An RSS 2.0 feed holding the items."""
    now = now or datetime.now(UTC)
    body = "".join(
        f'<item><guid isPermaLink="false">{escape(it.guid)}</guid><title>{escape(it.title)}</title>'
        f"<link>https://news.example.org/{escape(it.guid)}</link><description>{escape(it.text)}</description>"
        f"<pubDate>{format_datetime(now - timedelta(minutes=i))}</pubDate></item>"
        for i, it in enumerate(items))
    return (f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>e2e feed</title>'
            f"<link>https://news.example.org/</link><language>{lang}</language><description>test</description>"
            f"{body}</channel></rss>").encode()
