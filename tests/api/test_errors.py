"""Bad input gets a 4xx problem document that says what is wrong (naming the field), never a 5xx."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from newsmon.api.limits import MAX_BODY
from tests.api.conftest import Api
from tests.api.test_auth import assert_problem

UNKNOWN_IDS = ["/api/v1/feeds/nope", "/api/v1/alerts/nope", "/api/v1/stories/nope", "/api/v1/articles/nope",
               "/api/v1/subscriptions/nope", "/api/v1/deliveries/nope"]

BAD_QUERIES = [
    ("/api/v1/alerts?limit=abc", "limit"),
    ("/api/v1/alerts?limit=0", "limit"),
    ("/api/v1/alerts?limit=100000", "limit"),
    ("/api/v1/alerts?since=yesterday", "since"),
    ("/api/v1/matches?until=13-13-13", "until"),
    ("/api/v1/articles?colour=red", "colour"),
    ("/api/v1/stories?limit=-1", "limit"),
    ("/api/v1/deliveries?status=lost", "status"),
    ("/api/v1/deliveries/dead?limit=x", "limit"),
    ("/api/v1/activity?hours=0", "hours"),
]

BAD_BODIES = [
    ("/api/v1/feeds", {"url": "ftp://example.org/feed"}, "url"),
    ("/api/v1/feeds", {"url": 42}, "url"),
    ("/api/v1/feeds", {"url": "https://example.org/f", "interval": "often"}, "interval"),
    ("/api/v1/feeds", {"url": "https://example.org/f", "id": "bad id!"}, "id"),
    ("/api/v1/feeds", {"url": "https://example.org/f", "extra": 1}, "extra"),
    ("/api/v1/feeds", {}, "url"),
    ("/api/v1/silences", {"reason": "x", "duration": "1h"}, "(body)"),
    ("/api/v1/silences", {"topic": "t", "reason": "x", "duration": "forever"}, "duration"),
    ("/api/v1/silences", {"topic": "t", "duration": "1h"}, "reason"),
    ("/api/v1/silences", {"topic": ["t"], "reason": "x", "duration": "1h"}, "topic"),
    ("/api/v1/deliveries/replay", {}, "(body)"),
    ("/api/v1/deliveries/replay", {"everything": "maybe"}, "everything"),
    ("/api/v1/deliveries/replay", {"since": "last week"}, "since"),
    ("/api/v1/topics/preview", {"text": 5}, "text"),
    ("/api/v1/topics/preview", {}, "text"),
    ("/api/v1/topics/preview", {"text": "حلب", "topic_toml": "[[topics]\nid="}, "topic_toml"),
]


@pytest.mark.parametrize("path", UNKNOWN_IDS)
async def test_unknown_ids_are_404(api: Api, path: str) -> None:
    async with api.client(api.admin) as c:
        assert "nope" in str(assert_problem(await c.get(path), 404)["detail"])


@pytest.mark.parametrize(("method", "path"), [("PATCH", "/api/v1/feeds/nope"),
                                              ("DELETE", "/api/v1/feeds/nope"),
                                              ("DELETE", "/api/v1/silences/nope")])
async def test_unknown_ids_in_changes_are_404(api: Api, method: str, path: str) -> None:
    async with api.client(api.admin) as c:
        assert_problem(await c.request(method, path, json={"active": False}), 404)


@pytest.mark.parametrize(("url", "field"), BAD_QUERIES, ids=[q for q, _ in BAD_QUERIES])
async def test_bad_query_parameters_name_the_field(api: Api, url: str, field: str) -> None:
    async with api.client(api.read) as c:
        body = assert_problem(await c.get(url), 422)
    assert str(body["detail"]).startswith(field)
    assert any(e["field"] == field for e in body["errors"])  # type: ignore[attr-defined]


@pytest.mark.parametrize(("path", "payload", "field"), BAD_BODIES,
                         ids=[f"{p.rsplit('/', 1)[-1]}-{f}-{i}" for i, (p, _, f) in enumerate(BAD_BODIES)])
async def test_bad_bodies_name_the_field(api: Api, path: str, payload: dict[str, object], field: str) -> None:
    async with api.client(api.admin) as c:
        body = assert_problem(await c.post(path, json=payload), 422)
    assert str(body["detail"]).startswith(field), body


async def test_body_that_is_not_json(api: Api) -> None:
    async with api.client(api.admin) as c:
        r = await c.post("/api/v1/feeds", content=b"{not json", headers={"content-type": "application/json"})
        assert_problem(r, 400)
        assert_problem(await c.post("/api/v1/feeds", json=["a", "list"]), 422)
        assert_problem(await c.post("/api/v1/feeds", content=b"url=x",
                                    headers={"content-type": "application/x-www-form-urlencoded"}), 415)


async def test_oversized_body_declared(api: Api) -> None:
    async with api.client(api.admin) as c:
        r = await c.post("/api/v1/topics/preview", content=b"x" * (MAX_BODY + 1),
                         headers={"content-type": "application/json"})
    assert_problem(r, 413)


async def test_oversized_body_streamed_without_length(api: Api) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(MAX_BODY // 8192 + 2):
            yield b"x" * 8192

    async with api.client(api.admin) as c:
        r = await c.post("/api/v1/topics/preview", content=chunks(),
                         headers={"content-type": "application/json"})
    assert_problem(r, 413)


async def test_unknown_path_and_wrong_method(api: Api) -> None:
    async with api.client(api.admin) as c:
        assert_problem(await c.get("/api/v1/nothing-here"), 404)
        assert_problem(await c.put("/api/v1/alerts", json={}), 405)
