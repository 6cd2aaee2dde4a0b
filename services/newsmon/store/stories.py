"""Tables and queries: stories (articles about one event) and which story each article belongs to.

Times are epoch seconds (floats) so SQLite and PostgreSQL compare them alike. `story_articles.article_id` is
the primary key: an article (any revision) belongs to exactly one story, which makes redelivery idempotent.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Column, Float, Index, Integer, String, Table, Text, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection

from newsmon.errors import StoreError
from newsmon.store.base import Store, metadata

stories = Table(
    "stories", metadata,
    Column("id", String(64), primary_key=True),
    Column("kind", String(128), nullable=False),
    Column("first_seen", Float, nullable=False),
    Column("last_seen", Float, nullable=False),
    Column("entities", Text, nullable=False, default="[]"),
    Column("signatures", Text, nullable=False, default="{}"),
    Column("articles", Integer, nullable=False, default=1),
    Index("ix_stories_kind_last_seen", "kind", "last_seen"),
)

story_articles = Table(
    "story_articles", metadata,
    Column("article_id", String(512), primary_key=True),
    Column("story_id", String(64), nullable=False, index=True),
    Column("assigned_at", Float, nullable=False),
)


@dataclass
class StoryRow:
    """One story as the grouping logic sees it."""

    id: str
    kind: str
    first_seen: float
    last_seen: float
    entities: list[str] = field(default_factory=list)
    signatures: dict[str, list[int]] = field(default_factory=dict)  # language → MinHash of its first article
    articles: int = 1


def _row(r: Any) -> StoryRow:
    return StoryRow(id=r.id, kind=r.kind, first_seen=r.first_seen, last_seen=r.last_seen,
                    entities=json.loads(r.entities), signatures=json.loads(r.signatures), articles=r.articles)


def _insert(store: Store, table: Table) -> Any:
    return (sqlite.insert(table) if store.is_sqlite else postgresql.insert(table)).on_conflict_do_nothing()


async def story_of(store: Store, article_id: str) -> str | None:
    """The story an article was already put in, if any."""
    try:
        async with store.engine.connect() as conn:
            return await _owner(conn, article_id)
    except SQLAlchemyError as exc:
        raise StoreError(f"stories: lookup failed: {exc.__class__.__name__}: {exc}") from exc


async def candidates(store: Store, kinds: list[str], since: float, limit: int = 500) -> list[StoryRow]:
    """Recent stories of these kinds (most recent first)."""
    query = (select(stories).where(stories.c.kind.in_(kinds), stories.c.last_seen >= since)
             .order_by(stories.c.last_seen.desc()).limit(limit))
    try:
        async with store.engine.connect() as conn:
            return [_row(r) for r in (await conn.execute(query)).all()]
    except SQLAlchemyError as exc:
        raise StoreError(f"stories: candidate query failed: {exc.__class__.__name__}: {exc}") from exc


async def get(store: Store, story_id: str) -> StoryRow | None:
    """One story by id."""
    try:
        async with store.engine.connect() as conn:
            r = (await conn.execute(select(stories).where(stories.c.id == story_id))).first()
            return _row(r) if r is not None else None
    except SQLAlchemyError as exc:
        raise StoreError(f"stories: read failed: {exc.__class__.__name__}: {exc}") from exc


async def attach(store: Store, article_id: str, story: StoryRow, *, is_new: bool, seen: float) -> str:
    """Put an article in a story (creating or extending it); returns the story the article really belongs to.

    When another worker attached the same article first, its choice wins and nothing is changed.
    """
    try:
        async with store.engine.begin() as conn:
            res = await conn.execute(_insert(store, story_articles).values(
                article_id=article_id, story_id=story.id, assigned_at=seen))
            if res.rowcount == 0:
                return await _owner(conn, article_id) or story.id
            if is_new:
                await conn.execute(_insert(store, stories).values(
                    id=story.id, kind=story.kind, first_seen=story.first_seen, last_seen=story.last_seen,
                    entities=json.dumps(story.entities), signatures=json.dumps(story.signatures), articles=1))
            else:
                await conn.execute(update(stories).where(stories.c.id == story.id).values(
                    last_seen=story.last_seen, entities=json.dumps(story.entities),
                    signatures=json.dumps(story.signatures), articles=stories.c.articles + 1))
            return story.id
    except SQLAlchemyError as exc:
        raise StoreError(f"stories: attach failed: {exc.__class__.__name__}: {exc}") from exc


async def _owner(conn: AsyncConnection, article_id: str) -> str | None:
    query = select(story_articles.c.story_id).where(story_articles.c.article_id == article_id)
    res = await conn.execute(query)
    return res.scalar_one_or_none()
