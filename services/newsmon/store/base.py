"""The SQL store: one async SQLAlchemy engine over SQLite (default) or PostgreSQL.

Each concern keeps its tables and queries in its own module (`feeds`, `stories`, `alerts`, `deliveries`, `tokens`),
all on the one `metadata` below. SQLAlchemy errors are translated into StoreError at the query modules.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import MetaData, event, text
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry

from newsmon.errors import StoreError

metadata = MetaData()


def async_url(url: str) -> str:
    """Our public URL forms to SQLAlchemy async driver URLs."""
    if url.startswith("sqlite:///") or url.startswith("sqlite://"):
        return "sqlite+aiosqlite://" + url.removeprefix("sqlite://")
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+asyncpg://" + url.split("://", 1)[1]
    return url


def _sqlite_pragmas(dbapi_conn: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def _connect_errors_as_dbapi(dialect: Any, _record: ConnectionPoolEntry, cargs: Any, cparams: Any) -> Any:
    # asyncpg raises a bare OSError when the server refuses or drops a new connection (a PostgreSQL restart);
    # SQLAlchemy wraps only DBAPI errors, so it would escape every `except SQLAlchemyError` and turn a
    # retriable outage into a "bug" (dead-lettered messages, crashed loops). Made a DBAPI error here, it
    # reaches the query modules as an OperationalError and they raise StoreError (retriable).
    try:
        return dialect.connect(*cargs, **cparams)
    except (OSError, TimeoutError) as exc:
        raise dialect.loaded_dbapi.OperationalError(f"cannot connect: {exc!r}", exc) from exc


class Store:
    """Owns the engine; query modules take a Store and use `store.engine`."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.is_sqlite = engine.dialect.name == "sqlite"

    @classmethod
    async def open(cls, url: str, *, create: bool = True) -> Store:
        """Connect; apply pending migrations when `create`, else refuse a schema older than the code."""
        import newsmon.store.tables  # noqa: F401  (registers every table on `metadata`)

        aurl = async_url(url)
        kwargs: dict[str, Any] = {}
        if aurl.startswith("sqlite+aiosqlite:///"):
            path = Path(aurl.removeprefix("sqlite+aiosqlite:///"))
            path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(aurl, **kwargs)
        if engine.dialect.name == "sqlite":
            event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        else:
            event.listen(engine.sync_engine, "do_connect", _connect_errors_as_dbapi)
        store = cls(engine)
        from newsmon.store import migrate

        try:
            if create:
                await migrate.upgrade(engine)
            else:
                at, want = await migrate.current(engine), migrate.head()
                if at != want:
                    raise StoreError(f"store schema is at {at}, this newsmon needs {want}: run `newsmon db upgrade`")
        except SQLAlchemyError as exc:
            await engine.dispose()
            raise StoreError(f"cannot open store {url}: {exc.__class__.__name__}: {exc}") from exc
        except StoreError:
            await engine.dispose()
            raise
        return store

    async def close(self) -> None:
        await self.engine.dispose()

    async def ping(self) -> bool:
        try:
            async with self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            return True
        except SQLAlchemyError:
            return False
