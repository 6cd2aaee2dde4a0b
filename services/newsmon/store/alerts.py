"""Tables and queries: alerts per story and topic, notifications (an outbox), silences, rate-limit windows.

The lifecycle writes an alert's new state and, when it decides to notify, the notification row in one
transaction; notifications are published to the bus afterwards and marked published, so a crash between the
two re-publishes the same notification id instead of deciding a second one. Times are unix seconds.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    Float,
    Integer,
    String,
    Table,
    Text,
    and_,
    bindparam,
    func,
    select,
    update,
)
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection

from newsmon.errors import StoreError
from newsmon.store.base import Store, metadata
from newsmon.store.deliveries import insert_ignore

alerts = Table(
    "alerts",
    metadata,
    Column("alert_id", String(120), primary_key=True),
    Column("story_id", String(200), nullable=False, index=True),
    Column("topic", String(120), nullable=False),
    Column("revision", Integer, nullable=False, default=0),
    Column("notify_at", Float, index=True),
    Column("last_notified_at", Float),
    Column("state", Text, nullable=False),
    Column("updated_at", Float, nullable=False),
)

notifications = Table(
    "alert_notifications",
    metadata,
    Column("id", String(140), primary_key=True),
    Column("alert_id", String(120), nullable=False, index=True),
    Column("revision", Integer, nullable=False),
    Column("kind", String(10), nullable=False),
    Column("payload", Text, nullable=False),
    Column("fetched_at", Float),
    Column("created_at", Float, nullable=False),
    Column("published", Boolean, nullable=False, default=False, index=True),
)

silences = Table(
    "silences",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("topic", String(120)),
    Column("place", String(200)),
    Column("text", String(500)),
    Column("subscription", String(120)),
    Column("reason", Text, nullable=False),
    Column("created_by", String(120), nullable=False, default=""),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
)

rate_windows = Table(
    "rate_windows",
    metadata,
    Column("subscription_id", String(120), primary_key=True),
    Column("window_start", Float, primary_key=True),
    Column("count", Integer, nullable=False),
)


@dataclass(frozen=True, slots=True)
class StoredAlert:
    """An alert's row: identity, revision, timers and the lifecycle's JSON state."""

    alert_id: str
    story_id: str
    topic: str
    revision: int
    notify_at: float | None
    last_notified_at: float | None
    state: str


@dataclass(frozen=True, slots=True)
class Silence:
    """Suppress alerts matching every given field (topic, place, text, subscription) until `expires_at`."""

    id: str
    reason: str
    expires_at: float
    topic: str | None = None
    place: str | None = None
    text: str | None = None
    subscription: str | None = None
    created_by: str = ""
    created_at: float = 0.0


def _fail(what: str, exc: SQLAlchemyError) -> StoreError:
    return StoreError(f"{what}: {exc.__class__.__name__}: {exc}")


# Built once: the lifecycle loads and saves an alert per match, and building a statement (and its cache key)
# each time cost more CPU than running it.
_LOAD = select(alerts).where(alerts.c.alert_id == bindparam("b_id"))
_SAVE = (
    update(alerts)
    .where(alerts.c.alert_id == bindparam("b_id"))
    .values({k: bindparam(f"b_{k}") for k in (*StoredAlert.__slots__, "updated_at") if k != "alert_id"})
)


async def load(conn: AsyncConnection, alert_id: str) -> StoredAlert | None:
    """One alert by id, inside the caller's transaction."""
    row = (await conn.execute(_LOAD, {"b_id": alert_id})).first()
    if row is None:
        return None
    return StoredAlert(**{k: row._mapping[k] for k in StoredAlert.__slots__})


async def save(conn: AsyncConnection, a: StoredAlert, now: float) -> None:
    """Insert or update an alert row (the caller holds the transaction)."""
    values = {k: getattr(a, k) for k in StoredAlert.__slots__} | {"updated_at": now}
    res = await conn.execute(_SAVE, {f"b_{k}" if k != "alert_id" else "b_id": v for k, v in values.items()})
    if not res.rowcount:
        await conn.execute(alerts.insert(), values)


async def due(conn: AsyncConnection, now: float, limit: int = 200) -> list[StoredAlert]:
    """Alerts whose pending notification time has come."""
    stmt = (
        select(alerts)
        .where(and_(alerts.c.notify_at.is_not(None), alerts.c.notify_at <= now))
        .order_by(alerts.c.notify_at)
        .limit(limit)
    )
    return [
        StoredAlert(**{k: r._mapping[k] for k in StoredAlert.__slots__}) for r in await conn.execute(stmt)
    ]


async def next_notify_at(store: Store) -> float | None:
    """The earliest pending notification time, or None."""
    try:
        async with store.engine.connect() as conn:
            value = await conn.scalar(select(func.min(alerts.c.notify_at)))
    except SQLAlchemyError as exc:
        raise _fail("next notification time", exc) from exc
    return float(value) if value is not None else None


