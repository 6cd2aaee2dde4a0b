"""The embedded bus: a durable partitioned log in one SQLite file, shared by every process on the machine.

Tables: `topics` (partition count), `heads` (next offset per partition; offsets are never reused, even after
retention deletes messages), `messages`, `offsets` (the next offset to read, per group and partition), and the
consumer-group tables `members` (leases renewed by heartbeats) and `owners` (who reads which partition; see
sqlite_group.py). WAL mode lets readers and one writer work at once; a busy timeout makes writers queue.

A message larger than `max_message_bytes` (key, value and headers; by default Kafka's own default limit) is
refused, so what works here also fits on a Kafka broker. `publish_many` writes its batch in one transaction: all
of it or none.

synchronous=NORMAL: a committed publish survives a crash of any process; a power loss may drop the last few
commits, the same trade a single-replica Kafka broker makes (it does not fsync each message either).
"""

from __future__ import annotations

import asyncio
import base64
import functools
import json
import sqlite3
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from newsmon import log, metrics
from newsmon.bus.base import Consumer, Outgoing
from newsmon.errors import BusError

_log = log.get(__name__)
T = TypeVar("T")
Row = tuple[str, int, bytes | None, bytes, int, str | None]  # topic, partition, key, value, ts_ms, headers

RETENTION_EVERY = 60.0  # seconds between retention sweeps of one publisher
BUSY_TIMEOUT_MS = 15_000
MAX_MESSAGE_BYTES = 1_048_576  # aiokafka's default max_request_size

SCHEMA = """
CREATE TABLE IF NOT EXISTS topics (topic TEXT PRIMARY KEY, partitions INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS heads (
  topic TEXT NOT NULL, partition INTEGER NOT NULL, next_offset INTEGER NOT NULL,
  PRIMARY KEY (topic, partition)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS messages (
  topic TEXT NOT NULL, partition INTEGER NOT NULL, offset INTEGER NOT NULL,
  key BLOB, value BLOB NOT NULL, ts_ms INTEGER NOT NULL, headers TEXT,
  PRIMARY KEY (topic, partition, offset));
CREATE INDEX IF NOT EXISTS messages_ts ON messages (ts_ms);
CREATE TABLE IF NOT EXISTS offsets (
  grp TEXT NOT NULL, topic TEXT NOT NULL, partition INTEGER NOT NULL, next_offset INTEGER NOT NULL,
  PRIMARY KEY (grp, topic, partition)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS members (
  grp TEXT NOT NULL, member TEXT NOT NULL, topics TEXT NOT NULL, expires REAL NOT NULL,
  PRIMARY KEY (grp, member)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS owners (
  grp TEXT NOT NULL, topic TEXT NOT NULL, partition INTEGER NOT NULL, member TEXT NOT NULL,
  PRIMARY KEY (grp, topic, partition)) WITHOUT ROWID;
"""


def connect(path: Path) -> sqlite3.Connection:
    """Open the bus file in WAL mode with a busy timeout; the schema is created when missing."""
    if str(path) != ":memory:":
        path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                           check_same_thread=False)
    conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.executescript(SCHEMA)
    return conn


@contextmanager
def write(conn: sqlite3.Connection) -> Iterator[None]:
    """One write transaction, taking the write lock up front so it never fails half-way on a lock upgrade."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def partition_for(key: bytes, partitions: int) -> int:
    """Stable key → partition (crc32, the same in every process and Python version)."""
    return zlib.crc32(key) % partitions


def ensure_topics(conn: sqlite3.Connection, topics: Sequence[str], partitions: int) -> dict[str, int]:
    """Create missing topics with `partitions` partitions; return every topic's partition count."""
    known = dict(conn.execute("SELECT topic, partitions FROM topics").fetchall())
    missing = [t for t in topics if t not in known]
    if missing:
        with write(conn):
            for t in missing:
                conn.execute("INSERT OR IGNORE INTO topics VALUES (?, ?)", (t, partitions))
                conn.executemany("INSERT OR IGNORE INTO heads VALUES (?, ?, 0)",
                                 [(t, p) for p in range(partitions)])
        known = dict(conn.execute("SELECT topic, partitions FROM topics").fetchall())
    return known


def encode_headers(headers: Sequence[tuple[str, bytes]]) -> str | None:
    """Headers as JSON (values base64), or NULL when there are none."""
    if not headers:
        return None
    return json.dumps([[k, base64.b64encode(v).decode()] for k, v in headers])


def decode_headers(raw: str | None) -> tuple[tuple[str, bytes], ...]:
    """Inverse of encode_headers."""
    if not raw:
        return ()
    return tuple((k, base64.b64decode(v)) for k, v in json.loads(raw))


