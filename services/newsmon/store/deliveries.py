"""Tables and queries: deliveries (notification × subscription × channel), their attempts, endpoint state.

A delivery row is the unit of work of the delivery worker: `status` is pending, delivered, dead or suppressed;
`next_attempt_at` (unix seconds) says when it is due. Claiming a row pushes `next_attempt_at` forward by a
lease, so a worker that dies mid-attempt leaves the row due again after the lease (same notification id, same
`webhook-id`). Times are unix seconds (floats) so comparisons stay portable between SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    and_,
    bindparam,
    func,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.dml import Insert

from newsmon.errors import StoreError
from newsmon.store.base import Store, metadata

STATUSES = ("pending", "delivered", "dead", "suppressed")

deliveries = Table(
    "deliveries",
    metadata,
    Column("id", String(200), primary_key=True),
    Column("notification_id", String(120), nullable=False),
    Column("alert_id", String(120), nullable=False),
    Column("subscription_id", String(120), nullable=False),
    Column("channel", String(20), nullable=False),
    Column("endpoint", String(500), nullable=False),
    Column("status", String(20), nullable=False),
    Column("digest", Boolean, nullable=False, default=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", Float, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("delivered_at", Float),
    Column("fetched_at", Float),
    Column("last_status", Integer),
    Column("last_error", Text),
    Column("payload", Text, nullable=False),
    UniqueConstraint("notification_id", "subscription_id", "channel", name="uq_delivery"),
)
Index("ix_deliveries_due", deliveries.c.status, deliveries.c.next_attempt_at)
Index("ix_deliveries_sub", deliveries.c.subscription_id, deliveries.c.status)

attempts = Table(
    "delivery_attempts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("delivery_id", String(200), nullable=False, index=True),
    Column("at", Float, nullable=False),
    Column("outcome", String(20), nullable=False),
    Column("http_status", Integer),
    Column("latency", Float, nullable=False),
    Column("error", Text),
)

endpoints = Table(
    "delivery_endpoints",
    metadata,
    Column("endpoint", String(500), primary_key=True),
    Column("disabled", Boolean, nullable=False, default=False),
    Column("reason", Text),
    Column("updated_at", Float, nullable=False),
)


@dataclass(frozen=True, slots=True)
class Delivery:
    """One delivery row as the worker and the CLI see it."""

    id: str
    notification_id: str
    alert_id: str
    subscription_id: str
    channel: str
    endpoint: str
    status: str
    digest: bool
    attempts: int
    next_attempt_at: float
    created_at: float
    delivered_at: float | None
    fetched_at: float | None
    last_status: int | None
    last_error: str | None
    payload: str


@dataclass(frozen=True, slots=True)
class Outcome:
    """The result of one attempt, to be written back (see `record`)."""

    delivery_id: str
    at: float
    outcome: str  # delivered | retry | dead | deferred
    latency: float
    status: str  # the row's new status
    attempts: int
    next_attempt_at: float
    http_status: int | None = None
    error: str | None = None


def insert_ignore(store: Store, table: Table) -> Insert:
    """INSERT that skips rows violating a unique constraint, for SQLite and PostgreSQL."""
    if store.is_sqlite:
        return sqlite.insert(table).on_conflict_do_nothing()
    return postgresql.insert(table).on_conflict_do_nothing()


def _row(r: Any) -> Delivery:
    return Delivery(**{k: r._mapping[k] for k in Delivery.__slots__})


def delivery_id(notification_id: str, subscription_id: str, channel: str) -> str:
    """The deterministic primary key of a delivery."""
    return f"{notification_id}:{subscription_id}:{channel}"


async def exists(conn: AsyncConnection, ids: Sequence[str]) -> set[str]:
    """Which of these delivery ids are already stored."""
    if not ids:
        return set()
    rows = await conn.execute(select(deliveries.c.id).where(deliveries.c.id.in_(ids)))
    return {r[0] for r in rows}


async def add(store: Store, conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> None:
    """Insert delivery rows, ignoring ones that exist (a re-consumed alert)."""
    if rows:
        await conn.execute(insert_ignore(store, deliveries), list(rows))


def _columns() -> list[Any]:
    return [deliveries.c[k] for k in Delivery.__slots__]


async def claim(
    store: Store, now: float, lease: float, limit: int, skip_endpoints: Iterable[str] = ()
) -> list[Delivery]:
    """Take up to `limit` due rows (not email digests), leasing them until now + lease."""
    cond = and_(
        deliveries.c.status == "pending",
        deliveries.c.next_attempt_at <= now,
        ~and_(deliveries.c.digest, deliveries.c.channel == "email"),
    )
    skip = list(skip_endpoints)
    if skip:
        cond = and_(cond, deliveries.c.endpoint.not_in(skip))
    return await _lease(store, cond, now + lease, limit)


async def claim_digests(store: Store, now: float, lease: float, limit: int = 500) -> list[Delivery]:
    """Take the email digest rows of subscriptions whose digest is due, with rows queued after the boundary
    (a digest sends all it has); the worker groups them per subscription."""
    digest = and_(deliveries.c.status == "pending", deliveries.c.digest, deliveries.c.channel == "email")
    due = select(deliveries.c.subscription_id).where(and_(digest, deliveries.c.next_attempt_at <= now))
    cond = and_(digest, deliveries.c.subscription_id.in_(due.scalar_subquery()))
    return await _lease(store, cond, now + lease, limit)


async def _lease(store: Store, cond: Any, until: float, limit: int) -> list[Delivery]:
    sub = select(deliveries.c.id).where(cond).order_by(deliveries.c.next_attempt_at).limit(limit)
    if not store.is_sqlite:
        sub = sub.with_for_update(skip_locked=True)
    stmt = (
        update(deliveries)
        .where(deliveries.c.id.in_(sub.scalar_subquery()))
        .values(next_attempt_at=until)
        .returning(*_columns())
    )
    try:
        async with store.engine.begin() as conn:
            return [_row(r) for r in await conn.execute(stmt)]
    except SQLAlchemyError as exc:
        raise StoreError(f"claim deliveries: {exc.__class__.__name__}: {exc}") from exc


_RECORD = (
    update(deliveries)
    .where(deliveries.c.id == bindparam("b_id"))
    .values(status=bindparam("b_status"), attempts=bindparam("b_attempts"), updated_at=bindparam("b_at"),
            next_attempt_at=bindparam("b_next"), last_status=bindparam("b_http"),
            last_error=bindparam("b_error"), delivered_at=bindparam("b_done"))
)
_DEFER = (
    update(deliveries)
    .where(deliveries.c.id == bindparam("b_id"))
    .values(next_attempt_at=bindparam("b_next"))
)


async def record(store: Store, outcomes: Sequence[Outcome]) -> None:
    """Write a batch of attempt outcomes: the rows' new state and the attempt log, in one transaction."""
    done = [o for o in outcomes if o.outcome != "deferred"]
    deferred = [{"b_id": o.delivery_id, "b_next": o.next_attempt_at}
                for o in outcomes if o.outcome == "deferred"]
    rows = [{"b_id": o.delivery_id, "b_status": o.status, "b_attempts": o.attempts, "b_at": o.at,
             "b_next": o.next_attempt_at, "b_http": o.http_status, "b_error": o.error,
             "b_done": o.at if o.status == "delivered" else None} for o in done]
    logged = [{"delivery_id": o.delivery_id, "at": o.at, "outcome": o.outcome, "http_status": o.http_status,
               "latency": o.latency, "error": o.error} for o in done]
    try:
        async with store.engine.begin() as conn:
            if rows:
                await conn.execute(_RECORD, rows)
                await conn.execute(attempts.insert(), logged)
            if deferred:
                await conn.execute(_DEFER, deferred)
    except SQLAlchemyError as exc:
        raise StoreError(f"record deliveries: {exc.__class__.__name__}: {exc}") from exc


