"""Delivery for sure: retries with the same webhook-id, Retry-After, 410, hanging endpoints, dead letters,
replay, restarts in the middle of a retry schedule."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from standardwebhooks import Webhook

from newsmon.alerter.commands import replay_deliveries
from newsmon.alerter.service import AlerterService
from newsmon.events import DEAD_LETTER_TOPIC, DeadLetter
from newsmon.store import Store
from newsmon.store import deliveries as deliveries_db
from tests.alerter.conftest import SECRET, Harness, hook, make_settings, match
from tests.alerter.membus import MemoryBus
from tests.support.receiver import Receiver, Reply

Build = Callable[..., Harness]


async def test_503_twice_then_success_is_one_alert_with_one_webhook_id(
    harness: Build, receiver: Receiver
) -> None:
    receiver.script("/hook", [Reply(503), Reply(503)])
    h = harness([hook("ops", receiver.url())], delivery={"retry_delays": [0.1, 0.1, 0.1]})
    await h.publish(match())
    await h.drain()
    reqs = receiver.requests_to("/hook")
    assert [r.status for r in reqs] == [503, 503, 200]
    assert len({r.headers["webhook-id"] for r in reqs}) == 1
    for r in reqs:
        Webhook(SECRET).verify(r.body, r.headers)
    [row] = await deliveries_db.list_deliveries(h.store)
    assert row.status == "delivered" and row.attempts == 3
    log = await deliveries_db.attempt_log(h.store, row.id)
    assert [(a["outcome"], a["http_status"]) for a in log] == [
        ("retry", 503),
        ("retry", 503),
        ("delivered", 200),
    ]
    assert all(a["latency"] >= 0 for a in log)


async def test_429_retry_after_is_honoured(harness: Build, receiver: Receiver) -> None:
    receiver.script("/hook", [Reply(429, {"retry-after": "1"})])
    h = harness([hook("ops", receiver.url())], delivery={"retry_delays": [0.05]})
    await h.publish(match())
    await h.drain()
    first, second = receiver.requests_to("/hook")
    assert (first.status, second.status) == (429, 200)
    assert second.at - first.at >= 0.95  # the schedule said 0.05 s; the receiver asked for 1 s
    assert first.headers["webhook-id"] == second.headers["webhook-id"]


async def test_410_disables_the_endpoint(harness: Build, receiver: Receiver) -> None:
    receiver.script("/gone", [Reply(410)])
    h = harness([hook("gone", receiver.url("/gone")), hook("ok", receiver.url("/ok"))])
    await h.publish(match(story="s1"))
    await h.drain()
    await h.publish(match(story="s2"))
    await h.drain()
    assert len(receiver.requests_to("/gone")) == 1  # no retry, nothing after the 410
    assert len(receiver.requests_to("/ok")) == 2
    assert receiver.url("/gone") in await deliveries_db.disabled_endpoints(h.store)
    dead = await deliveries_db.list_deliveries(h.store, status="dead", subscription="gone")
    assert len(dead) == 2 and {d.last_error for d in dead} >= {"HTTP 410"}


async def test_a_hanging_receiver_times_out_and_does_not_hold_up_others(
    harness: Build, receiver: Receiver
) -> None:
    receiver.script("/hang", [], then=Reply(hang=True))
    subs = [hook("hang", receiver.url("/hang"))] + [hook(f"ok{i}", receiver.url(f"/ok{i}")) for i in range(6)]
    h = harness(
        subs,
        delivery={
            "retry_delays": [0.1],
            "timeout": 1,
            "concurrency": 4,
            "breaker_threshold": 2,
            "breaker_cooldown": 0.5,
        },
    )
    await h.publish(*[match(story=f"s{i}", feed=f"f{i}") for i in range(3)])
    await h.drain()
    for i in range(6):
        assert len(receiver.requests_to(f"/ok{i}")) == 3
    dead = await deliveries_db.list_deliveries(h.store, status="dead", subscription="hang")
    assert len(dead) == 3 and all("timeout" in (d.last_error or "") for d in dead)


async def test_dead_letter_then_replay_delivers_with_the_same_id(harness: Build, receiver: Receiver) -> None:
    receiver.script("/hook", [Reply(500), Reply(500)])
    h = harness([hook("ops", receiver.url())], delivery={"retry_delays": [0.05]})
    await h.publish(match())
    await h.drain()
    [dead] = await deliveries_db.list_deliveries(h.store, status="dead")
    assert dead.attempts == 2
    letters = [DeadLetter.model_validate_json(m.value) for m in h.bus.log[DEAD_LETTER_TOPIC]]
    assert [x.key for x in letters] == [dead.id]

    assert await replay_deliveries(h.store, subscription="ops") == 1
    await h.drain()
    reqs = receiver.requests_to("/hook")
    assert [r.status for r in reqs] == [500, 500, 200]
    assert len({r.headers["webhook-id"] for r in reqs}) == 1
    [done] = await deliveries_db.list_deliveries(h.store)
    assert done.status == "delivered"
    assert await replay_deliveries(h.store, everything=True) == 0  # nothing dead any more


async def test_restart_in_the_middle_of_a_retry_schedule(harness: Build, receiver: Receiver) -> None:
    receiver.script("/hook", [Reply(503), Reply(503)])
    h = harness([hook("ops", receiver.url())], delivery={"retry_delays": [0.5, 0.5]})
    await h.publish(match())
    stop = asyncio.Event()
    svc = AlerterService(h.settings, h.bus, h.store)
    task = asyncio.create_task(svc.run(stop))
    await receiver.wait_for(1, "/hook")
    stop.set()  # "crash" after the first failed attempt, before the retry is due
    await asyncio.wait_for(task, 10)
    [row] = await deliveries_db.list_deliveries(h.store)
    assert (row.status, row.attempts) == ("pending", 1)

    await h.drain()  # a new process: resumes the schedule from the store
    reqs = receiver.requests_to("/hook")
    assert [r.status for r in reqs] == [503, 503, 200]
    assert len({r.headers["webhook-id"] for r in reqs}) == 1
    await h.drain()  # and a third start finds nothing left to send
    assert len(receiver.requests_to("/hook")) == 3


async def test_an_alert_on_the_bus_but_not_yet_delivered_survives_a_restart(
    harness: Build, receiver: Receiver
) -> None:
    h = harness([hook("ops", receiver.url())])
    receiver.script("/hook", [], then=Reply(hang=True))
    await h.publish(match())
    stop = asyncio.Event()
    task = asyncio.create_task(AlerterService(h.settings, h.bus, h.store).run(stop))
    await receiver.wait_for(1, "/hook")  # the attempt is in flight when we stop
    stop.set()
    await asyncio.wait_for(task, 10)
    receiver.script("/hook", [], then=Reply(200))
    await h.drain()
    ids = {r.headers["webhook-id"] for r in receiver.requests_to("/hook")}
    assert len(ids) == 1
    [row] = await deliveries_db.list_deliveries(h.store)
    assert row.status == "delivered"


async def test_secret_rotation_signs_with_every_secret(harness: Build, receiver: Receiver) -> None:
    new_secret = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"
    h = harness([hook("ops", receiver.url(), webhook={"secrets": [new_secret]})])
    await h.publish(match())
    await h.drain()
    [req] = receiver.requests_to("/hook")
    assert len(req.headers["webhook-signature"].split(" ")) == 2
    for secret in (SECRET, new_secret):
        assert Webhook(secret).verify(req.body, req.headers)["data"]["topic"]


async def test_breaker_stops_hammering_a_failing_endpoint(harness: Build, receiver: Receiver) -> None:
    receiver.script("/down", [], then=Reply(500))
    h = harness([hook("down", receiver.url("/down")), hook("up", receiver.url("/up"))],
                delivery={"retry_delays": [0.05, 0.05, 0.05], "breaker_threshold": 2, "breaker_cooldown": 60,
                          "concurrency": 4})
    await h.publish(*[match(story=f"s{i}", feed=f"f{i}") for i in range(4)])
    stop = asyncio.Event()
    task = asyncio.create_task(AlerterService(h.settings, h.bus, h.store).run(stop))
    await receiver.wait_for(4, "/up")
    await asyncio.sleep(0.5)  # several retry delays: without a breaker /down would see more attempts
    stop.set()
    await asyncio.wait_for(task, 10)
    assert len(receiver.requests_to("/down")) == 2  # threshold reached, then the breaker holds the rest
    waiting = await deliveries_db.list_deliveries(h.store, status="pending", subscription="down")
    assert len(waiting) == 4  # held, not failed: they go out when the breaker closes


async def test_metrics_count_every_outcome(harness: Build, receiver: Receiver) -> None:
    from prometheus_client import REGISTRY

    def value(name: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(name, labels) or 0.0

    before = {
        "retried": value("newsmon_deliveries_total", channel="webhook", outcome="retried"),
        "delivered": value("newsmon_deliveries_total", channel="webhook", outcome="delivered"),
        "e2e": value("newsmon_end_to_end_seconds_count"),
        "alerts": value("newsmon_alerts_total", topic="syria-military-shifts", kind="new"),
        "limited": value("newsmon_alerts_suppressed_total", reason="rate_limit"),
    }
    receiver.script("/hook", [Reply(503)])
    h = harness([hook("ops", receiver.url(), rate_limit="1/h")], delivery={"retry_delays": [0.05]})
    await h.publish(match(story="s1"), match(story="s2", feed="f2"))
    await h.drain()
    assert value("newsmon_deliveries_total", channel="webhook", outcome="retried") == before["retried"] + 1
    delivered = value("newsmon_deliveries_total", channel="webhook", outcome="delivered")
    assert delivered == before["delivered"] + 1
    assert value("newsmon_end_to_end_seconds_count") == before["e2e"] + 1
    assert value("newsmon_alerts_total", topic="syria-military-shifts", kind="new") == before["alerts"] + 2
    assert value("newsmon_alerts_suppressed_total", reason="rate_limit") == before["limited"] + 1


async def test_a_webhook_to_a_private_address_is_refused_and_dead_lettered(
    tmp_path: Path, store: Store, receiver: Receiver
) -> None:
    settings = make_settings(tmp_path, [hook("ops", receiver.url())])
    settings = settings.model_copy(update={"http": settings.http.model_copy(update={"allow_private_networks": False})})
    h = Harness(settings, MemoryBus(), store)
    await h.publish(match())
    await h.drain()
    assert receiver.requests_to("/hook") == []
    [dead] = await deliveries_db.list_deliveries(h.store, status="dead")
    assert dead.attempts == 1 and "non-public address" in (dead.last_error or "")
