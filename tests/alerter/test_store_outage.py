"""A PostgreSQL restart under a running alerter: it keeps running, and no webhook is sent twice.

The store is a real PostgreSQL server that the tests stop (immediate: connections drop) and start again.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from newsmon.alerter.service import AlerterService
from newsmon.errors import StoreError
from newsmon.events import MATCHES_TOPIC
from newsmon.store import Store, delivery_leases
from newsmon.store import alerts as alerts_db
from newsmon.store import deliveries as deliveries_db
from tests.alerter.conftest import hook, make_settings, match
from tests.alerter.membus import MemoryBus
from tests.support.postgres import LocalPostgres
from tests.support.receiver import Receiver, Reply

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(120)]


@pytest.fixture
def server(request: pytest.FixtureRequest) -> LocalPostgres:
    if os.environ.get("POSTGRES_TEST_URL"):
        pytest.skip("the server comes from POSTGRES_TEST_URL: these tests must stop it")
    pg: LocalPostgres = request.getfixturevalue("postgres_server")
    return pg


@pytest.fixture
async def pg_store(server: LocalPostgres, postgres_url: str) -> AsyncIterator[Store]:
    store = await Store.open(postgres_url)
    yield store
    await store.close()


def _retries(loop: str) -> float:
    return REGISTRY.get_sample_value("newsmon_alerter_loop_retries_total", {"loop": loop}) or 0.0


async def _restart(server: LocalPostgres, down: float) -> None:
    await asyncio.to_thread(server.stop, "immediate")
    await asyncio.sleep(down)
    await asyncio.to_thread(server.start)


async def test_the_alerter_rides_out_a_postgresql_restart(
    tmp_path: Path, server: LocalPostgres, pg_store: Store, receiver: Receiver
) -> None:
    settings = make_settings(tmp_path, [hook("ops", receiver.url())])
    bus = MemoryBus()
    svc = AlerterService(settings, bus, pg_store)
    stop = asyncio.Event()
    running = asyncio.create_task(svc.run(stop))
    before = {loop: _retries(loop) for loop in ("delivery", "timer")}
    try:
        await _publish(bus, "before")
        await receiver.wait_for(1, within=20)
        await asyncio.to_thread(server.stop, "immediate")
        await asyncio.sleep(2.5)  # every loop meets the outage: claims, the timer, the consumers
        await _publish(bus, "during")  # consumed while the store is away: the handler retries it
        await asyncio.sleep(0.5)
        await asyncio.to_thread(server.start)
        await receiver.wait_for(2, within=40)
        assert not running.done(), f"the alerter stopped: {running.exception() if running.done() else ''}"
    finally:
        stop.set()
        await asyncio.wait_for(running, 40)  # returns cleanly (raises if a loop failed)
    ids = [r.headers["webhook-id"] for r in receiver.requests_to("/hook")]
    assert len(ids) == len(set(ids)) == 2
    assert _retries("delivery") > before["delivery"] and _retries("timer") > before["timer"]
    rows = await deliveries_db.list_deliveries(pg_store)
    assert sorted(r.status for r in rows) == ["delivered", "delivered"]


async def test_a_success_is_recorded_after_the_store_comes_back_not_sent_again(
    tmp_path: Path, server: LocalPostgres, pg_store: Store, receiver: Receiver
) -> None:
    # The receiver answers 200 1.5 s after the request: by then the store is down (for 9 s, longer than the
    # 8 s lease), so the outcome cannot be written. It must be kept and written once the store is back, not
    # dropped: the row would stay leased, then be sent again with the same webhook-id.
    receiver.script("/hook", [Reply(200, delay=1.5)])
    settings = make_settings(tmp_path, [hook("ops", receiver.url())], delivery={"timeout": 3})
    bus = MemoryBus()
    await _publish(bus, "slow")
    svc = AlerterService(settings, bus, pg_store)
    running = asyncio.create_task(svc.run(asyncio.Event(), until_idle=True))
    try:
        await _leased(pg_store)  # the attempt is in flight
        await _restart(server, down=9.0)
        await asyncio.wait_for(running, 60)
    finally:
        running.cancel()
    sent = [(r.status, r.headers["webhook-id"]) for r in receiver.requests_to("/hook")]
    assert len(sent) == 1 and sent[0][0] == 200, f"sent again after the store came back: {sent}"
    [row] = await deliveries_db.list_deliveries(pg_store)
    assert (row.status, row.attempts) == ("delivered", 1)
    log = await deliveries_db.attempt_log(pg_store, row.id)
    assert [a["outcome"] for a in log] == ["delivered"]


async def _publish(bus: MemoryBus, story: str) -> None:
    m = match(story=story)
    await bus.publish(MATCHES_TOPIC, m.to_bytes(), key=m.story_id.encode())


async def _leased(store: Store, within: float = 20.0) -> None:
    """Wait until a delivery row is claimed (its next attempt pushed a lease ahead)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        rows = await deliveries_db.list_deliveries(store)
        if rows and rows[0].next_attempt_at > time.time() + 1:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("no delivery was claimed")


async def test_every_alerter_query_reports_the_outage_as_a_retriable_store_error(
    server: LocalPostgres, pg_store: Store
) -> None:
    queries: dict[str, Callable[[], Awaitable[object]]] = {
        "next_due": lambda: deliveries_db.next_due(pg_store),
        "counts": lambda: deliveries_db.counts(pg_store),
        "disabled_endpoints": lambda: deliveries_db.disabled_endpoints(pg_store),
        "disable_endpoint": lambda: deliveries_db.disable_endpoint(pg_store, "http://x/", "410 Gone", 1.0),
        "list_deliveries": lambda: deliveries_db.list_deliveries(pg_store),
        "attempt_log": lambda: deliveries_db.attempt_log(pg_store, "d1"),
        "claim": lambda: delivery_leases.claim(pg_store, "me", time.time(), 10.0, 10),
        "next_notify_at": lambda: alerts_db.next_notify_at(pg_store),
        "unpublished": lambda: alerts_db.unpublished(pg_store),
        "mark_published": lambda: alerts_db.mark_published(pg_store, ["n1"]),
        "active_silences": lambda: alerts_db.active_silences(pg_store, time.time()),
    }
    for query in queries.values():
        await query()  # each works while the server is up (and the pool holds a connection)
    await asyncio.to_thread(server.stop, "immediate")
    try:
        for _ in range(2):  # the pooled connection is gone, then a new one is refused
            for name, query in queries.items():
                with pytest.raises(StoreError) as caught:
                    await query()
                assert caught.value.retriable, name
    finally:
        await asyncio.to_thread(server.start)
    assert await deliveries_db.next_due(pg_store) is None
