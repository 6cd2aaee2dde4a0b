"""Read queries over the other services' tables (their Table objects, never redefined) and the live buffer."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from sqlalchemy import select

from newsmon.events import Alert, Entity, Match, reported_places
from newsmon.store import Store
from newsmon.store import stories as story_store
from newsmon.store.alerts import alerts, notifications

from .bodies import epoch
from .live import parse_alert
from .models import ListQuery

SCAN = 5000  # notifications scanned for one filtered listing (recent first)


def _place_hit(places: Iterable[Entity], wanted: str) -> bool:
    w = wanted.casefold()
    return any(w in (p.id.casefold(), p.name_en.casefold(), p.name_ar) for p in places)


def _keep(topic: str, lang: str | None, places: list[Entity], when: float, q: ListQuery) -> bool:
    since, until = epoch(q.since), epoch(q.until)
    return ((q.topic is None or topic == q.topic) and (q.lang is None or lang == q.lang)
            and (q.place is None or _place_hit(places, q.place))
            and (since is None or when >= since) and (until is None or when <= until))


async def recent_alerts(store: Store, q: ListQuery) -> list[Alert]:
    """Notifications (new and update), most recent first, filtered."""
    stmt = select(notifications.c.payload, notifications.c.created_at).order_by(
        notifications.c.created_at.desc()).limit(SCAN)
    since = epoch(q.since)
    if since is not None:
        stmt = stmt.where(notifications.c.created_at >= since)
    out: list[Alert] = []
    async with store.engine.connect() as conn:
        for payload, created in await conn.execute(stmt):
            alert = parse_alert(payload)
            if alert is not None and _keep(alert.topic, alert.lang, reported_places(alert.places, alert.focus),
                                           created, q):
                out.append(alert)
                if len(out) >= q.limit:
                    break
    return out


async def alert_history(store: Store, alert_id: str) -> list[Alert]:
    """Every notification of one alert, oldest first."""
    stmt = (select(notifications.c.payload).where(notifications.c.alert_id == alert_id)
            .order_by(notifications.c.revision))
    async with store.engine.connect() as conn:
        return [a for (p,) in await conn.execute(stmt) if (a := parse_alert(p)) is not None]


async def story_alerts(store: Store, story_id: str) -> list[Alert]:
    """Every notification about one story (any topic), oldest first."""
    ids = select(alerts.c.alert_id).where(alerts.c.story_id == story_id).scalar_subquery()
    stmt = (select(notifications.c.payload).where(notifications.c.alert_id.in_(ids))
            .order_by(notifications.c.created_at))
    async with store.engine.connect() as conn:
        return [a for (p,) in await conn.execute(stmt) if (a := parse_alert(p)) is not None]


async def list_stories(store: Store, limit: int, since: float | None) -> list[dict[str, Any]]:
    """Recent stories (most recently active first)."""
    table = story_store.stories
    stmt = select(table.c.id, table.c.kind, table.c.first_seen, table.c.last_seen, table.c.articles).order_by(
        table.c.last_seen.desc()).limit(limit)
    if since is not None:
        stmt = stmt.where(table.c.last_seen >= since)
    async with store.engine.connect() as conn:
        return [dict(r._mapping) for r in await conn.execute(stmt)]


async def story_detail(store: Store, story_id: str, recent: Iterable[Match]) -> dict[str, Any] | None:
    """One story: its row, its articles' ids, its sources and a timeline (alerts and matched articles)."""
    row = await story_store.get(store, story_id)
    notes = await story_alerts(store, story_id)
    matches = [m for m in recent if m.story_id == story_id]
    if row is None and not notes and not matches:
        return None
    async with store.engine.connect() as conn:
        arts = story_store.story_articles
        ids = [r[0] for r in await conn.execute(
            select(arts.c.article_id).where(arts.c.story_id == story_id).order_by(arts.c.assigned_at))]
    sources: dict[str, dict[str, Any]] = {}
    for alert in notes:
        for s in alert.sources:
            sources[s.article_id] = s.model_dump(mode="json")
    for m in matches:
        a = m.article
        sources.setdefault(a.id, {"article_id": a.id, "feed_id": a.feed_id, "source": a.source,
                                  "title": a.title, "url": a.url, "lang": m.lang or a.lang,
                                  "score": m.match.score,
                                  "published": a.published.isoformat() if a.published else None})
    timeline: list[dict[str, Any]] = [
        {"at": a.created_at.isoformat(), "event": f"alert.{a.kind}", "title": a.title,
                 "topic": a.topic, "sources": a.source_count, "changes": a.changes} for a in notes]
    timeline += [{"at": m.classified_at.isoformat(), "event": "match", "title": m.article.title,
                  "topic": m.match.topic, "lang": m.lang, "source": m.article.source} for m in matches]
    timeline.sort(key=lambda e: str(e["at"]))
    return {"id": story_id, "story": row.__dict__ | {"signatures": None} if row else None,
            "article_ids": ids, "sources": sorted(sources.values(), key=lambda s: s.get("published") or ""),
            "alerts": [a.model_dump(mode="json") for a in notes],
            "matches": [m.model_dump(mode="json") for m in matches], "timeline": timeline}


async def activity(store: Store, hours: int) -> dict[str, Any]:
    """Notifications per topic per hour over the last `hours`."""
    now = time.time()
    start = (now // 3600 - hours + 1) * 3600
    stmt = (select(alerts.c.topic, notifications.c.created_at)
            .join(alerts, alerts.c.alert_id == notifications.c.alert_id)
            .where(notifications.c.created_at >= start))
    series: dict[str, list[int]] = {}
    async with store.engine.connect() as conn:
        for topic, created in await conn.execute(stmt):
            bucket = min(int((created - start) // 3600), hours - 1)
            series.setdefault(topic, [0] * hours)[bucket] += 1
    return {"start": start, "bucket_seconds": 3600, "series": series}


def filter_matches(recent: Iterable[Match], q: ListQuery) -> list[Match]:
    """Recent matches from the live buffer, most recent first, filtered."""
    out = []
    for m in reversed(list(recent)):
        if _keep(m.match.topic, m.lang or m.article.lang, reported_places(m.places, m.focus),
                 m.classified_at.timestamp(), q):
            out.append(m)
            if len(out) >= q.limit:
                break
    return out
