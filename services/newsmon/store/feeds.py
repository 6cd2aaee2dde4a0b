"""Tables and queries: feed state (conditional-GET validators, schedule, health) and seen articles per feed.

`feed_items` is the de-duplication memory: one row per article id of a feed with its content hash and revision
(edits), its canonical-link key (GUID churn) and when it was last present in the document. It is bounded per
feed: the rows least recently present are pruned first, so items still in the document are never forgotten.
Times are unix seconds.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, fields
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
    and_,
    bindparam,
    delete,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

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

feed_items = Table(
    "feed_items",
    metadata,
    Column("feed_id", String(80), primary_key=True),
    Column("id", String(80), primary_key=True),
    Column("link_key", String(64)),
    Column("content_hash", String(64), nullable=False),
    Column("revision", Integer, nullable=False, default=1),
    Column("first_seen", Float, nullable=False),
    Column("last_seen", Float, nullable=False),
    Index("ix_feed_items_link", "feed_id", "link_key"),
    Index("ix_feed_items_last_seen", "feed_id", "last_seen"),
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

    @property
    def health(self) -> str:
        """ok / failing / new, for listings and the dashboard."""
        if self.error_streak:
            return "failing"
        return "ok" if self.last_success else "new"


@dataclass(frozen=True, slots=True)
class SeenRow:
    """A remembered article of a feed."""

    id: str
    link_key: str | None
    content_hash: str
    revision: int


_FIELDS = [f.name for f in fields(FeedState)]


def _state(row: Any) -> FeedState:
    return FeedState(**{k: row._mapping[k] for k in _FIELDS})


@asynccontextmanager
async def _writing(store: Store) -> AsyncIterator[AsyncConnection]:
    """A write transaction; on SQLite it takes the write lock up front (BEGIN IMMEDIATE).

    A deferred transaction whose read snapshot goes stale fails with "database is locked" at once instead of
    waiting its turn (busy_timeout does not apply to that case).
    """
    async with store.engine.begin() as conn:
        if store.is_sqlite:
            await conn.exec_driver_sql("BEGIN IMMEDIATE")
        yield conn


def _fail(what: str, exc: SQLAlchemyError) -> StoreError:
    return StoreError(f"{what}: {exc.__class__.__name__}: {exc}")


async def sync_feeds(store: Store, configured: Sequence[FeedState], now: float) -> list[FeedState]:
    """Make the table match the configuration (new feeds due now, removed ones inactive); the active feeds."""
    wanted = {f.id: f for f in configured}
    try:
        async with _writing(store) as conn:
            existing = {r.id: _state(r) for r in await conn.execute(select(feeds))}
            for fid, feed in wanted.items():
                old = existing.get(fid)
                if old is None:
                    feed.next_poll = now
                    await conn.execute(feeds.insert().values(**{k: getattr(feed, k) for k in _FIELDS}))
                    continue
                changes: dict[str, Any] = {
                    "active": True,
                    "name": feed.name,
                    "lang": feed.lang,
                    "interval": feed.interval,
                }
                if old.config_url != feed.config_url:  # the operator changed the URL: start over on it
                    changes.update(
                        url=feed.url,
                        config_url=feed.config_url,
                        etag=None,
                        last_modified=None,
                        body_hash=None,
                        next_poll=now,
                    )
                if old.interval != feed.interval:
                    changes["current_interval"] = feed.interval
                await conn.execute(update(feeds).where(feeds.c.id == fid).values(**changes))
            gone = [fid for fid in existing if fid not in wanted and existing[fid].active]
            if gone:
                await conn.execute(update(feeds).where(feeds.c.id.in_(gone)).values(active=False))
            rows = await conn.execute(select(feeds).where(feeds.c.active.is_(True)))
            return [_state(r) for r in rows]
    except SQLAlchemyError as exc:
        raise _fail("cannot sync feeds", exc) from exc


async def list_feeds(store: Store, *, include_inactive: bool = False) -> list[FeedState]:
    """Every (active) feed with its health, ordered by id."""
    query = select(feeds).order_by(feeds.c.id)
    if not include_inactive:
        query = query.where(feeds.c.active.is_(True))
    try:
        async with store.engine.connect() as conn:
            return [_state(r) for r in await conn.execute(query)]
    except SQLAlchemyError as exc:
        raise _fail("cannot list feeds", exc) from exc


async def save_feed(store: Store, state: FeedState) -> None:
    """Persist one feed's state after a poll."""
    values = {
        k: getattr(state, k) for k in _FIELDS if k not in ("id", "config_url", "interval", "name", "lang")
    }
    try:
        async with _writing(store) as conn:
            await conn.execute(update(feeds).where(feeds.c.id == state.id).values(**values))
    except SQLAlchemyError as exc:
        raise _fail("cannot save feed state", exc) from exc