async def list_deliveries(
    store: Store, *, status: str | None = None, subscription: str | None = None, limit: int = 100
) -> list[Delivery]:
    """Most recent deliveries first, optionally filtered."""
    stmt = select(*_columns()).order_by(deliveries.c.created_at.desc()).limit(limit)
    if status:
        stmt = stmt.where(deliveries.c.status == status)
    if subscription:
        stmt = stmt.where(deliveries.c.subscription_id == subscription)
    try:
        async with store.engine.connect() as conn:
            return [_row(r) for r in await conn.execute(stmt)]
    except SQLAlchemyError as exc:
        raise StoreError(f"list deliveries: {exc.__class__.__name__}: {exc}") from exc


async def attempt_log(store: Store, delivery: str) -> list[dict[str, Any]]:
    """Every attempt of one delivery, oldest first."""
    stmt = select(attempts).where(attempts.c.delivery_id == delivery).order_by(attempts.c.id)
    try:
        async with store.engine.connect() as conn:
            return [dict(r._mapping) for r in await conn.execute(stmt)]
    except SQLAlchemyError as exc:
        raise StoreError(f"read attempt log: {exc.__class__.__name__}: {exc}") from exc


async def replay(
    store: Store,
    now: float,
    *,
    delivery: str | None = None,
    subscription: str | None = None,
    since: float | None = None,
    everything: bool = False,
) -> int:
    """Put dead deliveries back in the queue (same notification id), re-enabling their endpoints; a count."""
    if not (delivery or subscription or since is not None or everything):
        raise ValueError("replay needs a filter: a delivery id, a subscription, a time, or everything")
    cond = deliveries.c.status == "dead"
    if delivery:
        cond = and_(cond, deliveries.c.id == delivery)
    if subscription:
        cond = and_(cond, deliveries.c.subscription_id == subscription)
    if since is not None:
        cond = and_(cond, deliveries.c.updated_at >= since)
    try:
        async with store.engine.begin() as conn:
            eps = [r[0] for r in await conn.execute(select(deliveries.c.endpoint).where(cond).distinct())]
            res = await conn.execute(
                update(deliveries)
                .where(cond)
                .values(status="pending", attempts=0, next_attempt_at=now, updated_at=now)
            )
            if eps:
                await conn.execute(
                    update(endpoints)
                    .where(endpoints.c.endpoint.in_(eps))
                    .values(disabled=False, reason="replayed", updated_at=now)
                )
            return int(res.rowcount or 0)
    except SQLAlchemyError as exc:
        raise StoreError(f"replay deliveries: {exc.__class__.__name__}: {exc}") from exc


