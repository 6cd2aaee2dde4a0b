"""Poller leases on feed rows: several pollers on one store share the feeds, and no feed is polled twice at once.

A poller claims feeds that are due and free with one conditional UPDATE per batch:

    UPDATE feeds SET lease_owner = :me, lease_until = :now + :ttl
     WHERE id IN (<candidates> [FOR UPDATE SKIP LOCKED])
       AND active AND next_poll <= :now AND (lease_until IS NULL OR lease_until < :now)
    RETURNING *

The condition is re-checked on the row the UPDATE locks (PostgreSQL re-evaluates it after a concurrent writer
commits; SQLite serialises writers), so two pollers racing for a feed cannot both get it; SKIP LOCKED lets the
loser move on instead of queueing behind the winner's row locks. The returned rows are the claimed feeds' current
state (another poller may have polled them last). Saving a polled feed releases its lease in the same statement
(`feeds.save_feeds(owner=...)`); a poller renews the leases of polls still in flight; a poller that dies leaves
leases that simply expire, and the feeds are claimed by another poller after at most the TTL.

Why leases in the store rather than Kafka partition assignment: the feeds table is already the shared truth that
the API edits, it exists on both engines (SQLite single host, PostgreSQL across hosts), and a lease moves one feed
at a time as pollers come and go (no rebalance pauses, no feed-to-partition mapping to keep in step with the table).
Claims are batched (one statement for up to a poller's free slots), so 10,000 feeds cost one UPDATE per batch of
due feeds, not one per feed; a poller claims no more than it can start at once, which spreads work across pollers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import and_, or_, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.sql.elements import ColumnElement

from newsmon.errors import StoreError
from newsmon.store.base import Store
from newsmon.store.feeds import FeedState, feeds, row_state, writing


@dataclass(frozen=True, slots=True)
class Slot:
    """An active feed's place in the schedule: when it is due and who holds it."""

    id: str
    next_poll: float
    lease_owner: str | None
    lease_until: float | None

    def due_at(self, now: float) -> float:
        """When a poller may claim it: when due, and not before another poller's lease ends."""
        if self.lease_until is not None and self.lease_until >= now:
            return max(self.next_poll, self.lease_until)
        return self.next_poll


def _free(now: float) -> ColumnElement[bool]:
    return or_(feeds.c.lease_until.is_(None), feeds.c.lease_until < now)


async def agenda(store: Store) -> list[Slot]:
    """Every active feed's schedule (a light read: four columns)."""
    query = select(feeds.c.id, feeds.c.next_poll, feeds.c.lease_owner, feeds.c.lease_until).where(
        feeds.c.active.is_(True)
    )
    try:
        async with store.engine.connect() as conn:
            return [Slot(r.id, r.next_poll, r.lease_owner, r.lease_until) for r in await conn.execute(query)]
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot read the feed schedule: {exc.__class__.__name__}: {exc}") from exc


async def claim(store: Store, ids: Sequence[str], owner: str, now: float, ttl: float) -> list[FeedState]:
    """Lease those of `ids` that are active, due and free to `owner`; their current states."""
    if not ids:
        return []
    claimable = and_(feeds.c.active.is_(True), feeds.c.next_poll <= now, _free(now))
    candidates = select(feeds.c.id).where(feeds.c.id.in_(list(ids)), claimable)
    if not store.is_sqlite:
        candidates = candidates.with_for_update(skip_locked=True)
    stmt = (
        update(feeds)
        .where(feeds.c.id.in_(candidates.scalar_subquery()), claimable)
        .values(lease_owner=owner, lease_until=now + ttl)
        .returning(*feeds.c)
    )
    try:
        async with writing(store) as conn:
            return [row_state(r) for r in await conn.execute(stmt)]
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot claim feeds: {exc.__class__.__name__}: {exc}") from exc


async def renew(store: Store, ids: Sequence[str], owner: str, now: float, ttl: float) -> int:
    """Extend `owner`'s leases on `ids` (polls still in flight); how many it still held."""
    if not ids:
        return 0
    stmt = (
        update(feeds)
        .where(feeds.c.id.in_(list(ids)), feeds.c.lease_owner == owner)
        .values(lease_until=now + ttl)
    )
    try:
        async with writing(store) as conn:
            return int((await conn.execute(stmt)).rowcount)
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot renew feed leases: {exc.__class__.__name__}: {exc}") from exc


async def release_all(store: Store, owner: str) -> int:
    """Drop every lease `owner` still holds (a clean stop); how many there were."""
    stmt = update(feeds).where(feeds.c.lease_owner == owner).values(lease_owner=None, lease_until=None)
    try:
        async with writing(store) as conn:
            return int((await conn.execute(stmt)).rowcount)
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot release feed leases: {exc.__class__.__name__}: {exc}") from exc
