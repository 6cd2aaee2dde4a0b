"""How the poller publishes: one batch per document, remembered only once the whole batch is on the bus."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from newsmon.bus.base import Outgoing
from newsmon.bus.sqlite import SqliteBus
from newsmon.errors import BusError
from newsmon.events import ARTICLES_TOPIC, Article
from newsmon.settings import Settings
from newsmon.store import Store
from newsmon.store import feeds as feed_store
from tests.poller.conftest import MemoryBus, make_settings, poll_once, rss
from tests.support.feedserver import FeedServer

ITEMS = [
    ("g1", "http://news.example/a/1", "Convoy crosses the bridge"),
    ("g2", "http://news.example/a/2", "Market opens higher"),
    ("g3", "http://news.example/a/3", "Storm warning for the coast"),
]
TITLES = [t for _, _, t in ITEMS]


def setup_feed(tmp_path: Path, srv: FeedServer) -> Settings:
    return make_settings(tmp_path, [{"url": srv.url("/rss"), "id": "test", "interval": 600}])


async def make_due(store: Store) -> None:
    state = next(s for s in await feed_store.list_feeds(store) if s.id == "test")
    state.next_poll = 0
    await feed_store.save_feed(store, state)


class _Batches(MemoryBus):
    """Records the size of every batch; a single publish would be a regression (one commit per article)."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[int] = []

    async def publish(self, topic: str, value: bytes, key: bytes | None = None,
                      headers: Sequence[tuple[str, bytes]] = ()) -> None:
        raise AssertionError("the poller publishes articles in batches")

    async def publish_many(self, topic: str, messages: Sequence[Outgoing]) -> None:
        self.batches.append(len(messages))
        await super().publish_many(topic, messages)


class _HalfWay(_Batches):
    """Writes the first message of the next batch, then refuses the rest (as Kafka may, at least once)."""

    def __init__(self) -> None:
        super().__init__()
        self.refuse_next = True

    async def publish_many(self, topic: str, messages: Sequence[Outgoing]) -> None:
        if self.refuse_next:
            self.refuse_next = False
            await super().publish_many(topic, messages[:1])
            raise BusError("kafka publish: message too large (test)")
        await super().publish_many(topic, messages)


async def test_each_document_is_one_batch_in_document_order(
    tmp_path: Path, feedserver: FeedServer, store: Store
) -> None:
    feedserver.route("/rss", rss(ITEMS))
    settings, bus = setup_feed(tmp_path, feedserver), _Batches()
    await poll_once(settings, bus, store)
    feedserver.route("/rss", rss([ITEMS[0], (*ITEMS[1], "An update."), ITEMS[2]]))
    await make_due(store)
    await poll_once(settings, bus, store)
    assert bus.batches == [3, 1]
    assert [a.title for a in bus.articles()] == [*TITLES, TITLES[1]]
    assert bus.keys() == [a.id.encode() for a in bus.articles()]
    assert [a.revision for a in bus.articles()] == [1, 1, 1, 2]


async def test_a_batch_refused_half_way_is_published_whole_by_the_next_poll(
    tmp_path: Path, feedserver: FeedServer, store: Store
) -> None:
    feedserver.route("/rss", rss(ITEMS))
    settings, bus = setup_feed(tmp_path, feedserver), _HalfWay()
    svc = await poll_once(settings, bus, store)
    assert svc.outcomes == {"internal_error": 1}
    assert [a.title for a in bus.articles()] == TITLES[:1]  # on the bus, yet not remembered as published
    await make_due(store)
    svc = await poll_once(settings, bus, store)
    assert svc.outcomes == {"changed": 1}
    assert [a.title for a in bus.articles()] == [TITLES[0], *TITLES]  # one duplicate: at least once
    assert len({a.id for a in bus.articles()}) == 3
    feedserver.route("/rss", rss(ITEMS, title="Renamed feed"))  # a new body with the same items
    await make_due(store)
    svc = await poll_once(settings, bus, store)
    assert svc.outcomes == {"changed": 1} and len(bus.articles()) == 4  # now remembered: nothing again
    assert bus.batches == [1, 3]


async def test_on_the_sqlite_bus_a_refused_batch_leaves_nothing_and_comes_whole_later(
    tmp_path: Path, feedserver: FeedServer, store: Store
) -> None:
    long_item = (*ITEMS[1], "Long body. " * 400)  # ~4.4 kB of text: over the 3 kB limit below
    feedserver.route("/rss", rss([ITEMS[0], long_item, ITEMS[2]]))
    settings = setup_feed(tmp_path, feedserver)
    bus = SqliteBus(tmp_path / "bus.db", max_message_bytes=3000)
    await bus.start()
    consumer = bus.consumer([ARTICLES_TOPIC], "readers")
    try:
        svc = await poll_once(settings, bus, store)  # type: ignore[arg-type]
        assert svc.outcomes == {"internal_error": 1}
        await consumer.start()
        assert await consumer.getmany(timeout=0.2) == []
        feedserver.route("/rss", rss(ITEMS))  # the publisher shortened the item
        await make_due(store)
        svc = await poll_once(settings, bus, store)  # type: ignore[arg-type]
        assert svc.outcomes == {"changed": 1}
        got: list[Article] = []
        for _ in range(20):  # the partitions come one fetch at a time
            got += [Article.model_validate_json(m.value) for m in await consumer.getmany(timeout=0.2)]
            if len(got) >= 3:
                got += [Article.model_validate_json(m.value) for m in await consumer.getmany(timeout=0.2)]
                break
    finally:
        await consumer.stop()
        await bus.stop()
    assert sorted(a.title for a in got) == sorted(TITLES)


async def test_an_article_larger_than_a_bus_message_is_reported_and_the_others_go_out(
    tmp_path: Path, feedserver: FeedServer, store: Store
) -> None:
    from prometheus_client import REGISTRY

    def too_large() -> float:
        return REGISTRY.get_sample_value("newsmon_feed_errors_total", {"error": "article_too_large"}) or 0.0

    # Text is capped well under the limit, a link is not: 1.1 MB of path makes the article too big for the bus.
    huge = ("g9", "http://news.example/a/" + "x" * 1_100_000, "A link that never ends")
    feedserver.route("/rss", rss([ITEMS[0], huge, ITEMS[2]]))
    settings = setup_feed(tmp_path, feedserver)
    bus = SqliteBus(tmp_path / "bus.db")  # the default limit, Kafka's
    await bus.start()
    consumer = bus.consumer([ARTICLES_TOPIC], "readers")
    before = too_large()
    try:
        svc = await poll_once(settings, bus, store)  # type: ignore[arg-type]
        assert svc.outcomes == {"changed": 1}, "one oversized article must not fail the feed's poll"
        assert too_large() == before + 1
        await consumer.start()
        got: list[Article] = []
        for _ in range(20):
            got += [Article.model_validate_json(m.value) for m in await consumer.getmany(timeout=0.2)]
            if len(got) >= 2:
                break
        assert sorted(a.title for a in got) == sorted([ITEMS[0][2], ITEMS[2][2]])
        await make_due(store)
        svc = await poll_once(settings, bus, store)  # type: ignore[arg-type]
        assert too_large() == before + 1, "remembered: reported once, not at every poll"
        assert await consumer.getmany(timeout=0.3) == []
    finally:
        await consumer.stop()
        await bus.stop()
