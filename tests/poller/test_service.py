"""The poller service against a real loopback feed server: articles on the bus, feed state in the store."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from newsmon.bus.base import Outgoing
from newsmon.errors import BusError
from newsmon.poller.feedlist import configured_feeds, feed_id
from newsmon.poller.service import PollerService
from newsmon.settings import Settings
from newsmon.store import Store, leases
from newsmon.store import feeds as feed_store
from newsmon.store.feeds import FeedState
from tests.poller.conftest import MemoryBus, make_settings, poll_once, rss
from tests.support.feedserver import FeedServer

ITEMS = [
    ("g1", "http://news.example/a/1?utm_source=rss", "Convoy crosses the bridge"),
    ("g2", "http://news.example/a/2", "Market opens higher"),
    ("g3", "http://news.example/a/3", "Storm warning for the coast"),
]


def setup_feed(tmp_path: Path, srv: FeedServer, path: str = "/rss", **feed: object) -> Settings:
    return make_settings(tmp_path, [{"url": srv.url(path), "id": "test", "interval": 600, **feed}])


async def state_of(store: Store, fid: str = "test") -> FeedState:
    return next(s for s in await feed_store.list_feeds(store) if s.id == fid)


async def test_new_articles_are_published_keyed_by_id_then_304_publishes_nothing(
    tmp_path: Path, feedserver: FeedServer, bus: MemoryBus, store: Store
) -> None:
    feedserver.route("/rss", rss(ITEMS), etag='"v1"')
    settings = setup_feed(tmp_path, feedserver)
    await poll_once(settings, bus, store)
    articles = bus.articles()
    assert [a.title for a in articles] == [t for _, _, t in ITEMS]
    assert bus.keys() == [a.id.encode() for a in articles]
    assert all(a.id.startswith("a_") and a.revision == 1 and a.feed_id == "test" for a in articles)
    assert articles[0].text == "Body of Convoy crosses the bridge." and articles[0].lang == "en"
    first = await state_of(store)
    assert (first.etag, first.error_streak, first.health) == ('"v1"', 0, "ok")

    first.next_poll = 0  # due again
    await feed_store.save_feed(store, first)
    svc = await poll_once(settings, bus, store)
    assert svc.outcomes == {"not_modified": 1}
    assert feedserver.requests[-1].headers["if-none-match"] == '"v1"'
    assert len(bus.articles()) == 3


async def test_identical_body_is_not_parsed_again(
    tmp_path: Path, feedserver: FeedServer, bus: MemoryBus, store: Store
) -> None:
    feedserver.route("/rss", rss(ITEMS))
    settings = setup_feed(tmp_path, feedserver)
    await poll_once(settings, bus, store)
    await _make_due(store)
    svc = await poll_once(settings, bus, store)
    assert svc.outcomes == {"identical": 1}
    assert len(bus.articles()) == 3


async def _make_due(store: Store, fid: str = "test") -> None:
    state = await state_of(store, fid)
    state.next_poll = 0
    await feed_store.save_feed(store, state)


async def test_rate_limited_feed_waits_for_retry_after(
    tmp_path: Path, feedserver: FeedServer, bus: MemoryBus, store: Store
) -> None:
    feedserver.route("/rss", b"", status=429, headers={"Retry-After": "5000"})
    settings = setup_feed(tmp_path, feedserver)
    with capture_logs() as logs:
        await poll_once(settings, bus, store)
    state = await state_of(store)
    assert state.error_streak == 1 and "429" in (state.last_error or "")
    assert state.next_poll - (state.last_poll or 0) >= 5000
    assert any(e["event"] == "feed.poll_failed" for e in logs)
    await poll_once(settings, bus, store)  # not due yet: nothing is requested
    assert feedserver.count("/rss") == 1


async def test_errors_back_off_never_give_up_and_recover(
    tmp_path: Path, feedserver: FeedServer, bus: MemoryBus, store: Store
) -> None:
    feedserver.route("/rss", b"oops", status=500)
    settings = setup_feed(tmp_path, feedserver)
    delays = []
    for _ in range(4):
        await poll_once(settings, bus, store)
        state = await state_of(store)
        delays.append(state.next_poll - (state.last_poll or 0))
        await _make_due(store)
    assert state.error_streak == 4 and state.health == "failing"
    assert delays == sorted(delays) and delays[-1] > delays[0]
    feedserver.route("/rss", rss(ITEMS))
    await poll_once(settings, bus, store)
    state = await state_of(store)
    assert (state.error_streak, state.health, len(bus.articles())) == (0, "ok", 3)


async def test_timeout_is_a_feed_error_and_others_still_poll(
    tmp_path: Path, feedserver: FeedServer, bus: MemoryBus, store: Store
) -> None:
    feedserver.route("/hang", hang=True)
    feedserver.route("/rss", rss(ITEMS))
    settings = make_settings(
        tmp_path,
        [{"url": feedserver.url("/hang"), "id": "hang"}, {"url": feedserver.url("/rss"), "id": "good"}],
        read_timeout=0.5,
        total_timeout=1,
    )
    await poll_once(settings, bus, store)
    assert "FetchTimeout" in ((await state_of(store, "hang")).last_error or "")
    assert len(bus.articles()) == 3


async def test_guid_churn_does_not_republish(
    tmp_path: Path, feedserver: FeedServer, bus: MemoryBus, store: Store
) -> None:
    feedserver.route("/rss", rss(ITEMS))
    settings = setup_feed(tmp_path, feedserver)
    await poll_once(settings, bus, store)
    churned: list[tuple[str, str, str]] = [
        (f"new-{guid}", link.replace("utm_source=rss", "utm_source=feed"), title)
        for guid, link, title in ITEMS
    ]
    feedserver.route("/rss", rss(churned))
    await _make_due(store)
    await poll_once(settings, bus, store)
    assert len(bus.articles()) == 3


async def test_edited_item_is_republished_as_a_new_revision(
    tmp_path: Path, feedserver: FeedServer, bus: MemoryBus, store: Store
) -> None:
    feedserver.route("/rss", rss(ITEMS))
    settings = setup_feed(tmp_path, feedserver)
    await poll_once(settings, bus, store)
    g2, link2, title2 = ITEMS[1]
    edit = "Markets opened higher; an update adds the closing figures."
    edited = [ITEMS[0], (g2, link2, title2, edit), ITEMS[2]]
    feedserver.route("/rss", rss(edited))
    await _make_due(store)
    await poll_once(settings, bus, store)
    first, update = bus.articles()[1], bus.articles()[3]
    assert len(bus.articles()) == 4
    assert (update.id, update.revision, first.revision) == (first.id, 2, 1)
    assert "closing figures" in update.text


async def test_dedup_survives_a_restart(tmp_path: Path, feedserver: FeedServer, bus: MemoryBus) -> None:
    feedserver.route("/rss", rss(ITEMS))
    settings = setup_feed(tmp_path, feedserver)
    db = f"sqlite:///{tmp_path / 'restart.db'}"
    store = await Store.open(db)
    await poll_once(settings, bus, store)
    await store.close()
    feedserver.route("/rss", rss(ITEMS, title="Renamed feed"))  # a different body, the same items
    store = await Store.open(db)
    try:
        await _make_due(store)
        await poll_once(settings, bus, store)
        assert (await state_of(store)).polls == 2
    finally:
        await store.close()
    assert len(bus.articles()) == 3


async def test_rotation_of_a_full_feed_records_a_gap_and_shortens_the_interval(
    tmp_path: Path, feedserver: FeedServer, bus: MemoryBus, store: Store
) -> None:
    def batch(start: int) -> bytes:
        return rss([(f"g{i}", f"http://news.example/r/{i}", f"Item {i}") for i in range(start, start + 100)])

    feedserver.route("/rss", batch(0))
    settings = setup_feed(tmp_path, feedserver)
    await poll_once(settings, bus, store)
    before = await state_of(store)
    assert before.gaps == 0
    feedserver.route("/rss", batch(100))
    await _make_due(store)
    with capture_logs() as logs:
        await poll_once(settings, bus, store)
    after = await state_of(store)
    assert len(bus.articles()) == 200
    assert after.gaps == 1 and after.current_interval < before.current_interval
    assert any(e["event"] == "feed.possible_missed_items" for e in logs)


async def test_permanent_redirect_updates_the_stored_url(
    tmp_path: Path, feedserver: FeedServer, bus: MemoryBus, store: Store
) -> None:
    feedserver.route("/old", status=301, headers={"Location": "/new"})
    feedserver.route("/new", rss(ITEMS), etag='"n"')
    settings = setup_feed(tmp_path, feedserver, path="/old")
    await poll_once(settings, bus, store)
    assert (await state_of(store)).url == feedserver.url("/new")
    await _make_due(store)
    await poll_once(settings, bus, store)
    assert (feedserver.count("/old"), feedserver.count("/new")) == (1, 2)


@pytest.mark.parametrize(
    ("headers", "ttl", "expected"),
    [
        ({"Cache-Control": "max-age=1000"}, None, 1000.0),
        ({}, 30, 1800.0),
        ({"Cache-Control": "max-age=999999"}, None, 2400.0),  # capped at 4x the configured interval
    ],
    ids=["max-age", "rss-ttl", "capped"],
)
async def test_server_freshness_hints_lengthen_the_interval(
    tmp_path: Path,
    feedserver: FeedServer,
    bus: MemoryBus,
    store: Store,
    headers: dict[str, str],
    ttl: int | None,
    expected: float,
) -> None:
    feedserver.route("/rss", rss(ITEMS, ttl=ttl), headers=headers)
    await poll_once(setup_feed(tmp_path, feedserver), bus, store)
    state = await state_of(store)
    assert state.next_poll - (state.last_poll or 0) == pytest.approx(expected)


async def test_feed_ids_and_removed_feeds(
    tmp_path: Path, feedserver: FeedServer, bus: MemoryBus, store: Store
) -> None:
    feedserver.route("/a", rss(ITEMS[:1]))
    feedserver.route("/b", rss(ITEMS[1:]))
    both = make_settings(tmp_path, [{"url": feedserver.url("/a")}, {"url": feedserver.url("/b"), "id": "b"}])
    await poll_once(both, bus, store)
    ids = {s.id for s in await feed_store.list_feeds(store)}
    assert ids == {feed_id(both.feeds[0]), "b"} and feed_id(both.feeds[0]).startswith("f_")
    only_b = make_settings(tmp_path, [{"url": feedserver.url("/b"), "id": "b"}])
    await poll_once(only_b, bus, store)
    assert {s.id for s in await feed_store.list_feeds(store)} == {"b"}


async def test_continuous_run_polls_and_stops(
    tmp_path: Path, feedserver: FeedServer, bus: MemoryBus, store: Store
) -> None:
    feedserver.route("/rss", rss(ITEMS))
    svc = PollerService(setup_feed(tmp_path, feedserver), bus, store)
    stop = asyncio.Event()
    task = asyncio.create_task(svc.run(stop))
    for _ in range(200):
        if len(bus.articles()) == 3:
            break
        await asyncio.sleep(0.02)
    stop.set()
    await asyncio.wait_for(task, 10)
    assert len(bus.articles()) == 3 and feedserver.count("/rss") == 1


async def test_per_host_concurrency_is_respected(
    tmp_path: Path, feedserver: FeedServer, bus: MemoryBus, store: Store
) -> None:
    for i in range(4):
        feedserver.route(f"/slow{i}", rss(ITEMS[:1]), delay=0.1)
    settings = make_settings(
        tmp_path, [{"url": feedserver.url(f"/slow{i}"), "id": f"s{i}"} for i in range(4)]
    )
    settings.poller.per_host_concurrency = 1
    await poll_once(settings, bus, store)
    assert sum(feedserver.count(f"/slow{i}") for i in range(4)) == 4
    assert feedserver.max_in_flight == 1


async def _until(check: Callable[[], bool], seconds: float = 20.0) -> None:
    for _ in range(int(seconds / 0.05)):
        if check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not reached")


async def test_a_running_poller_follows_feeds_added_paused_resumed_and_removed(
    tmp_path: Path, feedserver: FeedServer, bus: MemoryBus, store: Store
) -> None:
    feedserver.route("/cfg", rss(ITEMS[:1]))
    feedserver.route("/web", rss(ITEMS[1:]))
    settings = setup_feed(tmp_path, feedserver, path="/cfg")
    settings.poller.reload_interval = 0.2
    settings.poller.min_interval = 0.5
    svc = PollerService(settings, bus, store)
    stop = asyncio.Event()
    task = asyncio.create_task(svc.run(stop))
    try:
        await _until(lambda: feedserver.count("/cfg") == 1)
        url = feedserver.url("/web")
        web = FeedState(id="web", url=url, config_url=url, interval=0.5, current_interval=0.5, origin="api")
        assert await feed_store.add_feed(store, web) is None
        await _until(lambda: feedserver.count("/web") >= 2)  # picked up, and polled again on its schedule
        assert {a.title for a in bus.articles()} == {t for _, _, t in ITEMS}

        await feed_store.set_active(store, "web", False, time.time())
        await asyncio.sleep(1.0)  # a reload, and a poll already in flight finishing
        paused_at = feedserver.count("/web")
        await asyncio.sleep(1.5)  # three intervals of the feed, seven reloads
        assert feedserver.count("/web") == paused_at

        await feed_store.set_active(store, "web", True, time.time())
        await _until(lambda: feedserver.count("/web") > paused_at)
        await feed_store.remove_feed(store, "web")
        await asyncio.sleep(1.0)
        removed_at = feedserver.count("/web")
        await asyncio.sleep(1.5)
        assert feedserver.count("/web") == removed_at
        assert feedserver.count("/cfg") == 1  # the config feed kept its own 10-minute schedule
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
    assert [s.lease_owner for s in await feed_store.list_feeds(store)] == [None]  # released on stop


async def test_a_feed_leased_by_another_poller_is_left_to_it(
    tmp_path: Path, feedserver: FeedServer, bus: MemoryBus, store: Store
) -> None:
    feedserver.route("/rss", rss(ITEMS))
    settings = setup_feed(tmp_path, feedserver)
    await feed_store.sync_feeds(store, configured_feeds(settings), time.time())
    assert len(await leases.claim(store, ["test"], "elsewhere:1:x", time.time(), ttl=600)) == 1
    svc = await poll_once(settings, bus, store)
    assert (svc.outcomes, feedserver.count("/rss")) == ({}, 0)
    await leases.release_all(store, "elsewhere:1:x")
    await poll_once(settings, bus, store)
    assert feedserver.count("/rss") == 1 and len(bus.articles()) == 3
    assert (await state_of(store)).lease_owner is None


class _BusDownFor(MemoryBus):
    """The bus refuses the first `n` publishes (single or batch), as during a broker restart."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.refusals = n

    def _refuse(self) -> None:
        if self.refusals > 0:
            self.refusals -= 1
            raise BusError("kafka publish: broker unavailable (test)")

    async def publish(self, topic: str, value: bytes, key: bytes | None = None,
                      headers: Sequence[tuple[str, bytes]] = ()) -> None:
        self._refuse()
        await super().publish(topic, value, key, headers)

    async def publish_many(self, topic: str, messages: Sequence[Outgoing]) -> None:
        self._refuse()
        await super().publish_many(topic, messages)


async def test_a_bus_outage_delays_a_feed_by_seconds_not_its_interval(
    tmp_path: Path, feedserver: FeedServer, store: Store
) -> None:
    feedserver.route("/rss", rss(ITEMS))
    bus = _BusDownFor(2)
    svc = PollerService(setup_feed(tmp_path, feedserver), bus, store)  # interval 600 s
    stop = asyncio.Event()
    task = asyncio.create_task(svc.run(stop))
    try:
        for _ in range(1000):  # the retries come after ~1 s then ~2 s (jittered); the old fixed 30 s fails here
            if len(bus.articles()) == 3:
                break
            await asyncio.sleep(0.02)
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
    assert len(bus.articles()) == 3
    assert svc.outcomes["internal_error"] == 2 and feedserver.count("/rss") == 3
