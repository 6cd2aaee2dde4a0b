"""The seen-article memory of each feed: its de-duplication table and queries.

`feed_items` holds one row per article id of a feed with its content hash and revision (edits), its
canonical-link key (GUID churn) and when it was last present in the document. It is bounded per feed: the rows
least recently present are pruned first, so items still in the document are never forgotten. Times are unix seconds.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Column, Float, Index, Integer, String, Table, and_, delete, func, or_, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.sql.elements import ColumnElement

from newsmon.store.base import Store, metadata
from newsmon.store.feeds import fail, writing

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


@dataclass(frozen=True, slots=True)
class SeenRow:
    """A remembered article of a feed."""

    id: str
    link_key: str | None
    content_hash: str
    revision: int


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
        raise fail("cannot read seen articles", exc) from exc


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
        async with writing(store) as conn:
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
        raise fail("cannot record seen articles", exc) from exc


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
