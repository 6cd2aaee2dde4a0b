"""Config subscriptions (redacted), silences, deliveries by status, dead letters and replay (API-made
subscriptions: test_subscriptions.py)."""

from __future__ import annotations

import time

from newsmon.store import alerts as alert_store
from newsmon.store import deliveries as delivery_store
from tests.api.conftest import SECRET, Api
from tests.api.pipeline import ARABIC, publish_through_pipeline
from tests.api.test_auth import assert_problem


async def test_subscriptions_are_redacted(api: Api) -> None:
    async with api.client(api.read) as c:
        listing = await c.get("/api/v1/subscriptions")
        one = await c.get("/api/v1/subscriptions/ops")
    assert [s["id"] for s in listing.json()] == ["ops"] and one.json()["origin"] == "config"
    assert SECRET not in listing.text and SECRET not in one.text
    assert one.json()["webhook"]["secret"] == "**********"


async def test_silence_create_list_expire(api: Api) -> None:
    async with api.client(api.admin) as c:
        r = await c.post("/api/v1/silences", json={"topic": "syria-military-shifts", "reason": "drill",
                                                   "duration": "2h"})
        assert r.status_code == 201, r.text
        silence = r.json()
        assert silence["created_by"] == "operator" and 7100 < silence["expires_at"] - time.time() <= 7200
        assert [s.id for s in await alert_store.active_silences(api.store, time.time())] == [silence["id"]]
        assert [s["id"] for s in (await c.get("/api/v1/silences")).json()] == [silence["id"]]
        assert (await c.delete(f"/api/v1/silences/{silence['id']}")).status_code == 204
        assert (await c.get("/api/v1/silences")).json() == []
        assert_problem(await c.delete(f"/api/v1/silences/{silence['id']}"), 404)


async def test_a_silence_too_short_to_last_is_refused(api: Api) -> None:
    async with api.client(api.admin) as c:
        r = await c.post("/api/v1/silences", json={"topic": "syria-military-shifts", "reason": "drill",
                                                   "duration": 1e-300})
        assert assert_problem(r, 422)["detail"] == "duration: too short"
        assert (await c.get("/api/v1/silences")).json() == []


async def test_dead_delivery_listed_and_replayed(api: Api) -> None:
    # The subscription's webhook is on loopback, refused by the network policy: the delivery dead-letters.
    await publish_through_pipeline(api, ARABIC)
    async with api.client(api.admin) as c:
        body = (await c.get("/api/v1/deliveries?status=dead")).json()
        assert body["counts"] == {"dead": 1}
        dead = body["items"][0]
        assert dead["subscription_id"] == "ops" and "payload" not in dead
        assert [d["id"] for d in (await c.get("/api/v1/deliveries/dead")).json()] == [dead["id"]]
        one = (await c.get(f"/api/v1/deliveries/{dead['id']}")).json()
        assert [a["outcome"] for a in one["attempts_log"]] == ["dead"]

        assert_problem(await c.post("/api/v1/deliveries/replay", json={"delivery": "missing"}), 404)
        r = await c.post("/api/v1/deliveries/replay", json={"delivery": dead["id"]})
        assert r.json() == {"replayed": 1}
    assert await delivery_store.counts(api.store) == {"pending": 1}


async def test_replay_by_subscription_with_nothing_dead(api: Api) -> None:
    async with api.client(api.admin) as c:
        r = await c.post("/api/v1/deliveries/replay", json={"subscription": "ops"})
    assert r.json() == {"replayed": 0}
