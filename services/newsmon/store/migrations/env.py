"""Alembic environment: runs on the connection newsmon hands over (see store/migrate.py)."""

from __future__ import annotations

from alembic import context

import newsmon.store.tables  # noqa: F401  (registers every table)
from newsmon.store.base import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through `newsmon db upgrade`, not the alembic CLI")
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
