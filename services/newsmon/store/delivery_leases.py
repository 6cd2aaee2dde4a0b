"""Delivery leases: the delivery worker's side of the deliveries table — claim, extend, record.

    claim   pending rows that are due (a retry's time came, or another holder's lease ran out)
            → lease_owner = me, next_attempt_at = now + lease
    extend  the rows I still hold (attempts that run long, outcomes waiting for the store)
    record  outcomes, in one transaction per batch: release the rows I may write, write their new state,
            log every attempt

Whoever holds a row is the only one to record its outcome, so a holder whose lease ran out during a store outage
and was taken over cannot overwrite the new holder's state (a stale "retry" over a fresh "delivered" would send
the alert once more). A success is the exception: the receiver has the alert, whoever holds the row, so a late
success is recorded while the row is still pending, and the new holder's outcome is then refused. The store
counts the attempts it records (`attempts + 1`), so a late success adds to the new holder's count rather than
writing its own over it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, bindparam, or_, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.sql.elements import ColumnElement

from newsmon.errors import StoreError
from newsmon.store.base import Store
from newsmon.store.deliveries import Delivery, attempts, columns, deliveries, to_delivery


@dataclass(frozen=True, slots=True)
class Outcome:
    """The result of one attempt, to be written back (see `record`)."""

    delivery_id: str
    channel: str
    at: float
    outcome: str  # delivered | retry | dead | deferred
    latency: float
    status: str  # the row's new status (an attempt that is not deferred adds one to the row's count)
    next_attempt_at: float
    http_status: int | None = None
    error: str | None = None


async def claim(
    store: Store, owner: str, now: float, lease: float, limit: int, skip_endpoints: Iterable[str] = ()
) -> list[Delivery]:
    """Take up to `limit` due rows (not email digests), leasing them to `owner` until now + lease."""
    cond = and_(
        deliveries.c.status == "pending",
        deliveries.c.next_attempt_at <= now,
        ~and_(deliveries.c.digest, deliveries.c.channel == "email"),
    )
    skip = list(skip_endpoints)
    if skip:
        cond = and_(cond, deliveries.c.endpoint.not_in(skip))
    return await _lease(store, owner, cond, now + lease, limit)


async def claim_digests(
    store: Store, owner: str, now: float, lease: float, limit: int = 500
) -> list[Delivery]:
    """Take the email digest rows of subscriptions whose digest is due, with rows queued after the boundary
    (a digest sends all it has); the worker groups them per subscription."""
    digest = and_(deliveries.c.status == "pending", deliveries.c.digest, deliveries.c.channel == "email")
    due = select(deliveries.c.subscription_id).where(and_(digest, deliveries.c.next_attempt_at <= now))
    cond = and_(digest, deliveries.c.subscription_id.in_(due.scalar_subquery()))
    return await _lease(store, owner, cond, now + lease, limit)


async def _lease(store: Store, owner: str, cond: Any, until: float, limit: int) -> list[Delivery]:
    sub = select(deliveries.c.id).where(cond).order_by(deliveries.c.next_attempt_at).limit(limit)
    if not store.is_sqlite:
        sub = sub.with_for_update(skip_locked=True)
    stmt = (
        update(deliveries)
        .where(deliveries.c.id.in_(sub.scalar_subquery()))
        .values(next_attempt_at=until, lease_owner=owner)
        .returning(*columns())
    )
    try:
        async with store.engine.begin() as conn:
            return [to_delivery(r) for r in await conn.execute(stmt)]
    except SQLAlchemyError as exc:
        raise StoreError(f"claim deliveries: {exc.__class__.__name__}: {exc}") from exc


async def extend(store: Store, owner: str, ids: Sequence[str], until: float) -> set[str]:
    """Push the leases `owner` still holds on `ids` to `until`; which ones it still holds."""
    if not ids:
        return set()
    stmt = (
        update(deliveries)
        .where(deliveries.c.id.in_(list(ids)), deliveries.c.lease_owner == owner,
               deliveries.c.status == "pending")
        .values(next_attempt_at=until)
        .returning(deliveries.c.id)
    )
    try:
        async with store.engine.begin() as conn:
            return {r[0] for r in await conn.execute(stmt)}
    except SQLAlchemyError as exc:
        raise StoreError(f"extend delivery leases: {exc.__class__.__name__}: {exc}") from exc


_RECORD = (
    update(deliveries)
    .where(deliveries.c.id == bindparam("b_id"))
    .values(status=bindparam("b_status"), attempts=deliveries.c.attempts + 1, updated_at=bindparam("b_at"),
            next_attempt_at=bindparam("b_next"), last_status=bindparam("b_http"),
            last_error=bindparam("b_error"), delivered_at=bindparam("b_done"))
)
_DEFER = (
    update(deliveries)
    .where(deliveries.c.id == bindparam("b_id"))
    .values(next_attempt_at=bindparam("b_next"))
)


def _held(owner: str, outcomes: Sequence[Outcome]) -> ColumnElement[bool]:
    """The rows `owner` may write: those it holds, and, for a success, any row still pending."""
    mine = [o.delivery_id for o in outcomes]
    won = [o.delivery_id for o in outcomes if o.status == "delivered"]
    held = and_(deliveries.c.id.in_(mine), deliveries.c.lease_owner == owner)
    if not won:
        return held
    return or_(held, and_(deliveries.c.id.in_(won), deliveries.c.status == "pending"))


async def record(store: Store, owner: str, outcomes: Sequence[Outcome]) -> set[str]:
    """Write a batch of attempt outcomes in one transaction: release the rows `owner` may write (see the module
    docstring), then their new state, then every attempt in the log. Returns the ids whose outcome was refused
    (the lease was lost); their attempts are logged all the same."""
    if not outcomes:
        return set()
    release = update(deliveries).where(_held(owner, outcomes)).values(lease_owner=None).returning(deliveries.c.id)
    try:
        async with store.engine.begin() as conn:
            # The release takes the rows' write locks first (and SQLite's write lock), so nothing interleaves.
            ours = {r[0] for r in await conn.execute(release)}
            rows = [{"b_id": o.delivery_id, "b_status": o.status, "b_at": o.at,
                     "b_next": o.next_attempt_at, "b_http": o.http_status, "b_error": o.error,
                     "b_done": o.at if o.status == "delivered" else None}
                    for o in outcomes if o.outcome != "deferred" and o.delivery_id in ours]
            deferred = [{"b_id": o.delivery_id, "b_next": o.next_attempt_at}
                        for o in outcomes if o.outcome == "deferred" and o.delivery_id in ours]
            logged = [{"delivery_id": o.delivery_id, "at": o.at, "outcome": o.outcome,
                       "http_status": o.http_status, "latency": o.latency, "error": o.error}
                      for o in outcomes if o.outcome != "deferred"]
            if rows:
                await conn.execute(_RECORD, rows)
            if deferred:
                await conn.execute(_DEFER, deferred)
            if logged:
                await conn.execute(attempts.insert(), logged)
    except SQLAlchemyError as exc:
        raise StoreError(f"record deliveries: {exc.__class__.__name__}: {exc}") from exc
    return {o.delivery_id for o in outcomes} - ours
