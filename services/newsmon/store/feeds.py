"""The feeds table and its queries: what to poll (config or API), conditional-GET validators, schedule, health.

Who writes what: the config sync owns config rows' name, interval and URL; the API owns `active` and its own rows;
a poll's save owns the polled state (validators, schedule, health) and releases the poller's lease (`leases.py`);
the WebSub callback owns the subscription fields. The seen-article memory per feed is in `seen.py`.
Times are unix seconds.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, fields
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
    delete,
    func,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection

from newsmon.errors import StoreError
from newsmon.store.base import Store, metadata

feeds = Table(
    "feeds",
    metadata,
    Column("id", String(80), primary_key=True),
    Column("url", Text, nullable=False),
    Column("config_url", Text, nullable=False),
    Column("name", Text, nullable=False, default=""),
    Column("lang", String(16)),
    Column("interval", Float, nullable=False),
    Column("current_interval", Float, nullable=False),
    Column("active", Boolean, nullable=False, default=True),
    Column("etag", Text),
    Column("last_modified", Text),
    Column("body_hash", String(64)),
    Column("next_poll", Float, nullable=False, default=0.0, index=True),
    Column("last_poll", Float),
    Column("last_success", Float),
    Column("last_error", Text),
    Column("last_error_at", Float),
    Column("error_streak", Integer, nullable=False, default=0),
    Column("polls", Integer, nullable=False, default=0),
    Column("items_per_day", Float),
    Column("max_items", Integer, nullable=False, default=0),
    Column("gaps", Integer, nullable=False, default=0),
    Column("last_gap_at", Float),
    Column("title", Text, nullable=False, default=""),
    Column("hub", Text),
    Column("websub_secret", String(80)),
    Column("websub_until", Float),
    Column("origin", String(10), nullable=False, default="config", server_default="config"),
    Column("lease_owner", String(120)),
    Column("lease_until", Float),
)

@dataclass(slots=True)
class FeedState:
    """One feed's row; the poller mutates it and saves it after every poll."""

    id: str
    url: str
    config_url: str
    interval: float
    current_interval: float
    name: str = ""
    lang: str | None = None
    active: bool = True
    etag: str | None = None
    last_modified: str | None = None
    body_hash: str | None = None
    next_poll: float = 0.0
    last_poll: float | None = None
    last_success: float | None = None
    last_error: str | None = None
    last_error_at: float | None = None
    error_streak: int = 0
    polls: int = 0
    items_per_day: float | None = None
    max_items: int = 0
    gaps: int = 0
    last_gap_at: float | None = None
    title: str = ""
    hub: str | None = None
    websub_secret: str | None = None
    websub_until: float | None = None  # lease end of the hub's verified subscription
    origin: str = "config"  # 'config' (the config file owns it) or 'api' (added through the API)
    lease_owner: str | None = None  # the poller polling it now (see store/leases.py)
    lease_until: float | None = None

    @property
    def health(self) -> str:
        """ok / failing / new, for listings and the dashboard."""
        if self.error_streak:
            return "failing"
        return "ok" if self.last_success else "new"


_FIELDS = [f.name for f in fields(FeedState)]


def row_state(row: Any) -> FeedState:
    m = row._mapping  # (a new view on every access: taken once)
    return FeedState(**{k: m[k] for k in _FIELDS})


@asynccontextmanager
async def writing(store: Store) -> AsyncIterator[AsyncConnection]:
    """A write transaction; on SQLite it takes the write lock up front (BEGIN IMMEDIATE).

    A deferred transaction whose read snapshot goes stale fails with "database is locked" at once instead of
    waiting its turn (busy_timeout does not apply to that case).
    """
    async with store.engine.begin() as conn:
        if store.is_sqlite:
            await conn.exec_driver_sql("BEGIN IMMEDIATE")
        yield conn


def fail(what: str, exc: SQLAlchemyError) -> StoreError:
    return StoreError(f"{what}: {exc.__class__.__name__}: {exc}")


async def sync_feeds(store: Store, configured: Sequence[FeedState], now: float) -> list[FeedState]:
    """Make the config's rows match the configuration; the active feeds (of any origin).

    New config feeds are due now; config feeds gone from the file are deleted (their seen-article memory stays,
    so adding one back publishes nothing old); feeds added through the API are left alone, and so is `active`
    (a config feed paused through the API stays paused across restarts). A row added through the API under an
    id the config now uses becomes the config's.
    """
    wanted = {f.id: f for f in configured}
    try:
        async with writing(store) as conn:
            if not store.is_sqlite:  # pollers starting together on PostgreSQL: one sync at a time
                await conn.execute(select(func.pg_advisory_xact_lock(_SYNC_LOCK)))
            existing = {r.id: _Configured(*r) for r in await conn.execute(select(*_CONFIGURED))}
            new = [f for fid, f in wanted.items() if fid not in existing]
            for feed in new:
                feed.next_poll, feed.origin = now, "config"
            if new:  # one statement, many parameter sets: 10,000 new feeds in well under a second
                await conn.execute(feeds.insert(), [{k: getattr(f, k) for k in _FIELDS} for f in new])
            changed = [_config_changes(old, wanted[fid], now) for fid, old in existing.items() if fid in wanted]
            await _apply_changes(conn, [c for c in changed if len(c) > 1])
            gone = [fid for fid, old in existing.items() if fid not in wanted and old.origin == "config"]
            if gone:
                await conn.execute(delete(feeds).where(feeds.c.id.in_(gone)))
            rows = await conn.execute(select(feeds).where(feeds.c.active.is_(True)))
            return [row_state(r) for r in rows]
    except SQLAlchemyError as exc:
        raise fail("cannot sync feeds", exc) from exc