_SAVED = [k for k in _FIELDS if k not in ("id", "config_url", "interval", "name", "lang")]


async def save_feeds(store: Store, states: Sequence[FeedState]) -> None:
    """Persist many feeds' states in one transaction (one statement, many parameter sets)."""
    if not states:
        return
    stmt = update(feeds).where(feeds.c.id == bindparam("_id")).values({k: bindparam("_" + k) for k in _SAVED})
    rows = [{"_id": s.id, **{"_" + k: getattr(s, k) for k in _SAVED}} for s in states]
    try:
        async with _writing(store) as conn:
            await conn.execute(stmt, rows)
    except SQLAlchemyError as exc:
        raise _fail("cannot save feed states", exc) from exc


async def load_seen(
    store: Store, feed_id: str, ids: Iterable[str], link_keys: Iterable[str]
) -> list[SeenRow]:
    """The remembered rows among these ids or canonical-link keys."""
    ids, keys = list(ids), [k for k in link_keys if k]
    cond: ColumnElement[bool] = feed_items.c.id.in_(ids)
    if keys:
        cond = or_(cond, feed_items.c.link_key.in_(keys))
    query = select(
        feed_items.c.id, feed_items.c.link_key, feed_items.c.content_hash, feed_items.c.revision
    ).where(and_(feed_items.c.feed_id == feed_id, cond))
    try:
        async with store.engine.connect() as conn:
            return [SeenRow(r.id, r.link_key, r.content_hash, r.revision) for r in await conn.execute(query)]
    except SQLAlchemyError as exc:
        raise _fail("cannot read seen articles", exc) from exc


async def remember(
    store: Store,
    feed_id: str,
    new: Sequence[SeenRow],
    changed: Sequence[SeenRow],
    present: Sequence[str],
    now: float,
    cap: int | None,
) -> int:
    """Record new and edited articles, refresh presence, prune beyond `cap` (if given); the number pruned."""
    try:
        async with _writing(store) as conn:
            if new:
                await conn.execute(
                    feed_items.insert(),
                    [
                        {
                            "feed_id": feed_id,
                            "id": r.id,
                            "link_key": r.link_key,
                            "content_hash": r.content_hash,
                            "revision": r.revision,
                            "first_seen": now,
                            "last_seen": now,
                        }
                        for r in new
                    ],
                )
            for r in changed:
                await conn.execute(
                    update(feed_items)
                    .where(and_(feed_items.c.feed_id == feed_id, feed_items.c.id == r.id))
                    .values(
                        content_hash=r.content_hash, revision=r.revision, link_key=r.link_key, last_seen=now
                    )
                )
            if present:
                await conn.execute(
                    update(feed_items)
                    .where(and_(feed_items.c.feed_id == feed_id, feed_items.c.id.in_(list(present))))
                    .values(last_seen=now)
                )
            return await _prune(conn, feed_id, cap) if cap is not None else 0
    except SQLAlchemyError as exc:
        raise _fail("cannot record seen articles", exc) from exc


async def _prune(conn: Any, feed_id: str, cap: int) -> int:
    count = (
        await conn.execute(
            select(func.count()).select_from(feed_items).where(feed_items.c.feed_id == feed_id)
        )
    ).scalar_one()
    excess = int(count) - cap
    if excess <= 0:
        return 0
    oldest = (
        select(feed_items.c.id)
        .where(feed_items.c.feed_id == feed_id)
        .order_by(feed_items.c.last_seen, feed_items.c.first_seen)
        .limit(excess)
        .scalar_subquery()
    )
    await conn.execute(
        delete(feed_items).where(and_(feed_items.c.feed_id == feed_id, feed_items.c.id.in_(oldest)))
    )
    return excess
