"""The live stream: an article published through the pipeline arrives as `match` and `alert` SSE events."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.conftest import Api, make_settings, start_api, stop_api
from tests.api.pipeline import ARABIC, publish_through_pipeline
from tests.api.test_auth import assert_problem


async def _read_events(response: httpx.Response, wanted: set[str], out: list[tuple[str, Any]]) -> None:
    event = None
    async for line in response.aiter_lines():
        if line.startswith("event: "):
            event = line.removeprefix("event: ")
        elif line.startswith("data: ") and event:
            out.append((event, json.loads(line.removeprefix("data: "))))
            if wanted <= {e for e, _ in out}:
                return


@pytest.fixture(params=["sqlite", pytest.param("kafka", marks=pytest.mark.kafka)])
async def engine_api(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Api]:
    """The API on each bus engine (Kafka topics and groups in a namespace of their own)."""
    overrides: dict[str, Any] = {}
    if request.param == "kafka":
        overrides["bus"] = {"url": "kafka://" + request.getfixturevalue("kafka_bootstrap"),
                            "namespace": f"apitest{uuid.uuid4().hex[:8]}"}
    running, stop, task = await start_api(make_settings(tmp_path, **overrides))
    try:
        yield running
    finally:
        await stop_api(running, stop, task)


@pytest.mark.timeout(180)
async def test_alert_and_match_arrive_live(engine_api: Api) -> None:
    api = engine_api
    events: list[tuple[str, Any]] = []
    async with httpx.AsyncClient(base_url=api.url, timeout=30) as c:
        async with c.stream("GET", "/api/v1/stream", params={"token": api.read}) as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            reader = asyncio.create_task(_read_events(response, {"alert", "match"}, events))
            await publish_through_pipeline(api, ARABIC)
            await asyncio.wait_for(reader, 60)
    alert = next(data for event, data in events if event == "alert")
    assert alert["title"] == ARABIC.title and alert["kind"] == "new"
    assert any(s["text"] == "حلب" for s in alert["spans"])
    match = next(data for event, data in events if event == "match")
    assert match["article"]["id"] == ARABIC.id


async def test_stream_needs_a_token(api: Api) -> None:
    async with api.client() as c:
        assert_problem(await c.get("/api/v1/stream"), 401)


async def test_shutdown_ends_open_streams(api: Api) -> None:
    async with httpx.AsyncClient(base_url=api.url, timeout=30) as c:
        async with c.stream("GET", "/api/v1/stream", params={"token": api.read}) as response:
            api.service.hub.close()
            body = b"".join([chunk async for chunk in response.aiter_bytes()])
    assert body.startswith(b"retry:")
