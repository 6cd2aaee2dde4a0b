"""The alerter routes to stored (API-made) subscriptions beside the config's: signed with their own secret; a
config id wins over a stored one; a stored spec that no longer validates is ignored, not fatal; a deletion stops
new notifications while deliveries already queued still go out."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import standardwebhooks
from prometheus_client import REGISTRY

from newsmon.alerter.service import AlerterService
from newsmon.settings import SubscriptionSettings
from newsmon.store import Store
from newsmon.store import deliveries as deliveries_db
from newsmon.store import subscriptions as subs_db
from tests.alerter.conftest import SECRET, SECRET2, Harness, hook, match
from tests.support.receiver import Receiver, Reply

Build = Callable[..., Harness]


async def stored(store: Store, sub_id: str, url: str, **extra: Any) -> None:
    spec = SubscriptionSettings.model_validate(hook(sub_id, url, webhook={"secret": SECRET2}, **extra))
    assert await subs_db.create(store, spec, "tester", time.time()) is not None


def gauge(origin: str) -> float | None:
    return REGISTRY.get_sample_value("newsmon_alerter_subscriptions", {"origin": origin})


async def test_a_stored_subscription_is_signed_with_its_own_secret(harness: Build, receiver: Receiver) -> None:
    h = harness([hook("ops", receiver.url("/ops"))])
    await stored(h.store, "desk", receiver.url("/desk"))
    await h.publish(match())
    await h.drain()
    [body] = [standardwebhooks.Webhook(SECRET2).verify(r.body, r.headers) for r in receiver.requests_to("/desk")]
    assert body["type"] == "alert.new"
    assert len(receiver.requests_to("/ops")) == 1
    assert standardwebhooks.Webhook(SECRET).verify(receiver.requests_to("/ops")[0].body,
                                                   receiver.requests_to("/ops")[0].headers)
    assert (gauge("config"), gauge("api"), gauge("ignored")) == (1, 1, 0)


async def test_the_config_wins_an_id_and_a_bad_stored_spec_is_ignored(harness: Build, receiver: Receiver) -> None:
    h = harness([hook("ops", receiver.url("/ops"))])
    await stored(h.store, "ops", receiver.url("/shadow"))
    await stored(h.store, "broken", receiver.url("/broken"))
    await stored(h.store, "desk", receiver.url("/desk"))
    async with h.store.engine.begin() as conn:  # as if stored by a newsmon with looser rules
        table = subs_db.subscriptions
        await conn.execute(table.update().where(table.c.id == "broken").values(spec='{"id": "broken"}'))
    await h.publish(match())
    await h.drain()
    assert sorted(r.path for r in receiver.requests) == ["/desk", "/ops"]
    assert (gauge("config"), gauge("api"), gauge("ignored")) == (1, 1, 2)


async def test_deleting_stops_new_notifications_but_queued_ones_go_out(harness: Build, receiver: Receiver) -> None:
    # The first attempt fails, so a retry is queued; the subscription is deleted before the retry is due.
    receiver.script("/desk", [Reply(503)])
    h = harness([hook("ops", receiver.url("/ops"))], delivery={"retry_delays": [1.0]},
                alerting={"subscriptions_reload": 0.05})
    await stored(h.store, "desk", receiver.url("/desk"))
    svc = AlerterService(h.settings, h.bus, h.store)
    stop = asyncio.Event()
    task = asyncio.create_task(svc.run(stop))
    try:
        await h.publish(match())
        await receiver.wait_for(1, "/desk")
        assert await subs_db.remove(h.store, "desk")
        async with asyncio.timeout(15):
            while gauge("api") != 0:  # noqa: ASYNC110 (set by the reload loop, which has no event)
                await asyncio.sleep(0.02)
        await h.publish(match(story="story-2", title="Army withdraws from Hama positions"))
        await receiver.wait_for(2, "/ops")
        await receiver.wait_for(2, "/desk")  # the retry of the queued delivery
    finally:
        stop.set()
        await asyncio.wait_for(task, 15)
    assert [r.status for r in receiver.requests_to("/desk")] == [503, 200]
    desk = await deliveries_db.list_deliveries(h.store, subscription="desk")
    assert len(desk) == 1 and desk[0].status == "delivered"


async def test_a_changed_url_takes_queued_deliveries_past_the_old_urls_breaker(
    harness: Build, receiver: Receiver
) -> None:
    # The old URL fails and opens its breaker for a minute. Once the URL is changed (as a PUT does), the queued
    # retry goes to the new URL at once, with the same webhook-id: the breaker belonged to the old URL.
    receiver.script("/old", [], then=Reply(500))
    h = harness([], delivery={"retry_delays": [0.1] * 5, "breaker_threshold": 1, "breaker_cooldown": 60},
                alerting={"subscriptions_reload": 0.05})
    await stored(h.store, "desk", receiver.url("/old"))
    stop = asyncio.Event()
    task = asyncio.create_task(AlerterService(h.settings, h.bus, h.store).run(stop))
    try:
        await h.publish(match())
        await receiver.wait_for(1, "/old")
        spec = SubscriptionSettings.model_validate(hook("desk", receiver.url("/new"), webhook={"secret": SECRET2}))
        assert await subs_db.replace(h.store, spec, time.time())
        await receiver.wait_for(1, "/new", within=10)
    finally:
        stop.set()
        await asyncio.wait_for(task, 15)
    assert len(receiver.requests_to("/old")) == 1
    ids = {r.headers["webhook-id"] for r in receiver.requests}
    assert len(ids) == 1
    [row] = await deliveries_db.list_deliveries(h.store, subscription="desk")
    assert (row.status, row.endpoint) == ("delivered", receiver.url("/new"))
