"""Alerts, stories, matches, articles and activity, after articles went through the real pipeline."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.api.conftest import Api
from tests.api.pipeline import ARABIC, ENGLISH, LONG, publish_through_pipeline
from tests.api.test_auth import assert_problem

TOPIC = "syria-military-shifts"


async def _until(api: Api, path: str, ready: Any) -> Any:
    """The body of `path` once `ready(body)` holds (the live buffer fills from the bus in the background)."""
    async with api.client(api.read) as c:
        for _ in range(200):
            body = (await c.get(path)).json()
            if ready(body):
                return body
            await asyncio.sleep(0.05)
    raise AssertionError(f"{path} never became ready: {body}")


@pytest.fixture
async def fed(api: Api) -> AsyncIterator[Api]:
    await publish_through_pipeline(api, ARABIC, ENGLISH)
    await _until(api, "/api/v1/matches", lambda b: len(b) == 2)
    yield api


FILTERS = [
    ("", 1), (f"?topic={TOPIC}", 1), ("?topic=other", 0), ("?lang=ar", 1), ("?lang=en", 0),
    ("?place=aleppo", 1), ("?place=حلب", 1), ("?place=Aleppo", 1), ("?place=Raqqa", 0),
    ("?since=2000-01-01T00:00:00Z", 1), ("?since=2999-01-01T00:00:00Z", 0),
    ("?until=2000-01-01T00:00:00Z", 0),
]


@pytest.mark.parametrize(("query", "count"), FILTERS, ids=[q or "all" for q, _ in FILTERS])
async def test_alert_filters(fed: Api, query: str, count: int) -> None:
    async with fed.client(fed.read) as c:
        alerts = (await c.get("/api/v1/alerts" + query)).json()
    assert len(alerts) == count
    if count:
        assert alerts[0]["title"] == ARABIC.title and alerts[0]["topic"] == TOPIC


async def test_place_filter_matches_the_places_a_story_reports_on(api: Api) -> None:
    # Raqqa is named only in LONG's background paragraph: the story is not about it, as for subscriptions
    await publish_through_pipeline(api, LONG)
    await _until(api, "/api/v1/matches", lambda b: len(b) == 1)
    async with api.client(api.read) as c:
        alert = (await c.get("/api/v1/alerts")).json()[0]
        assert {"aleppo", "raqqa"} <= {p["id"] for p in alert["places"]} and "raqqa" not in alert["focus"]
        for path in ("/api/v1/alerts", "/api/v1/matches"):
            assert len((await c.get(f"{path}?place=aleppo")).json()) == 1
            assert (await c.get(f"{path}?place=raqqa")).json() == []
            assert (await c.get(f"{path}?place=الرقة")).json() == []


async def test_one_alert_with_history(fed: Api) -> None:
    async with fed.client(fed.read) as c:
        aid = (await c.get("/api/v1/alerts")).json()[0]["alert_id"]
        body = (await c.get(f"/api/v1/alerts/{aid}")).json()
    assert body["alert"]["alert_id"] == aid and [a["kind"] for a in body["history"]] == ["new"]


async def test_story_has_both_languages_and_a_timeline(fed: Api) -> None:
    async with fed.client(fed.read) as c:
        stories = (await c.get("/api/v1/stories")).json()
        assert len(stories) == 1 and stories[0]["articles"] == 2
        story = (await c.get(f"/api/v1/stories/{stories[0]['id']}")).json()
    assert {s["lang"] for s in story["sources"]} == {"ar", "en"}
    assert set(story["article_ids"]) == {ARABIC.id, ENGLISH.id}
    assert [e["event"] for e in story["timeline"]].count("match") == 2
    assert "alert.new" in [e["event"] for e in story["timeline"]]


async def test_matches_and_articles(fed: Api) -> None:
    async with fed.client(fed.read) as c:
        matches = (await c.get("/api/v1/matches?lang=en")).json()
        assert [m["article"]["id"] for m in matches] == [ENGLISH.id]
        assert matches[0]["match"]["spans"]
        articles = (await c.get("/api/v1/articles?limit=1")).json()
        assert len(articles) == 1 and articles[0]["topics"] == [TOPIC]
        one = (await c.get(f"/api/v1/articles/{ARABIC.id}")).json()
        assert one["title"] == ARABIC.title and one["matches"][0]["topic"] == TOPIC


async def test_activity_counts_the_alert(fed: Api) -> None:
    async with fed.client(fed.read) as c:
        body = (await c.get("/api/v1/activity?hours=3")).json()
    assert body["series"] == {TOPIC: [0, 0, 1]}


async def test_unknown_story_and_alert(fed: Api) -> None:
    async with fed.client(fed.read) as c:
        assert_problem(await c.get("/api/v1/stories/s_missing"), 404)
        assert_problem(await c.get("/api/v1/alerts/alr_missing"), 404)
