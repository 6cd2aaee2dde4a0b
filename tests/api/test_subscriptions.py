"""Subscriptions made through the API: create, read (secrets never returned), replace, patch, delete; auth,
validation (422 naming the field), conflicts with the config's ids, unknown ids."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from newsmon.store import subscriptions as sub_store
from tests.api.conftest import SECRET, Api
from tests.api.test_auth import assert_problem

OTHER_SECRET = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"
TOPIC = "syria-military-shifts"


def desk(**extra: Any) -> dict[str, Any]:
    """A valid subscription body."""
    return {"id": "desk", "topics": [TOPIC], "languages": ["ar"],
            "webhook": {"url": "https://hooks.example.org/desk", "secret": OTHER_SECRET}} | extra


async def test_create_then_read_without_secrets(api: Api) -> None:
    async with api.client(api.admin) as admin, api.client(api.read) as reader:
        r = await admin.post("/api/v1/subscriptions", json=desk())
        assert r.status_code == 201, r.text
        assert r.headers["location"] == "/api/v1/subscriptions/desk"
        made = r.json()
        listing = await reader.get("/api/v1/subscriptions")
        one = await reader.get("/api/v1/subscriptions/desk")
    assert made["origin"] == "api" and made["created_by"] == "operator" and made["languages"] == ["ar"]
    assert [(s["id"], s["origin"]) for s in listing.json()] == [("ops", "config"), ("desk", "api")]
    assert one.json() == made
    for text in (r.text, listing.text, one.text):
        assert OTHER_SECRET not in text and SECRET not in text
    assert one.json()["webhook"]["secret"] == "**********"
    # Stored with its real secret, because the alerter signs with it.
    stored = await sub_store.get(api.store, "desk")
    assert isinstance(stored, sub_store.Stored) and stored.spec.webhook is not None
    assert stored.spec.webhook.secret is not None and stored.spec.webhook.secret.get_secret_value() == OTHER_SECRET


async def test_a_read_token_cannot_change_subscriptions(api: Api) -> None:
    async with api.client(api.admin) as admin:
        assert (await admin.post("/api/v1/subscriptions", json=desk())).status_code == 201
    async with api.client(api.read) as reader, api.client() as anonymous:
        assert_problem(await reader.post("/api/v1/subscriptions", json=desk(id="other")), 403)
        assert_problem(await reader.put("/api/v1/subscriptions/desk", json=desk()), 403)
        assert_problem(await reader.patch("/api/v1/subscriptions/desk", json={"min_score": 0.5}), 403)
        assert_problem(await reader.delete("/api/v1/subscriptions/desk"), 403)
        assert_problem(await anonymous.post("/api/v1/subscriptions", json=desk(id="other")), 401)
        assert [s["id"] for s in (await reader.get("/api/v1/subscriptions")).json()] == ["ops", "desk"]


BAD = [
    ("no-topics", {"topics": []}, "topics"),
    ("unknown-topic", {"topics": [TOPIC, "syria-military-shfits"]}, "topics.1"),
    ("bad-url", {"webhook": {"url": "not a url", "secret": OTHER_SECRET}}, "webhook.url"),
    ("bad-secret", {"webhook": {"url": "https://h.example.org/", "secret": "hunter2"}}, "webhook.secret"),
    ("secret-file", {"webhook": {"url": "https://h.example.org/", "secret_file": "/etc/hostname"}},
     "webhook.secret_file"),
    ("no-channel", {"webhook": None}, "(body)"),
    ("bad-id", {"id": "no spaces"}, "id"),
    ("long-id", {"id": "x" * 121}, "id"),
    ("score", {"min_score": 2}, "min_score"),
    ("rate-limit", {"rate_limit": "5 per hour"}, "rate_limit"),
    ("quiet-hours", {"quiet_hours": "25:00-06:00"}, "quiet_hours"),
    ("typo", {"topic": TOPIC}, "topic"),
]


@pytest.mark.parametrize(("change", "field"), [(c, f) for _, c, f in BAD], ids=[i for i, _, _ in BAD])
async def test_bad_input_is_a_422_naming_the_field(api: Api, change: dict[str, Any], field: str) -> None:
    async with api.client(api.admin) as c:
        body = assert_problem(await c.post("/api/v1/subscriptions", json=desk(**change)), 422)
        assert str(body["detail"]).startswith(f"{field}:"), body
        assert [s["id"] for s in (await c.get("/api/v1/subscriptions")).json()] == ["ops"]


async def test_bodies_that_are_not_a_json_object(api: Api) -> None:
    async with api.client(api.admin) as c:
        assert_problem(await c.post("/api/v1/subscriptions", content=b"{nope", headers={
            "content-type": "application/json"}), 400)
        assert_problem(await c.post("/api/v1/subscriptions", json=[desk()]), 422)
        assert_problem(await c.post("/api/v1/subscriptions", content=b"id=desk", headers={
            "content-type": "application/x-www-form-urlencoded"}), 415)


async def test_ids_are_unique_across_config_and_api(api: Api) -> None:
    async with api.client(api.admin) as c:
        assert "config" in str(assert_problem(await c.post("/api/v1/subscriptions", json=desk(id="ops")),
                                              409)["detail"])
        assert (await c.post("/api/v1/subscriptions", json=desk())).status_code == 201
        assert_problem(await c.post("/api/v1/subscriptions", json=desk(languages=[])), 409)
        assert (await c.get("/api/v1/subscriptions/desk")).json()["languages"] == ["ar"]


async def test_config_subscriptions_cannot_be_changed_here(api: Api) -> None:
    async with api.client(api.admin) as c:
        assert_problem(await c.put("/api/v1/subscriptions/ops", json=desk(id="ops")), 409)
        assert_problem(await c.patch("/api/v1/subscriptions/ops", json={"min_score": 0.5}), 409)
        assert_problem(await c.delete("/api/v1/subscriptions/ops"), 409)
        assert (await c.get("/api/v1/subscriptions/ops")).json()["min_score"] == 0.0


async def test_unknown_ids_are_404(api: Api) -> None:
    async with api.client(api.admin) as c:
        assert_problem(await c.get("/api/v1/subscriptions/nope"), 404)
        assert_problem(await c.put("/api/v1/subscriptions/nope", json=desk(id="nope")), 404)
        assert_problem(await c.patch("/api/v1/subscriptions/nope", json={"min_score": 0.5}), 404)
        assert_problem(await c.delete("/api/v1/subscriptions/nope"), 404)


async def test_patch_merges_and_keeps_the_secret(api: Api) -> None:
    async with api.client(api.admin) as c:
        await c.post("/api/v1/subscriptions", json=desk(rate_limit="10/h"))
        r = await c.patch("/api/v1/subscriptions/desk", json={
            "min_score": 0.4, "rate_limit": None, "webhook": {"url": "https://hooks.example.org/desk2"}})
        assert r.status_code == 200, r.text
        got = r.json()
        assert_problem(await c.patch("/api/v1/subscriptions/desk", json={"id": "renamed"}), 422)
        assert_problem(await c.patch("/api/v1/subscriptions/desk", json={"webhook": {"format": "fax"}}), 422)
    assert got["min_score"] == 0.4 and got["rate_limit"] is None and got["languages"] == ["ar"]
    assert got["webhook"]["url"] == "https://hooks.example.org/desk2" and got["created_by"] == "operator"
    stored = await sub_store.get(api.store, "desk")
    assert isinstance(stored, sub_store.Stored) and stored.spec.webhook is not None
    assert stored.spec.webhook.secret is not None and stored.spec.webhook.secret.get_secret_value() == OTHER_SECRET
    assert stored.spec.min_score == 0.4 and str(stored.spec.webhook.url) == "https://hooks.example.org/desk2"


async def test_put_replaces_whole(api: Api) -> None:
    async with api.client(api.admin) as c:
        await c.post("/api/v1/subscriptions", json=desk())
        replacement = {"topics": [TOPIC], "email": {"to": ["desk@example.org"]}}
        r = await c.put("/api/v1/subscriptions/desk", json=replacement)
        assert r.status_code == 200, r.text
        assert_problem(await c.put("/api/v1/subscriptions/desk", json=replacement | {"id": "other"}), 422)
        assert_problem(await c.put("/api/v1/subscriptions/desk", json={"topics": [TOPIC]}), 422)
        one = (await c.get("/api/v1/subscriptions/desk")).json()
    assert one["webhook"] is None and one["email"]["to"] == ["desk@example.org"] and one["languages"] == []


async def test_delete_then_gone(api: Api) -> None:
    async with api.client(api.admin) as c:
        await c.post("/api/v1/subscriptions", json=desk())
        assert (await c.delete("/api/v1/subscriptions/desk")).status_code == 204
        assert_problem(await c.get("/api/v1/subscriptions/desk"), 404)
        assert_problem(await c.delete("/api/v1/subscriptions/desk"), 404)
        # The id is free again.
        assert (await c.post("/api/v1/subscriptions", json=desk())).status_code == 201


async def test_a_stored_spec_that_no_longer_validates_is_listed_and_deletable(api: Api) -> None:
    async with api.client(api.admin) as c:
        await c.post("/api/v1/subscriptions", json=desk())
        # As if an older newsmon had stored it: a rate limit this version refuses.
        table = sub_store.subscriptions
        async with api.store.engine.begin() as conn:
            spec = (await conn.execute(select(table.c.spec))).scalar_one()
            await conn.execute(table.update().values(spec=spec.replace('"rate_limit": null', '"rate_limit": "0/h"')))
        one = (await c.get("/api/v1/subscriptions/desk")).json()
        assert one["origin"] == "api" and "rate_limit" in one["error"]
        assert (await c.delete("/api/v1/subscriptions/desk")).status_code == 204
