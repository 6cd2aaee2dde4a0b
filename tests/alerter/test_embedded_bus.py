"""The alerter on the real embedded bus (SQLite log): one alert per story, and a restart mid-schedule."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from standardwebhooks import Webhook

from newsmon.alerter.service import AlerterService
from newsmon.bus import open_bus
from newsmon.bus.base import Bus
from newsmon.store import Store
from newsmon.store import deliveries as deliveries_db
from tests.alerter.conftest import HAMA, SECRET, Harness, hook, make_settings, match
from tests.support.receiver import Receiver, Reply


@pytest.fixture
async def sqlite_bus(tmp_path: Path) -> AsyncIterator[Bus]:
    settings = make_settings(tmp_path, [], bus={"url": f"sqlite:///{tmp_path / 'bus.db'}"})
    bus = open_bus(settings.bus)
    await bus.start()
    yield bus
    await bus.stop()


async def test_grouping_and_retries_on_the_sqlite_bus(
    tmp_path: Path, store: Store, sqlite_bus: Bus, receiver: Receiver
) -> None:
    receiver.script("/hook", [Reply(503)])
    settings = make_settings(
        tmp_path, [hook("ops", receiver.url())], alerting={"group_wait": 0.3, "group_interval": 0.1}
    )
    h = Harness(settings, sqlite_bus, store)  # type: ignore[arg-type]
    await h.publish(*[match(feed=f"feed-{i}") for i in range(5)])
    await h.drain()
    await h.publish(match(feed="feed-1", article="a-hama", places=(HAMA,)))
    await h.drain()
    reqs = receiver.requests_to("/hook")
    assert [r.status for r in reqs] == [503, 200, 200]
    bodies = [Webhook(SECRET).verify(r.body, r.headers) for r in reqs]
    assert [b["data"]["kind"] for b in bodies] == ["new", "new", "update"]
    assert bodies[0]["data"]["source_count"] == 5
    assert reqs[0].headers["webhook-id"] == reqs[1].headers["webhook-id"] != reqs[2].headers["webhook-id"]


async def test_stop_mid_schedule_then_restart_on_the_sqlite_bus(
    tmp_path: Path, store: Store, sqlite_bus: Bus, receiver: Receiver
) -> None:
    receiver.script("/hook", [Reply(503)])
    settings = make_settings(tmp_path, [hook("ops", receiver.url())], delivery={"retry_delays": [0.5]})
    h = Harness(settings, sqlite_bus, store)  # type: ignore[arg-type]
    await h.publish(match())
    stop = asyncio.Event()
    task = asyncio.create_task(AlerterService(settings, sqlite_bus, store).run(stop))
    await receiver.wait_for(1, "/hook")
    stop.set()
    await asyncio.wait_for(task, 15)
    await h.publish(match())  # the classifier re-sent the match meanwhile: still one notification
    await h.drain()
    reqs = receiver.requests_to("/hook")
    assert [r.status for r in reqs] == [503, 200]
    assert len({r.headers["webhook-id"] for r in reqs}) == 1
    [row] = await deliveries_db.list_deliveries(store)
    assert (row.status, row.attempts) == ("delivered", 2)