class Db:
    """One SQLite connection, used from one worker thread one call at a time; sqlite3 errors → BusError."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="newsmon-bus")
        self._lock = asyncio.Lock()
        self._conn: sqlite3.Connection | None = None

    async def open(self) -> None:
        """Connect (in the worker thread) and create the schema."""
        if self._conn is None:
            self._conn = await self._submit(lambda: connect(self.path))

    async def close(self) -> None:
        """Close the connection and the worker thread."""
        if self._conn is not None:
            conn, self._conn = self._conn, None
            await self._submit(conn.close)
        self._executor.shutdown(wait=False)

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run `fn(conn)` in the worker thread."""
        conn = self._conn
        if conn is None:
            raise BusError(f"bus database {self.path} is not open")
        return await self._submit(lambda: fn(conn))

    async def _submit(self, fn: Callable[[], T]) -> T:
        async with self._lock:
            fut = asyncio.get_running_loop().run_in_executor(self._executor, self._call, fn)
            try:
                return await asyncio.shield(fut)
            except asyncio.CancelledError:
                # The thread still holds the connection: let it finish before anyone else may use it.
                await asyncio.wait([fut])
                raise

    def _call(self, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except (sqlite3.Error, OSError) as exc:
            raise BusError(f"bus database {self.path}: {exc}") from exc


class SqliteBus:
    """The embedded engine: topics with `partitions` partitions, messages kept for `retention` seconds."""

    def __init__(self, path: Path, *, partitions: int = 4, retention: float = 7 * 86400,
                 session_timeout: float = 10.0, max_message_bytes: int = MAX_MESSAGE_BYTES) -> None:
        self.path, self.partitions, self.retention = path, partitions, retention
        self.session_timeout, self.max_message_bytes = session_timeout, max_message_bytes
        self._db = Db(path)
        self._topics: dict[str, int] = {}
        self._round_robin = 0
        self._next_sweep = 0.0
        self._pending: list[tuple[list[Row], asyncio.Future[None]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self._db.open()
        await self._sweep()

    async def stop(self) -> None:
        if self._writer is not None:
            await asyncio.wait([self._writer])
        await self._db.close()

    async def ping(self) -> bool:
        try:
            await self._db.run(lambda c: c.execute("SELECT 1").fetchone())
        except BusError:
            return False
        return True

    async def publish(self, topic: str, value: bytes, key: bytes | None = None,
                      headers: Sequence[tuple[str, bytes]] = ()) -> None:
        """Append one message; returns after the transaction has committed."""
        await self.publish_many(topic, [Outgoing(value, key, tuple(headers))])

    async def publish_many(self, topic: str, messages: Sequence[Outgoing]) -> None:
        """Append messages in order, in one transaction; returns after it has committed (BusError: none written)."""
        if not messages:
            return
        for m in messages:
            size = len(m.value) + len(m.key or b"") + sum(len(k) + len(v) for k, v in m.headers)
            if size > self.max_message_bytes:
                raise BusError(f"bus {self.path}: a message of {size} bytes to {topic} is over the limit of "
                               f"{self.max_message_bytes} bytes; nothing of this batch was published")
        if topic not in self._topics:
            self._topics = await self._db.run(lambda c: ensure_topics(c, [topic], self.partitions))
        n = self._topics[topic]
        now_ms = int(time.time() * 1000)
        rows: list[Row] = []
        for m in messages:
            if m.key is None:
                self._round_robin += 1
                partition = self._round_robin % n
            else:
                partition = partition_for(m.key, n)
            rows.append((topic, partition, m.key, m.value, now_ms, encode_headers(m.headers)))
        done = asyncio.get_running_loop().create_future()
        self._pending.append((rows, done))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write(), name="bus-writer")
        await done

    async def _write(self) -> None:
        """Group commit: everything published while the last transaction ran goes into the next one."""
        while self._pending:
            batch, self._pending = self._pending, []
            rows = [row for group, _ in batch for row in group]
            try:
                await self._db.run(functools.partial(_append, rows=rows))
            except BusError as exc:
                for _, fut in batch:
                    if not fut.done():
                        fut.set_exception(exc)
                continue
            for _, fut in batch:
                if not fut.done():
                    fut.set_result(None)
            if time.monotonic() >= self._next_sweep:
                try:
                    await self._sweep()
                except BusError as exc:  # the next sweep tries again; publishing is not affected
                    metrics.BUS_ERRORS.labels("", "retention").inc()
                    _log.warning("bus.retention_failed", path=str(self.path), error=str(exc))

    def consumer(self, topics: Sequence[str], group: str) -> Consumer:
        from newsmon.bus.sqlite_group import SqliteConsumer

        return SqliteConsumer(self.path, list(topics), group, partitions=self.partitions,
                              session_timeout=self.session_timeout)

    async def _sweep(self) -> None:
        """Delete messages older than the retention (their offsets stay used: heads never go back)."""
        self._next_sweep = time.monotonic() + RETENTION_EVERY
        cutoff = int((time.time() - self.retention) * 1000)

        def sweep(c: sqlite3.Connection) -> int:
            with write(c):
                return c.execute("DELETE FROM messages WHERE ts_ms < ?", (cutoff,)).rowcount

        deleted = await self._db.run(sweep)
        if deleted:
            _log.info("bus.retention", path=str(self.path), deleted=deleted)


def _append(c: sqlite3.Connection, rows: Sequence[Row]) -> None:
    """Append messages in one transaction, in the order given (so per-key order holds)."""
    with write(c):
        for topic, partition, *rest in rows:
            (offset,) = c.execute("UPDATE heads SET next_offset = next_offset + 1 "
                                  "WHERE topic = ? AND partition = ? RETURNING next_offset - 1",
                                  (topic, partition)).fetchone()
            c.execute("INSERT INTO messages VALUES (?, ?, ?, ?, ?, ?, ?)", (topic, partition, offset, *rest))