async def add_notification(
    store: Store,
    conn: AsyncConnection,
    *,
    id: str,
    alert_id: str,
    revision: int,
    kind: str,
    payload: str,
    fetched_at: float | None,
    now: float,
) -> None:
    """Record a decided notification in the outbox (idempotent on its id)."""
    await conn.execute(
        insert_ignore(store, notifications).values(
            id=id,
            alert_id=alert_id,
            revision=revision,
            kind=kind,
            payload=payload,
            fetched_at=fetched_at,
            created_at=now,
            published=False,
        )
    )


async def unpublished(store: Store, limit: int = 500) -> list[tuple[str, str, float | None]]:
    """Notifications not yet on the bus: (id, payload, fetched_at), oldest first."""
    stmt = (
        select(notifications.c.id, notifications.c.payload, notifications.c.fetched_at)
        .where(~notifications.c.published)
        .order_by(notifications.c.created_at)
        .limit(limit)
    )
    try:
        async with store.engine.connect() as conn:
            return [(r[0], r[1], r[2]) for r in await conn.execute(stmt)]
    except SQLAlchemyError as exc:
        raise _fail("read outbox", exc) from exc


async def mark_published(store: Store, ids: list[str]) -> None:
    """Mark outbox rows as published."""
    if not ids:
        return
    try:
        async with store.engine.begin() as conn:
            await conn.execute(update(notifications).where(notifications.c.id.in_(ids)).values(published=True))
    except SQLAlchemyError as exc:
        raise _fail("mark outbox published", exc) from exc


SILENCE_MAX_SECONDS = 90 * 86400
# Widths of the silences columns: longer values are refused rather than cut.
SILENCE_LIMITS = {"topic": 120, "place": 200, "text": 500, "subscription": 120, "reason": 1000}


def check_silence(s: Silence) -> None:
    """ValueError, naming the field, when a silence is not one we store."""
    if not (s.topic or s.place or s.text or s.subscription):
        raise ValueError("a silence needs at least one of topic, place, text, subscription")
    if not s.reason.strip():
        raise ValueError("reason: give a reason (shown to whoever wonders why alerts stopped)")
    for name, most in SILENCE_LIMITS.items():
        value = getattr(s, name)
        if value is not None and len(value) > most:
            raise ValueError(f"{name}: at most {most} characters")


def new_silence(*, reason: str, duration: float, now: float, created_by: str, topic: str | None = None,
                place: str | None = None, text: str | None = None, subscription: str | None = None) -> Silence:
    """A silence from now for `duration` seconds, checked (ValueError naming the field); the API and CLI share it."""
    if not 0 < duration <= SILENCE_MAX_SECONDS:
        raise ValueError("duration: more than 0 and at most 90 days")
    s = Silence(id="", reason=reason, expires_at=now + duration, topic=topic or None, place=place or None,
                text=text or None, subscription=subscription or None, created_by=created_by, created_at=now)
    if s.expires_at <= now:  # a duration too small to move `now`
        raise ValueError("duration: too short")
    check_silence(s)
    return s


async def add_silence(store: Store, s: Silence) -> Silence:
    """Store a silence (ValueError when `check_silence` refuses it); a missing id gets a fresh one."""
    check_silence(s)
    sid = s.id or f"sil_{uuid.uuid4().hex[:16]}"
    values: dict[str, Any] = {k: getattr(s, k) for k in Silence.__slots__} | {"id": sid}
    try:
        async with store.engine.begin() as conn:
            await conn.execute(silences.insert().values(**values))
    except SQLAlchemyError as exc:
        raise _fail("add silence", exc) from exc
    return Silence(**values)


async def active_silences(store: Store, now: float) -> list[Silence]:
    """Silences not yet expired, oldest first."""
    try:
        async with store.engine.connect() as conn:
            rows = await conn.execute(select(silences).where(silences.c.expires_at > now)
                                      .order_by(silences.c.created_at, silences.c.id))
            return [Silence(**{k: r._mapping[k] for k in Silence.__slots__}) for r in rows]
    except SQLAlchemyError as exc:
        raise _fail("read silences", exc) from exc


async def expire_silence(store: Store, silence_id: str, now: float) -> bool:
    """End a silence now; False when there was no such active silence."""
    try:
        async with store.engine.begin() as conn:
            res = await conn.execute(
                update(silences)
                .where(and_(silences.c.id == silence_id, silences.c.expires_at > now))
                .values(expires_at=now)
            )
            return bool(res.rowcount)
    except SQLAlchemyError as exc:
        raise _fail("expire silence", exc) from exc


async def take_rate(conn: AsyncConnection, subscription: str, window_start: float, limit: int) -> bool:
    """Count one notification in a subscription's window; False (and no count) when the limit is reached."""
    key = and_(rate_windows.c.subscription_id == subscription, rate_windows.c.window_start == window_start)
    used = await conn.scalar(select(rate_windows.c.count).where(key))
    if used is None:
        await conn.execute(
            rate_windows.insert().values(subscription_id=subscription, window_start=window_start, count=1)
        )
        return True
    if used >= limit:
        return False
    await conn.execute(update(rate_windows).where(key).values(count=rate_windows.c.count + 1))
    return True