async def disable_endpoint(store: Store, endpoint: str, reason: str, now: float) -> None:
    """Mark an endpoint disabled (410 Gone); its deliveries dead-letter until replayed."""
    stmt = insert_ignore(store, endpoints).values(
        endpoint=endpoint, disabled=True, reason=reason, updated_at=now
    )
    try:
        async with store.engine.begin() as conn:
            await conn.execute(stmt)
            await conn.execute(
                update(endpoints)
                .where(endpoints.c.endpoint == endpoint)
                .values(disabled=True, reason=reason, updated_at=now)
            )
    except SQLAlchemyError as exc:
        raise StoreError(f"disable endpoint: {exc.__class__.__name__}: {exc}") from exc


async def disabled_endpoints(store: Store) -> dict[str, str]:
    """Disabled endpoints and why."""
    try:
        async with store.engine.connect() as conn:
            rows = await conn.execute(
                select(endpoints.c.endpoint, endpoints.c.reason).where(endpoints.c.disabled)
            )
            return {r[0]: r[1] or "" for r in rows}
    except SQLAlchemyError as exc:
        raise StoreError(f"read disabled endpoints: {exc.__class__.__name__}: {exc}") from exc


async def counts(store: Store) -> dict[str, int]:
    """Deliveries per status (the retry-queue and dead-letter gauges)."""
    try:
        async with store.engine.connect() as conn:
            rows = await conn.execute(select(deliveries.c.status, func.count()).group_by(deliveries.c.status))
            return {r[0]: int(r[1]) for r in rows}
    except SQLAlchemyError as exc:
        raise StoreError(f"count deliveries: {exc.__class__.__name__}: {exc}") from exc


async def next_due(store: Store) -> float | None:
    """When the earliest pending delivery is due, or None when nothing is pending."""
    try:
        async with store.engine.connect() as conn:
            value = await conn.scalar(
                select(func.min(deliveries.c.next_attempt_at)).where(deliveries.c.status == "pending")
            )
    except SQLAlchemyError as exc:
        raise StoreError(f"next due delivery: {exc.__class__.__name__}: {exc}") from exc
    return float(value) if value is not None else None
