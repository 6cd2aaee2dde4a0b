"""Tables and queries: deliveries (notification × subscription × channel), their attempts, endpoint state.

A delivery row is the unit of work of the delivery worker: `status` is pending, delivered, dead or suppressed;
`next_attempt_at` (unix seconds) says when it is due. Claiming a row names its holder (`lease_owner`, one id per
alerter process) and pushes `next_attempt_at` forward by a lease, so a worker that dies mid-attempt leaves the
row due again after the lease (same notification id, same `webhook-id`). Claims, lease extensions and outcomes are in
`delivery_leases`; this module has the tables, the rows as the worker and the CLI see them, and the admin
queries (list, attempt log, replay, endpoint state, gauges).
Times are unix seconds (floats) so comparisons stay portable between SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Sequence
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
    Column("lease_owner", String(120)),
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
    lease_owner: str | None = None  # the alerter process holding the row (an attempt in flight), if any


def insert_ignore(store: Store, table: Table) -> Insert:
    """INSERT that skips rows violating a unique constraint, for SQLite and PostgreSQL."""
    if store.is_sqlite:
        return sqlite.insert(table).on_conflict_do_nothing()
    return postgresql.insert(table).on_conflict_do_nothing()


def to_delivery(r: Any) -> Delivery:
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


def columns() -> list[Any]:
    return [deliveries.c[k] for k in Delivery.__slots__]

async def list_deliveries(
    store: Store, *, status: str | None = None, subscription: str | None = None, limit: int = 100
) -> list[Delivery]:
    """Most recent deliveries first, optionally filtered."""
    stmt = select(*columns()).order_by(deliveries.c.created_at.desc()).limit(limit)
    if status:
        stmt = stmt.where(deliveries.c.status == status)
    if subscription:
        stmt = stmt.where(deliveries.c.subscription_id == subscription)
    try:
        async with store.engine.connect() as conn:
            return [to_delivery(r) for r in await conn.execute(stmt)]
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
                .values(status="pending", attempts=0, next_attempt_at=now, updated_at=now, lease_owner=None)
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


async def repoint(store: Store, subscription: str, channel: str, endpoint: str, now: float) -> int:
    """Point the queued and dead rows of a subscription's channel at its new endpoint (a URL changed through the
    API), so breakers, lanes and claims all key on where they are sent now; how many rows moved."""
    stmt = (
        update(deliveries)
        .where(deliveries.c.subscription_id == subscription, deliveries.c.channel == channel,
               deliveries.c.status.in_(("pending", "dead")), deliveries.c.endpoint != endpoint)
        .values(endpoint=endpoint, updated_at=now)
    )
    try:
        async with store.engine.begin() as conn:
            return int((await conn.execute(stmt)).rowcount or 0)
    except SQLAlchemyError as exc:
        raise StoreError(f"repoint deliveries: {exc.__class__.__name__}: {exc}") from exc


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