_CONFIGURED = [feeds.c.id, feeds.c.name, feeds.c.lang, feeds.c.interval, feeds.c.origin, feeds.c.config_url]


@dataclass(frozen=True, slots=True)
class _Configured:
    """What the config sync compares in an existing row."""

    id: str
    name: str
    lang: str | None
    interval: float
    origin: str
    config_url: str


def _config_changes(old: _Configured, feed: FeedState, now: float) -> dict[str, Any]:
    """What the config changes in an existing row: {"id": ..., column: value, ...} (only "id": nothing)."""
    owned = {"name": feed.name, "lang": feed.lang, "interval": feed.interval, "origin": "config"}
    changes: dict[str, Any] = {"id": old.id} | {k: v for k, v in owned.items() if getattr(old, k) != v}
    if old.config_url != feed.config_url:  # the operator changed the URL: start over on it
        changes.update(
            url=feed.url, config_url=feed.config_url, etag=None, last_modified=None, body_hash=None, next_poll=now
        )
    if old.interval != feed.interval:
        changes["current_interval"] = feed.interval
    return changes


async def _apply_changes(conn: AsyncConnection, changes: list[dict[str, Any]]) -> None:
    """One UPDATE statement per set of changed columns, with many parameter sets (not one per feed)."""
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for change in changes:
        groups.setdefault(tuple(sorted(change)), []).append(change)
    for columns, rows in groups.items():
        values: dict[str, Any] = {k: bindparam("_" + k) for k in columns if k != "id"}
        stmt = update(feeds).where(feeds.c.id == bindparam("_id")).values(values)
        await conn.execute(stmt, [{"_" + k: v for k, v in row.items()} for row in rows])


async def list_feeds(store: Store, *, include_inactive: bool = False) -> list[FeedState]:
    """Every (active) feed with its health, ordered by id."""
    query = select(feeds).order_by(feeds.c.id)
    if not include_inactive:
        query = query.where(feeds.c.active.is_(True))
    try:
        async with store.engine.connect() as conn:
            return [row_state(r) for r in await conn.execute(query)]
    except SQLAlchemyError as exc:
        raise fail("cannot list feeds", exc) from exc


async def get_feed(store: Store, feed_id: str) -> FeedState | None:
    """One feed (active or not), or None."""
    try:
        async with store.engine.connect() as conn:
            row = (await conn.execute(select(feeds).where(feeds.c.id == feed_id))).first()
    except SQLAlchemyError as exc:
        raise fail("cannot read feed", exc) from exc
    return row_state(row) if row is not None else None


async def add_feed(store: Store, state: FeedState) -> str | None:
    """Insert a new feed; None, or why it conflicts with an existing one (same id or URL)."""
    try:
        async with writing(store) as conn:
            if (await conn.execute(select(feeds.c.id).where(feeds.c.url == state.url))).first() is not None:
                return f"a feed with url {state.url!r} exists"
            if (await conn.execute(select(feeds.c.id).where(feeds.c.id == state.id))).first() is not None:
                return f"a feed with id {state.id!r} exists"
            await conn.execute(feeds.insert().values(**{k: getattr(state, k) for k in _FIELDS}))
    except IntegrityError:  # inserted by someone else between our check and our insert
        return f"a feed with id {state.id!r} exists"
    except SQLAlchemyError as exc:
        raise fail("cannot add feed", exc) from exc
    return None


async def set_active(store: Store, feed_id: str, active: bool, now: float) -> None:
    """Pause a feed (pollers drop it at their next reload) or resume it (due now)."""
    values: dict[str, Any] = {"active": active} | ({"next_poll": now} if active else {})
    try:
        async with writing(store) as conn:
            await conn.execute(update(feeds).where(feeds.c.id == feed_id).values(**values))
    except SQLAlchemyError as exc:
        raise fail("cannot pause or resume feed", exc) from exc


