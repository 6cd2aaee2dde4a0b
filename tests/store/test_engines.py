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


async def test_open_applies_migrations_and_later_opens_check_them(store_url: str) -> None:
    from newsmon.store.migrate import current, head

    store = await Store.open(store_url)
    try:
        assert await current(store.engine) == head() is not None
    finally:
        await store.close()
    checked = await Store.open(store_url, create=False)  # the schema is current: no error
    await checked.close()


def test_db_upgrade_command(tmp_path: Path) -> None:
    import subprocess
    import sys

    cfg = tmp_path / "c.toml"
    cfg.write_text(f'data_dir = "{tmp_path}"\n', encoding="utf-8")
    out = subprocess.run([sys.executable, "-m", "newsmon.cli", "db", "upgrade", "--config", str(cfg)],
                         capture_output=True, text=True, timeout=60, check=True).stdout
    assert "revision: 0003" in out


async def test_migrations_build_exactly_the_tables_the_code_declares(store_url: str) -> None:
    """A column added to a Table without a migration (or the reverse) is caught here, on both engines."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    store = await Store.open(store_url)
    try:
        async with store.engine.connect() as conn:
            diff = await conn.run_sync(
                lambda c: compare_metadata(MigrationContext.configure(c, opts={"compare_type": False}), metadata)
            )
    finally:
        await store.close()
    assert diff == []
