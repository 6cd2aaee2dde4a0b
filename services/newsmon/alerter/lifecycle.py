"""Alert lifecycle per story and topic, in the spirit of Prometheus Alertmanager.

The first match of a story opens an alert and schedules its first notification after `group_wait` (matches
that arrive meanwhile join it). Later matches update the story; a notification follows only for a
*material* change (a new independent source, a new place in a report's title or lead, a score up by
`SCORE_STEP`), no sooner than `group_interval` after the previous one. News that adds nothing material
re-notifies only once `repeat_interval` has passed. The decision functions here are pure; `observe` and
`flush` run them against the store inside one transaction.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncConnection

from newsmon.events import Alert, Entity, Match, Source
from newsmon.settings import AlertingSettings
from newsmon.store import Store
from newsmon.store import alerts as db

SCORE_STEP = 0.1  # a score rise at least this large is news in itself
SUMMARY_CHARS = 280


class Notified(BaseModel):
    """What the last notification told subscribers, to compare the story against."""

    feeds: list[str] = Field(default_factory=list)
    places: list[str] = Field(default_factory=list)
    score: float = 0.0
    articles: int = 0


class StoryState(BaseModel):
    """Everything known about one story for one topic (stored as JSON in the alert row)."""

    lead: Match
    sources: list[Source] = Field(default_factory=list)
    places: list[Entity] = Field(default_factory=list)
    actors: list[Entity] = Field(default_factory=list)
    focus: list[str] = Field(default_factory=list)  # entity ids some report names in its title or lead
    first_seen: datetime
    trigger_fetched_at: float | None = None
    notified: Notified | None = None


def alert_id(story_id: str, topic: str) -> str:
    """The stable id of a story's alert for a topic."""
    return "alr_" + hashlib.sha256(f"{story_id}\n{topic}".encode()).hexdigest()[:24]


def notification_id(aid: str, revision: int) -> str:
    """The notification (and `webhook-id`) for one revision: deterministic, no '.' (Standard Webhooks)."""
    return f"{aid}_r{revision}"


def _source(m: Match) -> Source:
    a = m.article
    return Source(
        article_id=a.id,
        feed_id=a.feed_id,
        source=a.source,
        title=a.title,
        url=a.url,
        lang=m.lang or a.lang,
        published=a.published,
        score=m.match.score,
    )


def _union(old: list[Entity], new: list[Entity]) -> list[Entity]:
    seen = {e.id for e in old}
    return old + [e for e in new if e.id not in seen]


def _focus_places(places: list[Entity], focus: list[str]) -> set[str]:
    """The places a story reports on: a place named only in background paragraphs is not news."""
    return {e.id for e in places if e.id in focus}


def absorb(state: StoryState | None, m: Match) -> StoryState | None:
    """The story with this match joined; None when the match adds nothing (e.g. a redelivered one)."""
    if state is None:
        return StoryState(
            lead=m,
            sources=[_source(m)],
            places=list(m.places),
            actors=list(m.actors),
            focus=list(m.focus),
            first_seen=m.article.published or m.article.fetched_at,
            trigger_fetched_at=m.article.fetched_at.timestamp(),
        )
    known = {s.article_id: s for s in state.sources}
    prior = known.get(m.article.id)
    new_places = _focus_places(m.places, m.focus) - _focus_places(state.places, state.focus)
    if prior is not None and m.match.score <= prior.score and not new_places:
        return None  # a redelivered (or no better) version of an article already in the story
    sources = [s for s in state.sources if s.article_id != m.article.id] + [_source(m)]
    lead = m if m.match.score > state.lead.match.score else state.lead
    return state.model_copy(
        update={
            "lead": lead,
            "sources": sources,
            "places": _union(state.places, list(m.places)),
            "actors": _union(state.actors, list(m.actors)),
            "focus": sorted(set(state.focus) | set(m.focus)),
            "trigger_fetched_at": m.article.fetched_at.timestamp(),
        }
    )


def changes(state: StoryState) -> list[str]:
    """Material changes since the last notification, readable."""
    n = state.notified
    if n is None:
        return []
    names: dict[str, str] = {}
    for s in state.sources:
        if s.feed_id not in n.feeds:
            names.setdefault(s.feed_id, s.source or s.feed_id)
    out = [f"new source: {name}" for name in names.values()]
    news = _focus_places(state.places, state.focus) - set(n.places)
    out += [f"new place: {p.name_en or p.name_ar or p.id}" for p in state.places if p.id in news]
    score = state.lead.match.score
    if score >= n.score + SCORE_STEP:
        out.append(f"score up: {n.score:.2f} → {score:.2f}")
    return out


