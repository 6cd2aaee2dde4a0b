"""Auth: tokens and scopes on every kind of route; open health checks; /metrics open only when configured."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.api.conftest import Api, make_settings, start_api, stop_api

PROTECTED_GETS = ["/api/v1/topics", "/api/v1/feeds", "/api/v1/alerts", "/api/v1/stories", "/api/v1/matches",
                  "/api/v1/articles", "/api/v1/activity", "/api/v1/subscriptions", "/api/v1/silences",
                  "/api/v1/deliveries", "/api/v1/deliveries/dead", "/api/v1/stream", "/metrics"]
ADMIN_WRITES = [("POST", "/api/v1/feeds"), ("PATCH", "/api/v1/feeds/x"), ("DELETE", "/api/v1/feeds/x"),
                ("POST", "/api/v1/silences"), ("DELETE", "/api/v1/silences/x"),
                ("POST", "/api/v1/deliveries/replay")]


def assert_problem(response: object, status: int) -> dict[str, object]:
    import httpx

    assert isinstance(response, httpx.Response)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == status and body["title"] and body["detail"]
    return dict(body)


@pytest.mark.parametrize("path", PROTECTED_GETS)
async def test_reads_need_a_token(api: Api, path: str) -> None:
    async with api.client() as anonymous, api.client("nm_not-a-real-token") as forged:
        body = assert_problem(await anonymous.get(path), 401)
        assert "missing" in str(body["detail"])
        assert "invalid" in str(assert_problem(await forged.get(path), 401)["detail"])


async def test_401_names_the_scheme(api: Api) -> None:
    async with api.client() as c:
        r = await c.get("/api/v1/alerts")
    assert r.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize(("method", "path"), ADMIN_WRITES, ids=[f"{m} {p}" for m, p in ADMIN_WRITES])
async def test_changes_need_the_admin_scope(api: Api, method: str, path: str) -> None:
    async with api.client(api.read) as reader, api.client(api.admin) as admin:
        body = assert_problem(await reader.request(method, path, json={}), 403)
        assert "admin" in str(body["detail"])
        r = await admin.request(method, path, json={})
        assert r.status_code not in (401, 403)  # passes auth; the empty body is then refused on its merits
        assert r.status_code < 500


async def test_preview_needs_only_read(api: Api) -> None:
    async with api.client(api.read) as c:
        assert (await c.post("/api/v1/topics/preview", json={"text": "hello"})).status_code == 200


async def test_admin_token_can_read(api: Api) -> None:
    async with api.client(api.admin) as c:
        assert (await c.get("/api/v1/alerts")).status_code == 200


async def test_token_in_query_string_is_accepted(api: Api) -> None:
    async with api.client() as c:
        assert (await c.get("/api/v1/alerts", params={"token": api.read})).status_code == 200
        assert_problem(await c.get("/api/v1/alerts", params={"token": "nm_wrong"}), 401)


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/api/v1/openapi.json", "/dashboard",
                                  "/dashboard/app.js", "/dashboard/app.css", "/dashboard/syria.js"])
async def test_open_paths(api: Api, path: str) -> None:
    async with api.client() as c:
        assert (await c.get(path)).status_code == 200


async def test_root_redirects_to_the_dashboard(api: Api) -> None:
    async with api.client() as c:
        r = await c.get("/")
    assert r.status_code == 307 and r.headers["location"] == "/dashboard"


async def test_metrics_public_when_configured(tmp_path: Path) -> None:
    running, stop, task = await start_api(make_settings(tmp_path, api={"listen": "127.0.0.1:0",
                                                                       "metrics_public": True}))
    try:
        async with running.client() as c:
            assert (await c.get("/metrics")).status_code == 200
            assert_problem(await c.get("/api/v1/alerts"), 401)
    finally:
        await stop_api(running, stop, task)
