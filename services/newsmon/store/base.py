"""The SQL store: one async SQLAlchemy engine over SQLite (default) or PostgreSQL.

Each concern keeps its tables and queries in its own module (`feeds`, `stories`, `alerts`, `deliveries`, `tokens`),
all on the one `metadata` below. SQLAlchemy errors are translated into StoreError at the query modules.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import MetaData, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.exc import ArgumentError, DBAPIError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry

from newsmon.errors import ConfigError, StoreError

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


# SQLSTATE classes that mean "try again later": connection exceptions, insufficient resources (too many
# connections), operator intervention (starting up, shutting down, admin shutdown).
_TRANSIENT_SQLSTATES = ("08", "53", "57P")


def safe_url(url: str) -> str:
    """The store URL with its password hidden, for messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return url.split("@")[-1]


def open_error(url: str, exc: SQLAlchemyError, *, sqlite: bool) -> StoreError:
    """A one-line StoreError for a failed open: retriable when the server was unreachable, not when it refused."""
    orig = exc.orig if isinstance(exc, DBAPIError) else None
    sqlstate = getattr(orig, "sqlstate", None)
    reason = str(orig if orig is not None else exc).splitlines()[0]
    unreachable = not sqlite and (sqlstate is None or str(sqlstate).startswith(_TRANSIENT_SQLSTATES))
    if unreachable:
        err = StoreError(f"store {safe_url(url)} is unreachable: {reason}")
    else:
        code = f" [SQLSTATE {sqlstate}]" if sqlstate else ""
        err = StoreError(f"store {safe_url(url)} refused: {reason}{code} (check store.url)")
    err.retriable = unreachable
    return err


class Store:
    """Owns the engine; query modules take a Store and use `store.engine`."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.is_sqlite = engine.dialect.name == "sqlite"

    @classmethod
    async def open(cls, url: str, *, create: bool = True) -> Store:
        """Connect; apply pending migrations when `create`, else refuse a schema older than the code.

        A bad URL is a ConfigError. A StoreError is `retriable` when the server could not be reached (or was
        starting up or full) or its schema is behind the code's; not when it refused us (credentials, no such
        database) or its schema is ahead.
        """
        import newsmon.store.tables  # noqa: F401  (registers every table on `metadata`)

        aurl = async_url(url)
        try:
            if aurl.startswith("sqlite+aiosqlite:///"):
                Path(aurl.removeprefix("sqlite+aiosqlite:///")).parent.mkdir(parents=True, exist_ok=True)
            engine = create_async_engine(aurl)
        except (ArgumentError, ValueError, ImportError, OSError) as exc:
            raise ConfigError(f"store.url = {safe_url(url)!r} is not a usable URL: {exc}") from None
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
                    err = StoreError(f"store schema is at {at}, this newsmon needs {want}: run `newsmon db upgrade`")
                    # behind: a migration job may be on its way (worth waiting for); ahead: this code is too old
                    err.retriable = at is None or (want is not None and at < want)  # ids are zero-padded numbers
                    raise err
        except SQLAlchemyError as exc:
            await engine.dispose()
            raise open_error(url, exc, sqlite=store.is_sqlite) from exc
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