def schedule(
    state: StoryState, cur: db.StoredAlert | None, now: float, cfg: AlertingSettings
) -> float | None:
    """When the next notification is due (None: no notification needed)."""
    if cur is not None and cur.notify_at is not None:
        return cur.notify_at
    if cur is None or cur.last_notified_at is None:
        return now + cfg.group_wait
    if changes(state):
        return max(now, cur.last_notified_at + cfg.group_interval)
    more = len(state.sources) > (state.notified.articles if state.notified else 0)
    if more and now - cur.last_notified_at >= cfg.repeat_interval:
        return now
    return None


def build(state: StoryState, aid: str, revision: int, now: float) -> Alert:
    """The Alert event for this revision of the story."""
    lead, tm = state.lead, state.lead.match
    found = changes(state) if revision > 1 else []
    if revision > 1 and not found:
        found = ["more reports (repeat interval passed)"]
    return Alert(
        id=notification_id(aid, revision),
        alert_id=aid,
        kind="new" if revision == 1 else "update",
        revision=revision,
        topic=tm.topic,
        topic_title=tm.title,
        severity=tm.severity,
        story_id=lead.story_id,
        title=lead.article.title,
        url=lead.article.url,
        lang=lead.lang or lead.article.lang,
        score=tm.score,
        terms=list(tm.terms),
        spans=list(tm.spans),
        explanation=tm.explanation,
        summary=lead.article.text[:SUMMARY_CHARS],
        places=list(state.places),
        actors=list(state.actors),
        focus=list(state.focus),
        sources=sorted(state.sources, key=lambda s: -s.score),
        source_count=len({s.feed_id for s in state.sources}),
        changes=found,
        first_seen=state.first_seen,
        created_at=datetime.fromtimestamp(now, UTC),
    )


async def observe(
    store: Store, conn: AsyncConnection, m: Match, now: float, cfg: AlertingSettings
) -> Alert | None:
    """Join a match to its story's alert and (re)schedule its next notification; the Alert when due now."""
    aid = alert_id(m.story_id, m.match.topic)
    cur = await db.load(conn, aid)
    old = StoryState.model_validate_json(cur.state) if cur is not None else None
    state = absorb(old, m)
    if state is None:
        return None
    at = schedule(state, cur, now, cfg)
    row = db.StoredAlert(
        alert_id=aid,
        story_id=m.story_id,
        topic=m.match.topic,
        revision=cur.revision if cur else 0,
        notify_at=at,
        last_notified_at=cur.last_notified_at if cur else None,
        state=state.model_dump_json(),
    )
    alert = None
    if at is not None and at <= now:
        row, alert = await _notify(store, conn, row, state, now)
    await db.save(conn, row, now)
    return alert


async def flush(store: Store, conn: AsyncConnection, now: float) -> list[Alert]:
    """Decide every notification whose time has come (recorded in the outbox)."""
    out: list[Alert] = []
    for row in await db.due(conn, now):
        saved, alert = await _notify(store, conn, row, StoryState.model_validate_json(row.state), now)
        await db.save(conn, saved, now)
        out.append(alert)
    return out


async def _notify(
    store: Store, conn: AsyncConnection, row: db.StoredAlert, state: StoryState, now: float
) -> tuple[db.StoredAlert, Alert]:
    revision = row.revision + 1
    alert = build(state, row.alert_id, revision, now)
    await db.add_notification(
        store,
        conn,
        id=alert.id,
        alert_id=row.alert_id,
        revision=revision,
        kind=alert.kind,
        payload=alert.model_dump_json(),
        fetched_at=state.trigger_fetched_at,
        now=now,
    )
    notified = Notified(
        feeds=sorted({s.feed_id for s in state.sources}),
        places=sorted(_focus_places(state.places, state.focus)),
        score=state.lead.match.score,
        articles=len(state.sources),
    )
    state = state.model_copy(update={"notified": notified})
    saved = db.StoredAlert(
        alert_id=row.alert_id,
        story_id=row.story_id,
        topic=row.topic,
        revision=revision,
        notify_at=None,
        last_notified_at=now,
        state=state.model_dump_json(),
    )
    return saved, alert
