"""The seen-article memory of each feed: its de-duplication table and queries.

`feed_items` holds one row per article id of a feed with its content hash and revision (edits), its
canonical-link key (GUID churn) and when it was last present in the document. It is bounded per feed: the rows
least recently present are pruned first, so items still in the document are never forgotten. Times are unix seconds.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Column,
    Float,
    Index,
    Integer,
    String,
    Table,
    and_,
    bindparam,
    delete,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.exc import SQLAlchemyError

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


# Statements built once (building and cache-keying a construct per poll cost more than running it).
_LOAD = select(feed_items.c.id, feed_items.c.link_key, feed_items.c.content_hash, feed_items.c.revision).where(
    feed_items.c.feed_id == bindparam("feed_id"),
    or_(
        feed_items.c.id.in_(bindparam("ids", expanding=True)),
        feed_items.c.link_key.in_(bindparam("keys", expanding=True)),
    ),
)
_EDIT = (
    update(feed_items)
    .where(feed_items.c.feed_id == bindparam("_feed_id"), feed_items.c.id == bindparam("_id"))
    .values(
        content_hash=bindparam("_content_hash"),
        revision=bindparam("_revision"),
        link_key=bindparam("_link_key"),
        last_seen=bindparam("_now"),
    )
)
_PRESENT = (
    update(feed_items)
    .where(feed_items.c.feed_id == bindparam("_feed_id"), feed_items.c.id.in_(bindparam("_ids", expanding=True)))
    .values(last_seen=bindparam("_now"))
)


async def load_seen(
    store: Store, feed_id: str, ids: Iterable[str], link_keys: Iterable[str]
) -> list[SeenRow]:
    """The remembered rows among these ids or canonical-link keys."""
    params = {"feed_id": feed_id, "ids": list(ids), "keys": [k for k in link_keys if k]}
    try:
        async with store.engine.connect() as conn:
            return [SeenRow(*r) for r in await conn.execute(_LOAD, params)]
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
            if changed:
                rows = [
                    {"_feed_id": feed_id, "_id": r.id, "_content_hash": r.content_hash, "_revision": r.revision,
                     "_link_key": r.link_key, "_now": now}
                    for r in changed
                ]
                await conn.execute(_EDIT, rows)
            if present:
                await conn.execute(_PRESENT, {"_feed_id": feed_id, "_ids": list(present), "_now": now})
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
