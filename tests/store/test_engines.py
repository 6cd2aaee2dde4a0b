"""The store opens, creates its tables and answers on both engines: SQLite and a real PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest

from newsmon.store import Store, metadata


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'newsmon.db'}"
    return str(request.getfixturevalue("postgres_url"))


async def test_open_creates_every_table(store_url: str) -> None:
    store = await Store.open(store_url)
    try:
        assert await store.ping()
        from sqlalchemy import inspect

        async with store.engine.connect() as conn:
            names = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
        assert set(metadata.tables) <= names
    finally:
        await store.close()
