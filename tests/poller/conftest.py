"""Poller test fixtures: a loopback feed server, a temp store, a tiny in-memory bus, feed builders."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis.configuration import set_hypothesis_home_dir

from newsmon.bus.base import Consumer, Outgoing
from newsmon.events import ARTICLES_TOPIC, Article
from newsmon.poller.service import PollerService
from newsmon.settings import Settings, load_settings
from newsmon.store import Store
from tests.support.feedserver import FeedServer

# hypothesis' cache stays out of the repo (a root `.hypothesis/` breaks collection under our norecursedirs).
set_hypothesis_home_dir(str(Path(tempfile.gettempdir()) / "newsmon-hypothesis"))


class MemoryBus:
    """Just enough of the Bus interface for the poller: an ordered list of published messages."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, bytes | None, bytes]] = []

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def publish(
        self, topic: str, value: bytes, key: bytes | None = None, headers: Sequence[tuple[str, bytes]] = ()
    ) -> None:
        self.messages.append((topic, key, value))

    async def publish_many(self, topic: str, messages: Sequence[Outgoing]) -> None:
        self.messages.extend((topic, m.key, m.value) for m in messages)

    def consumer(self, topics: Sequence[str], group: str) -> Consumer:
        raise NotImplementedError

    async def ping(self) -> bool:
        return True

    def articles(self) -> list[Article]:
        return [Article.model_validate_json(v) for t, _, v in self.messages if t == ARTICLES_TOPIC]

    def keys(self) -> list[bytes | None]:
        return [k for t, k, _ in self.messages if t == ARTICLES_TOPIC]


@pytest.fixture
def feedserver() -> Iterator[FeedServer]:
    with FeedServer() as srv:
        yield srv


@pytest.fixture
def bus() -> MemoryBus:
    return MemoryBus()


def make_settings(tmp_path: Path, feeds: list[dict[str, Any]], **http: Any) -> Settings:
    """Test settings: the feed server is on 127.0.0.1, so private networks are allowed unless overridden."""
    return load_settings(
        None,
        data_dir=tmp_path,
        feeds=feeds,
        http={
            "allow_private_networks": True,
            "connect_timeout": 2,
            "read_timeout": 2,
            "total_timeout": 5,
            **http,
        },
        poller={"per_host_interval": 0, "per_host_concurrency": 8, "jitter": 0},
    )


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    s = await Store.open(f"sqlite:///{tmp_path / 'newsmon.db'}")
    yield s
    await s.close()


async def poll_once(settings: Settings, bus: MemoryBus, store: Store) -> PollerService:
    """One burst of the poller over every due feed."""
    svc = PollerService(settings, bus, store)
    await asyncio.wait_for(svc.run(asyncio.Event(), until_idle=True), 30)
    return svc


def rss(
    items: Sequence[tuple[str, ...]],
    *,
    title: str = "Test feed",
    ttl: int | None = None,
    lang: str = "en",
) -> bytes:
    """An RSS 2.0 document from (guid, link, title[, description]) tuples."""
    parts = [
        f'<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel><title>{title}</title>'
        f"<link>http://news.example/</link><language>{lang}</language>"
    ]
    if ttl is not None:
        parts.append(f"<ttl>{ttl}</ttl>")
    for item in items:
        guid, link, head = item[0], item[1], item[2]
        desc = item[3] if len(item) > 3 else f"Body of {head}."
        guid_xml = f'<guid isPermaLink="false">{guid}</guid>' if guid else ""
        parts.append(
            f"<item>{guid_xml}<link>{link}</link><title>{head}</title><description>{desc}</description>"
            "<pubDate>Sun, 29 Nov 2026 02:00:00 GMT</pubDate></item>"
        )
    parts.append("</channel></rss>")
    return "".join(parts).encode()
