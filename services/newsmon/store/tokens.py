"""Tables and queries: API tokens, stored as SHA-256 hashes (the plain token is shown once, at creation).

Tokens are 32 random bytes (url-safe base64) with a `nm_` prefix, so a hash of a high-entropy secret needs no
salt or slow KDF; lookups are by the hash's primary key.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import Column, Float, String, Table, select
from sqlalchemy.exc import SQLAlchemyError

from newsmon.errors import StoreError
from newsmon.store.base import Store, metadata

Scope = Literal["read", "admin"]
SCOPES: tuple[Scope, ...] = ("read", "admin")
PREFIX = "nm_"

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("hash", String(64), primary_key=True),
    Column("name", String(120), nullable=False, default=""),
    Column("scope", String(10), nullable=False),
    Column("created_at", Float, nullable=False),
)


@dataclass(frozen=True, slots=True)
class Token:
    """A stored token (never the secret itself)."""

    hash: str
    name: str
    scope: Scope
    created_at: float


def digest(token: str) -> str:
    """The stored form of a token."""
    return hashlib.sha256(token.encode()).hexdigest()


async def create(store: Store, scope: Scope, name: str = "") -> str:
    """Store a new token's hash; returns the plain token (the only time it exists)."""
    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {', '.join(SCOPES)}")
    token = PREFIX + secrets.token_urlsafe(32)
    try:
        async with store.engine.begin() as conn:
            await conn.execute(api_tokens.insert().values(
                hash=digest(token), name=name, scope=scope, created_at=time.time()))
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot store token: {exc.__class__.__name__}: {exc}") from exc
    return token


async def lookup(store: Store, token: str) -> Token | None:
    """The stored token matching this plain token, if any."""
    try:
        async with store.engine.connect() as conn:
            row = (await conn.execute(select(api_tokens).where(api_tokens.c.hash == digest(token)))).first()
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot read tokens: {exc.__class__.__name__}: {exc}") from exc
    if row is None:
        return None
    return Token(hash=row.hash, name=row.name, scope=row.scope, created_at=row.created_at)


async def list_tokens(store: Store) -> list[Token]:
    """Every stored token (hashes and names), oldest first."""
    try:
        async with store.engine.connect() as conn:
            rows = await conn.execute(select(api_tokens).order_by(api_tokens.c.created_at))
            return [Token(hash=r.hash, name=r.name, scope=r.scope, created_at=r.created_at) for r in rows]
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot read tokens: {exc.__class__.__name__}: {exc}") from exc