async def remove_feed(store: Store, feed_id: str) -> None:
    """Delete a feed and its seen-article memory (a poll in flight then saves nothing)."""
    from newsmon.store.seen import feed_items

    try:
        async with writing(store) as conn:
            await conn.execute(delete(feed_items).where(feed_items.c.feed_id == feed_id))
            await conn.execute(delete(feeds).where(feeds.c.id == feed_id))
    except SQLAlchemyError as exc:
        raise fail("cannot remove feed", exc) from exc


async def websub_due(store: Store, before: float) -> list[FeedState]:
    """Active feeds with a WebSub hub and no subscription lasting past `before`."""
    lasting = and_(feeds.c.websub_until.is_not(None), feeds.c.websub_until >= before)
    query = select(feeds).where(feeds.c.active.is_(True), feeds.c.hub.is_not(None), ~lasting)
    try:
        async with store.engine.connect() as conn:
            return [row_state(r) for r in await conn.execute(query)]
    except SQLAlchemyError as exc:
        raise fail("cannot list feeds to subscribe", exc) from exc


async def websub_secret(store: Store, feed_id: str, candidate: str) -> str | None:
    """The feed's WebSub secret, set to `candidate` if it has none yet (pollers racing agree on one)."""
    table = feeds
    try:
        async with writing(store) as conn:
            await conn.execute(update(table).where(table.c.id == feed_id, table.c.websub_secret.is_(None))
                               .values(websub_secret=candidate))
            row = (await conn.execute(select(table.c.websub_secret).where(table.c.id == feed_id))).first()
    except SQLAlchemyError as exc:
        raise fail("cannot set the WebSub secret", exc) from exc
    return None if row is None else row.websub_secret


async def websub_verified(store: Store, feed_id: str, until: float | None) -> None:
    """Record the end of the hub's verified subscription (None: denied or ended)."""
    try:
        async with writing(store) as conn:
            await conn.execute(update(feeds).where(feeds.c.id == feed_id).values(websub_until=until))
    except SQLAlchemyError as exc:
        raise fail("cannot save the WebSub lease", exc) from exc


# What a poll changes. Not what the config or the API own (name, interval, active, origin), nor the lease, nor
# what the WebSub callback records (its own writes above).
_SAVED = [k for k in _FIELDS if k not in ("id", "config_url", "interval", "name", "lang", "active", "origin",
                                         "lease_owner", "lease_until", "websub_secret", "websub_until")]
_SYNC_LOCK = 0x6E6D_0001  # pg advisory lock key of sync_feeds


async def save_feed(store: Store, state: FeedState) -> None:
    """Persist one feed's polled state (tests and tools; the poller saves in batches with `save_feeds`)."""
    values = {k: getattr(state, k) for k in _SAVED}
    try:
        async with writing(store) as conn:
            await conn.execute(update(feeds).where(feeds.c.id == state.id).values(**values))
    except SQLAlchemyError as exc:
        raise fail("cannot save feed state", exc) from exc


_STATISTICS = ("items_per_day", "gaps", "last_gap_at", "current_interval")


async def save_statistics(store: Store, state: FeedState) -> None:
    """Persist only a feed's publishing-rate and gap statistics (a WebSub push: the poll state is a poller's)."""
    values = {k: getattr(state, k) for k in _STATISTICS}
    try:
        async with writing(store) as conn:
            await conn.execute(update(feeds).where(feeds.c.id == state.id).values(**values))
    except SQLAlchemyError as exc:
        raise fail("cannot save feed statistics", exc) from exc


async def save_feeds(store: Store, states: Sequence[FeedState], owner: str | None = None) -> list[str]:
    """Persist many feeds' polled states in one transaction (one statement, many parameter sets).

    With `owner`, only rows that poller still holds are written, and their lease is released in the same
    statement: a poller whose lease ran out (and was taken over) cannot overwrite the newer poller's work. Returns
    the ids not written for that reason (a feed deleted meanwhile is not among them).
    """
    if not states:
        return []
    values: dict[str, Any] = {k: bindparam("_" + k) for k in _SAVED}
    cond = feeds.c.id == bindparam("_id")
    lost: list[str] = []
    if owner is not None:
        cond = and_(cond, feeds.c.lease_owner == owner)
        values |= {"lease_owner": None, "lease_until": None}
    stmt = update(feeds).where(cond).values(values)
    rows = [{"_id": s.id, **{"_" + k: getattr(s, k) for k in _SAVED}} for s in states]
    try:
        async with writing(store) as conn:
            if owner is not None:
                held_elsewhere = feeds.c.lease_owner.is_(None) | (feeds.c.lease_owner != owner)
                query = select(feeds.c.id).where(feeds.c.id.in_([s.id for s in states]), held_elsewhere)
                lost = [r.id for r in await conn.execute(query)]
            await conn.execute(stmt, rows)
        return lost
    except SQLAlchemyError as exc:
        raise fail("cannot save feed states", exc) from exc
