"""The classifier service over a bus, and stories across languages, feeds and restarts."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from newsmon.bus import Bus, open_bus
from newsmon.classifier.service import ClassifierService
from newsmon.events import ARTICLES_TOPIC, DEAD_LETTER_TOPIC, MATCHES_TOPIC, Article, Match
from newsmon.settings import BusSettings, Settings, StoreSettings
from newsmon.store import Store

T0 = datetime(2024, 11, 30, 12, 0, tzinfo=UTC)


def article(aid: str, title: str, text: str, feed: str = "f1", hours: float = 0, lang: str | None = None,
            revision: int = 1) -> Article:
    return Article.model_validate({"id": aid, "revision": revision, "feed_id": feed, "title": title,
                                   "feed_url": f"https://{feed}.example/rss", "text": text, "lang": lang,
                                   "published": T0 + timedelta(hours=hours)})


ALEPPO_AR = article("ar1", "فصائل المعارضة تسيطر على مدينة حلب",
                    "أعلنت هيئة تحرير الشام وفصائل المعارضة السيطرة على معظم أحياء حلب بعد انسحاب قوات "
                    "النظام إثر هجوم واسع انطلق من ريف إدلب.", feed="aljazeera")
ALEPPO_EN = article("en1", "Rebels led by HTS seize most of Aleppo",
                    "Hayat Tahrir al-Sham and allied factions took control of much of Aleppo after "
                    "government troops withdrew, following an offensive launched from Idlib.", feed="reuters",
                    hours=3)
ALEPPO_EN2 = article("en2", "Syrian rebels take Aleppo citadel as army pulls back",
                     "Opposition fighters including HTS entered central Aleppo and raised their flag over "
                     "the citadel, after Syrian army units withdrew toward Hama. Fighters came from Idlib.",
                     feed="bbc", hours=5)
ISRAEL_DAMASCUS = article("en3", "Israeli air strikes hit military sites near Damascus",
                          "Israeli warplanes struck air defence batteries and weapons depots around Damascus "
                          "and the Mezzeh airbase, the Syrian army said.", feed="reuters", hours=4)
LIRA = article("en4", "Syrian lira slides", "The pound fell again in Damascus markets.", feed="reuters")


def make_settings(tmp_path: Path, **kw: Any) -> Settings:
    return Settings(data_dir=tmp_path, bus=BusSettings.model_validate({"url": f"sqlite:///{tmp_path}/bus.db"}),
                    store=StoreSettings.model_validate({"url": f"sqlite:///{tmp_path}/newsmon.db"}), **kw)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    s = await Store.open(f"sqlite:///{tmp_path}/newsmon.db")
    yield s
    await s.close()


@pytest.fixture
async def bus(tmp_path: Path) -> AsyncIterator[Bus]:
    b = open_bus(make_settings(tmp_path).bus)
    await b.start()
    yield b
    await b.stop()


async def run_once(settings: Settings, bus: Bus, store: Store) -> None:
    await ClassifierService(settings, bus, store).run(asyncio.Event(), until_idle=True)


async def read_all(bus: Bus, topic: str) -> list[tuple[bytes | None, bytes]]:
    """Everything on a topic so far (a fresh group reads from the start; partitions in any order)."""
    consumer = bus.consumer([topic], f"test-{topic}")
    await consumer.start()
    out: list[tuple[bytes | None, bytes]] = []
    try:
        while batch := await consumer.getmany(timeout=0.2, max_records=1000):
            out += [(m.key, m.value) for m in sorted(batch, key=lambda m: (m.partition, m.offset))]
    finally:
        await consumer.stop()
    return out


async def matches(bus: Bus) -> list[Match]:
    return [Match.model_validate_json(v) for _, v in await read_all(bus, MATCHES_TOPIC)]


async def test_service_publishes_matches_keyed_by_story(store: Store, bus: Bus, tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    for a in (ALEPPO_AR, ALEPPO_EN, ALEPPO_EN2, ISRAEL_DAMASCUS, LIRA):
        await bus.publish(ARTICLES_TOPIC, a.to_bytes(), key=a.id.encode())
    await bus.publish(ARTICLES_TOPIC, b"not json", key=b"x")
    await run_once(settings, bus, store)
    published = await read_all(bus, MATCHES_TOPIC)
    got = {m.article.id: m for m in await matches(bus) if m.match.topic == "syria-military-shifts"}
    assert set(got) == {"ar1", "en1", "en2", "en3"}
    assert got["ar1"].story_id == got["en1"].story_id == got["en2"].story_id
    assert got["en3"].story_id != got["ar1"].story_id
    assert got["ar1"].id == "ar1:1:syria-military-shifts"
    assert all(key == Match.model_validate_json(value).story_id.encode() for key, value in published)
    assert {p.id for p in got["ar1"].places} >= {"aleppo", "idlib"}
    assert "aleppo" in got["ar1"].focus  # what the alerter counts as a material new place
    assert got["ar1"].lang == "ar" and got["en1"].match.spans
    assert len(await read_all(bus, DEAD_LETTER_TOPIC)) == 1


async def test_redelivery_and_restart_keep_story_and_match_ids(store: Store, bus: Bus,
                                                               tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    await bus.publish(ARTICLES_TOPIC, ALEPPO_AR.to_bytes(), key=b"ar1")
    await run_once(settings, bus, store)
    first = await matches(bus)
    # The same article again (a redelivery), to a new service instance (a restart), then a new report.
    await bus.publish(ARTICLES_TOPIC, ALEPPO_AR.to_bytes(), key=b"ar1")
    await bus.publish(ARTICLES_TOPIC, ALEPPO_EN.to_bytes(), key=b"en1")
    await run_once(settings, bus, store)
    everything = await matches(bus)
    again = [m for m in everything[len(first):] if m.article.id == "ar1"]
    assert first and [m.id for m in again] == [m.id for m in first]
    assert {m.story_id for m in everything} == {first[0].story_id}


async def test_story_window_and_time(store: Store, bus: Bus, tmp_path: Path) -> None:
    settings = make_settings(tmp_path, classifier={"story_window": "6h"})
    late = article("en9", ALEPPO_EN.title, ALEPPO_EN.text, feed="other", hours=30)
    for a in (ALEPPO_AR, late):
        await bus.publish(ARTICLES_TOPIC, a.to_bytes())
    await run_once(settings, bus, store)
    ids = {m.article.id: m.story_id for m in await matches(bus)}
    assert ids["ar1"] != ids["en9"]


async def test_near_duplicates_join_even_without_shared_places(store: Store, bus: Bus,
                                                               tmp_path: Path) -> None:
    text = ("Syrian government forces launched a counteroffensive backed by Russian air strikes against "
            "opposition factions on several front lines on Tuesday, state media said, claiming gains.")
    a = article("d1", "Syrian army launches counteroffensive", text, feed="a")
    b = article("d2", "Syrian army launches counteroffensive - report", text + " More soon.", feed="b",
                hours=1)
    for x in (a, b):
        await bus.publish(ARTICLES_TOPIC, x.to_bytes())
    await run_once(make_settings(tmp_path), bus, store)
    ids = {m.article.id: m.story_id for m in await matches(bus)}
    assert ids["d1"] == ids["d2"]
