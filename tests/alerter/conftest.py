"""Fixtures for the alerter: a store, an in-memory bus, a loopback receiver, settings and match builders."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from newsmon.alerter.service import AlerterService
from newsmon.events import MATCHES_TOPIC, Article, Entity, Match, TopicMatch
from newsmon.settings import Settings
from newsmon.store import Store
from tests.alerter.membus import MemoryBus
from tests.support.receiver import Receiver

TOPIC = "syria-military-shifts"
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SECRET2 = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"

ALEPPO = Entity(id="aleppo", kind="place", name_en="Aleppo", name_ar="حلب", type="city", lat=36.2, lon=37.16)
HAMA = Entity(id="hama", kind="place", name_en="Hama", name_ar="حماة", type="city", lat=35.13, lon=36.75)
IDLIB = Entity(id="idlib", kind="place", name_en="Idlib", name_ar="إدلب", type="city", lat=35.93, lon=36.63)

# Test articles written for these tests (not copied from any outlet).
AR_TITLE = "فصائل مسلحة تسيطر على مواقع عسكرية في ريف حلب الشمالي"
AR_TEXT = "أفادت مصادر محلية بأن فصائل مسلحة تقدمت نحو مواقع للجيش في ريف حلب بعد اشتباكات استمرت ساعات."
EN_TITLE = "Armed factions take army positions north of Aleppo"
EN_TEXT = (
    "Local sources said armed factions advanced on army positions in the Aleppo countryside after clashes."
)


def match(
    story: str = "story-1",
    feed: str = "feed-1",
    article: str | None = None,
    *,
    lang: str = "ar",
    score: float = 0.7,
    places: tuple[Entity, ...] = (ALEPPO,),
    focus: tuple[Entity, ...] | None = None,
    title: str | None = None,
    minutes_ago: float = 1.0,
) -> Match:
    """A Match as the classifier would publish it (`focus`: the places in its title or lead, default all)."""
    aid = article or f"a-{story}-{feed}"
    now = datetime.now(UTC)
    art = Article(
        id=aid,
        feed_id=feed,
        feed_url=f"https://{feed}.example.org/rss",
        source=f"Outlet {feed}",
        url=f"https://{feed}.example.org/{aid}",
        title=title or (AR_TITLE if lang == "ar" else EN_TITLE),
        text=AR_TEXT if lang == "ar" else EN_TEXT,
        lang=lang,
        published=now - timedelta(minutes=minutes_ago + 1),
        fetched_at=now - timedelta(minutes=minutes_ago),
    )
    tm = TopicMatch(
        topic=TOPIC,
        title="Syria military shifts",
        severity="high",
        score=score,
        terms=["سيطر", "حلب"] if lang == "ar" else ["take", "aleppo"],
        explanation="control verb near a place",
    )
    return Match(id=f"{aid}:1:{TOPIC}", article=art, lang=lang, match=tm, places=list(places),
                 focus=[p.id for p in (places if focus is None else focus)], story_id=story)


def make_settings(tmp_path: Path, subscriptions: list[dict[str, Any]], **sections: Any) -> Settings:
    """Settings for a test: loopback allowed, short intervals, the given subscriptions."""
    delivery = {"retry_delays": [0.2, 0.2], "timeout": 2, "jitter": 0.0} | sections.pop("delivery", {})
    alerting = {"group_wait": 0, "group_interval": 0, "repeat_interval": 3600} | sections.pop("alerting", {})
    return Settings(
        data_dir=tmp_path,
        http={"allow_private_networks": True},
        delivery=delivery,
        alerting=alerting,
        subscriptions=subscriptions,
        **sections,
    )


def hook(sub_id: str, url: str, **extra: Any) -> dict[str, Any]:
    """A webhook subscription to TOPIC."""
    webhook = {"url": url, "secret": SECRET} | extra.pop("webhook", {})
    return {"id": sub_id, "topics": [TOPIC], "webhook": webhook} | extra


class Harness:
    """One alerter deployment in a test: bus + store survive `run` calls (a restart is another `run`)."""

    def __init__(self, settings: Settings, bus: MemoryBus, store: Store) -> None:
        self.settings, self.bus, self.store = settings, bus, store

    async def publish(self, *matches: Match) -> None:
        for m in matches:
            await self.bus.publish(MATCHES_TOPIC, m.to_bytes(), key=m.story_id.encode())

    async def drain(self, limit: float = 30.0) -> AlerterService:
        """Run the alerter until idle (a fresh service each time, like a restart)."""
        svc = AlerterService(self.settings, self.bus, self.store)
        async with asyncio.timeout(limit):
            await svc.run(asyncio.Event(), until_idle=True)
        return svc


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    s = await Store.open(f"sqlite:///{tmp_path / 'newsmon.db'}")
    yield s
    await s.close()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with Receiver() as rx:
        yield rx


@pytest.fixture
def harness(tmp_path: Path, store: Store) -> Callable[..., Harness]:
    def build(subscriptions: list[dict[str, Any]], **sections: Any) -> Harness:
        return Harness(make_settings(tmp_path, subscriptions, **sections), MemoryBus(), store)

    return build


class Mailbox:
    """aiosmtpd handler that keeps every message it receives."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.rcpts: list[list[str]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        msg = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(msg, EmailMessage)
        self.messages.append(msg)
        self.rcpts.append(list(envelope.rcpt_tos))
        return "250 OK"


@pytest.fixture
def smtp_server() -> Iterator[tuple[Mailbox, int]]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    box = Mailbox()
    ctl = Controller(box, hostname="127.0.0.1", port=port)
    ctl.start()
    try:
        yield box, port
    finally:
        ctl.stop()
