"""Publish an article through the real pipeline: bus → classifier → alerter (each run until idle)."""

from __future__ import annotations

import asyncio

from newsmon.alerter.service import AlerterService
from newsmon.classifier.service import ClassifierService
from newsmon.events import ARTICLES_TOPIC, Article
from tests.api.conftest import Api


def _article(id_: str, lang: str, source: str, url: str, title: str, text: str) -> Article:
    return Article(id=id_, revision=1, feed_id="cfg-feed", feed_url="http://127.0.0.1:9/feed.xml", source=source,
                   url=url, lang=lang, title=title, text=text)


# Written for these tests, in our own words.
ARABIC = _article(
    "a_api_test_aleppo", "ar", "Test Outlet", "https://example.org/aleppo",
    "فصائل المعارضة تسيطر على مدينة حلب والجيش السوري ينسحب",
    "أعلنت فصائل المعارضة المسلحة سيطرتها على معظم أحياء مدينة حلب بعد هجوم واسع، فيما انسحب الجيش "
    "السوري من مواقعه في ريف إدلب وحماة، وقالت روسيا إن طائراتها نفذت غارات لدعم القوات الحكومية.",
)
ENGLISH = _article(
    "a_api_test_aleppo_en", "en", "Wire", "https://example.org/aleppo-en",
    "Syrian rebels seize Aleppo as government troops withdraw",
    "Opposition fighters took control of most of Aleppo after a sweeping offensive, while the Syrian "
    "army pulled back from positions in Idlib and Hama provinces and Russian jets struck rebel columns.",
)
# A whole article: its lead reports Aleppo; Raqqa and Deir ez-Zor are in a background paragraph only.
LONG = _article(
    "a_api_test_aleppo_long", "en", "Wire", "https://example.org/aleppo-long",
    "Rebels push into Aleppo's western districts as army lines give way",
    "Opposition fighters entered the western districts of Aleppo on Friday after a two-day offensive, "
    "residents said, as army units pulled back toward the city centre and the airport road. Rebel "
    "commanders said their columns had reached the Hamdaniyah neighbourhood by nightfall.\n\n"
    "The city had been held by the government since 2016. In the years since, the front lines barely moved, "
    "while the war's other battles were fought far to the east, where Kurdish-led forces drove Islamic State "
    "out of Raqqa in 2017 and government troops lifted the siege of Deir ez-Zor the same year.",
)


async def publish_through_pipeline(api: Api, *articles: Article) -> None:
    """Put the articles on the bus and let the classifier and the alerter process everything."""
    for article in articles:
        await api.bus.publish(ARTICLES_TOPIC, article.to_bytes(), key=article.id.encode())
    stop = asyncio.Event()
    await ClassifierService(api.settings, api.bus, api.store).run(stop, until_idle=True)
    await AlerterService(api.settings, api.bus, api.store).run(stop, until_idle=True)
