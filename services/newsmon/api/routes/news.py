"""Alerts, stories, matches and articles: recent and filtered, or one with its sources; topic activity."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from newsmon.events import Match

from .. import queries
from ..bodies import epoch, read_query
from ..context import ctx, reply
from ..models import ActivityQuery, ListQuery, StoryQuery
from ..problems import Problem


async def list_alerts(request: Request) -> Response:
    """Alert notifications (new and updates), most recent first."""
    q = read_query(request, ListQuery)
    return reply([a.model_dump(mode="json") for a in await queries.recent_alerts(ctx(request).store, q)])


async def get_alert(request: Request) -> Response:
    """One alert: its latest notification and its history."""
    aid = request.path_params["alert_id"]
    history = await queries.alert_history(ctx(request).store, aid)
    if not history:
        raise Problem(404, f"no alert with id {aid!r}")
    return reply({"alert": history[-1].model_dump(mode="json"),
                  "history": [a.model_dump(mode="json") for a in history]})


async def list_stories(request: Request) -> Response:
    q = read_query(request, StoryQuery)
    return reply(await queries.list_stories(ctx(request).store, q.limit, epoch(q.since)))


async def get_story(request: Request) -> Response:
    """One story with all its sources (both languages) and its timeline."""
    sid = request.path_params["story_id"]
    detail = await queries.story_detail(ctx(request).store, sid, ctx(request).hub.matches)
    if detail is None:
        raise Problem(404, f"no story with id {sid!r}")
    return reply(detail)


async def list_matches(request: Request) -> Response:
    """Recent topic matches (kept in memory from the bus), most recent first."""
    q = read_query(request, ListQuery)
    return reply([m.model_dump(mode="json") for m in queries.filter_matches(ctx(request).hub.matches, q)])


def _article(m: Match, topics: list[str]) -> dict[str, Any]:
    return m.article.model_dump(mode="json") | {"story_id": m.story_id, "topics": topics,
                                                "places": [p.model_dump(mode="json") for p in m.places]}


async def list_articles(request: Request) -> Response:
    """Recent matched articles (one entry per article, with the topics it matched)."""
    q = read_query(request, ListQuery)
    by_id: dict[str, tuple[Match, list[str]]] = {}
    for m in queries.filter_matches(ctx(request).hub.matches, q.model_copy(update={"limit": 500})):
        by_id.setdefault(m.article.id, (m, []))[1].append(m.match.topic)
    return reply([_article(m, t) for m, t in list(by_id.values())[: q.limit]])


async def get_article(request: Request) -> Response:
    aid = request.path_params["article_id"]
    found = [m for m in ctx(request).hub.matches if m.article.id == aid]
    if not found:
        raise Problem(404, f"no recent matched article with id {aid!r}")
    return reply(_article(found[-1], sorted({m.match.topic for m in found}))
                 | {"matches": [m.match.model_dump(mode="json") for m in found]})


async def topic_activity(request: Request) -> Response:
    """Alert notifications per topic per hour."""
    q = read_query(request, ActivityQuery)
    return reply(await queries.activity(ctx(request).store, q.hours))


ROUTES = [
    Route("/api/v1/alerts", list_alerts, methods=["GET"]),
    Route("/api/v1/alerts/{alert_id}", get_alert, methods=["GET"]),
    Route("/api/v1/stories", list_stories, methods=["GET"]),
    Route("/api/v1/stories/{story_id}", get_story, methods=["GET"]),
    Route("/api/v1/matches", list_matches, methods=["GET"]),
    Route("/api/v1/articles", list_articles, methods=["GET"]),
    Route("/api/v1/articles/{article_id}", get_article, methods=["GET"]),
    Route("/api/v1/activity", topic_activity, methods=["GET"]),
]
