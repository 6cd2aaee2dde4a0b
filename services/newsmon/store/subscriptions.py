"""Table and queries: subscriptions created through the API (config-file subscriptions live in the settings).

A row holds the subscription as the JSON of `SubscriptionSettings` with its secrets in clear, because the
alerter must sign with them; `dump_spec` is the one place that reveals them, and the API only ever renders a
spec through pydantic's JSON mode, which masks them. A row whose spec no longer validates (a newer newsmon
tightened a rule) is returned apart as `Invalid`, never dropped silently.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pydantic import SecretBytes, SecretStr, ValidationError
from pydantic_core import to_jsonable_python
from sqlalchemy import Column, Float, String, Table, Text, delete, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from newsmon.errors import StoreError
from newsmon.settings import SubscriptionSettings
from newsmon.store.base import Store, metadata

ID_MAX = 120  # the id column's width

subscriptions = Table(
    "subscriptions",
    metadata,
    Column("id", String(ID_MAX), primary_key=True),
    Column("spec", Text, nullable=False),
    Column("created_by", String(120), nullable=False, default=""),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)


@dataclass(frozen=True, slots=True)
class Stored:
    """A stored subscription and who made it when."""

    spec: SubscriptionSettings
    created_by: str
    created_at: float
    updated_at: float


@dataclass(frozen=True, slots=True)
class Invalid:
    """A stored row whose spec does not validate any more: kept, reported, deletable."""

    id: str
    error: str
    created_by: str
    created_at: float
    updated_at: float


def _reveal(value: Any) -> Any:
    if isinstance(value, SecretStr | SecretBytes):
        return value.get_secret_value()
    if isinstance(value, dict):
        return {k: _reveal(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_reveal(v) for v in value]
    return value


def dump_spec(sub: SubscriptionSettings) -> str:
    """The spec as stored: JSON with secrets in clear (`secret_file` dropped: its content is in `secret`)."""
    data = sub.model_dump(mode="python")
    if isinstance(data.get("webhook"), dict):
        data["webhook"].pop("secret_file", None)
    return json.dumps(to_jsonable_python(_reveal(data)), sort_keys=True)


def load_spec(spec: str) -> SubscriptionSettings:
    """A stored spec back as settings (ValidationError when it no longer validates)."""
    return SubscriptionSettings.model_validate_json(spec)


def _fail(what: str, exc: SQLAlchemyError) -> StoreError:
    return StoreError(f"{what}: {exc.__class__.__name__}: {exc}")


def _row(row: Any) -> Stored | Invalid:
    try:
        return Stored(load_spec(row.spec), row.created_by, row.created_at, row.updated_at)
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        where = ".".join(str(p) for p in first["loc"]) or "(spec)"
        return Invalid(row.id, f"{where}: {first['msg']}", row.created_by, row.created_at, row.updated_at)


async def list_all(store: Store) -> list[Stored | Invalid]:
    """Every stored subscription, oldest first."""
    try:
        async with store.engine.connect() as conn:
            rows = await conn.execute(select(subscriptions).order_by(subscriptions.c.created_at, subscriptions.c.id))
            return [_row(r) for r in rows]
    except SQLAlchemyError as exc:
        raise _fail("cannot read subscriptions", exc) from exc


async def get(store: Store, sub_id: str) -> Stored | Invalid | None:
    """One stored subscription by id."""
    try:
        async with store.engine.connect() as conn:
            row = (await conn.execute(select(subscriptions).where(subscriptions.c.id == sub_id))).first()
    except SQLAlchemyError as exc:
        raise _fail("cannot read subscription", exc) from exc
    return None if row is None else _row(row)


async def create(store: Store, sub: SubscriptionSettings, created_by: str, now: float) -> Stored | None:
    """Store a new subscription; None when one with its id is already stored."""
    values = {"id": sub.id, "spec": dump_spec(sub), "created_by": created_by, "created_at": now,
              "updated_at": now}
    try:
        async with store.engine.begin() as conn:
            await conn.execute(subscriptions.insert().values(**values))
    except IntegrityError:
        return None
    except SQLAlchemyError as exc:
        raise _fail("cannot store subscription", exc) from exc
    return Stored(sub, created_by, now, now)


async def replace(store: Store, sub: SubscriptionSettings, now: float) -> bool:
    """Replace a stored subscription's spec (same id); False when there is none."""
    try:
        async with store.engine.begin() as conn:
            res = await conn.execute(update(subscriptions).where(subscriptions.c.id == sub.id)
                                     .values(spec=dump_spec(sub), updated_at=now))
    except SQLAlchemyError as exc:
        raise _fail("cannot update subscription", exc) from exc
    return bool(res.rowcount)


async def remove(store: Store, sub_id: str) -> bool:
    """Delete a stored subscription; False when there was none."""
    try:
        async with store.engine.begin() as conn:
            res = await conn.execute(delete(subscriptions).where(subscriptions.c.id == sub_id))
    except SQLAlchemyError as exc:
        raise _fail("cannot delete subscription", exc) from exc
    return bool(res.rowcount)
