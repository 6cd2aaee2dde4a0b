"""Consumer groups on the embedded bus: members hold leases, partitions are split among live members.

Every member renews its lease (`members.expires`) from a heartbeat task. At each `getmany` (a safe point: the
batch before has been handled) a member syncs: it drops expired members, computes the group's assignment from
the live members (the same pure function in every process), releases partitions that are no longer its own and
claims its partitions that nobody owns. A partition thus moves only after its old owner released it or died;
a dead member's partitions are taken over within `session_timeout` + one sync, from the last commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

from newsmon import log, metrics
from newsmon.bus.base import Message
from newsmon.bus.sqlite import Db, decode_headers, ensure_topics, write
from newsmon.errors import BusError

_log = log.get(__name__)

Partition = tuple[str, int]
POLL_INTERVAL = 0.05  # seconds between checks for new messages while getmany waits


def assign(members: Sequence[tuple[str, Sequence[str]]],
           partitions: dict[str, int]) -> dict[str, set[Partition]]:
    """Round-robin every partition of every topic over the live members subscribed to it (deterministic)."""
    out: dict[str, set[Partition]] = {m: set() for m, _ in members}
    turn = 0
    for topic in sorted(partitions):
        subs = sorted(m for m, topics in members if topic in topics)
        for p in range(partitions[topic]):
            if subs:
                out[subs[turn % len(subs)]].add((topic, p))
                turn += 1
    return out


class SqliteConsumer:
    """A member of `group` reading `topics` from the bus file at `path`."""

    def __init__(self, path: Path, topics: list[str], group: str, *, partitions: int = 4,
                 session_timeout: float = 10.0) -> None:
        self.topics, self.group, self.partitions = topics, group, partitions
        self.session_timeout = session_timeout
        self.heartbeat_interval = min(1.0, session_timeout / 4)
        self.member = uuid.uuid4().hex
        self._db = Db(path)
        self._target: set[Partition] = set()
        self._positions: dict[Partition, int] = {}
        self._next_sync = 0.0
        self._seen_version = -1
        self._fresh = True  # look at the tables even if data_version has not moved
        self._turn = 0
        self._inflight: set[Partition] = set()  # partitions with messages handed out and not yet committed
        self._heartbeat: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Join the group; returns once this member holds its share (or after one session timeout)."""
        await self._db.open()
        await self._db.run(lambda c: ensure_topics(c, self.topics, self.partitions))
        await self._db.run(self._renew)
        self._heartbeat = asyncio.create_task(self._beat(), name=f"bus-heartbeat-{self.group}")
        # Other members hand partitions over from their heartbeat (when idle) or their next getmany; a dead
        # member's lease runs out within the session timeout.
        deadline = time.monotonic() + self.session_timeout + 2 * self.heartbeat_interval
        while not await self._sync(release_busy=True) and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(self.heartbeat_interval / 2)  # the other member is in another process

    async def stop(self) -> None:
        """Leave the group at once, so the other members take over without waiting for the lease to expire."""
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heartbeat
            self._heartbeat = None
        try:
            await self._db.run(self._leave)
        except BusError as exc:
            metrics.BUS_ERRORS.labels(self.group, "transport").inc()
            _log.warning("bus.leave_failed", group=self.group, error=str(exc))
        await self._db.close()

    async def getmany(self, timeout: float = 1.0, max_records: int = 100) -> list[Message]:
        """Messages from this member's partitions, waiting up to `timeout` seconds for some."""
        deadline = time.monotonic() + timeout
        while True:
            if self._inflight and time.monotonic() >= self._next_sync:
                # The batch before this call is done: partitions it came from may now move (the heartbeat
                # moves idle ones, so this is needed only with messages handed out and not committed).
                await self._sync(release_busy=True)
            messages = await self._db.run(lambda c: self._fetch(c, max_records))
            if messages:
                return messages
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return []
            await asyncio.sleep(min(POLL_INTERVAL, remaining))

    async def commit(self, messages: Sequence[Message]) -> None:
        """Move the group's offsets past these messages (never backwards)."""
        done: dict[Partition, int] = {}
        for m in messages:
            done[(m.topic, m.partition)] = max(done.get((m.topic, m.partition), 0), m.offset + 1)
        rows = [(self.group, t, p, o) for (t, p), o in done.items()]
        if not rows:
            return

        def commit(c: sqlite3.Connection) -> None:
            with write(c):
                c.executemany("INSERT INTO offsets VALUES (?, ?, ?, ?) ON CONFLICT (grp, topic, partition) "
                              "DO UPDATE SET next_offset = max(next_offset, excluded.next_offset)", rows)
            for tp, offset in done.items():
                if offset >= self._positions.get(tp, 0):
                    self._inflight.discard(tp)

        await self._db.run(commit)

    async def lag(self) -> int:
        """Uncommitted messages in the partitions the group assigns to this member."""
        target = sorted(self._target)

        def lag(c: sqlite3.Connection) -> int:
            return sum(self._head(c, t, p) - self._committed(c, t, p) for t, p in target)

        return await self._db.run(lag)

    # -- inside the worker thread ------------------------------------------------------------

    def _renew(self, c: sqlite3.Connection) -> None:
        with write(c):
            self._upsert_member(c)

    def _upsert_member(self, c: sqlite3.Connection) -> None:
        c.execute("INSERT INTO members VALUES (?, ?, ?, ?) ON CONFLICT (grp, member) "
                  "DO UPDATE SET expires = excluded.expires",
                  (self.group, self.member, json.dumps(self.topics), time.time() + self.session_timeout))

    def _leave(self, c: sqlite3.Connection) -> None:
        with write(c):
            c.execute("DELETE FROM members WHERE grp = ? AND member = ?", (self.group, self.member))
            c.execute("DELETE FROM owners WHERE grp = ? AND member = ?", (self.group, self.member))

    def _rebalance(self, c: sqlite3.Connection, release_busy: bool) -> tuple[set[Partition], set[Partition]]:
        """Renew, expire the dead, release what is no longer ours, claim what is; return (target, owned).

        A partition with messages handed out but not committed is released only when `release_busy` (getmany:
        the caller is done with them); its uncommitted messages then go to the new owner.
        """
        g, me = self.group, self.member
        with write(c):
            self._upsert_member(c)  # re-joins too, if others expired us while this process stalled
            dead = c.execute("DELETE FROM members WHERE grp = ? AND expires < ? RETURNING member",
                             (g, time.time())).fetchall()
            if dead:
                _log.warning("bus.members_expired", group=g, members=[d[0] for d in dead])
            c.execute("DELETE FROM owners WHERE grp = ? AND member NOT IN "
                      "(SELECT member FROM members WHERE grp = ?)", (g, g))
            members = [(m, json.loads(ts)) for m, ts in
                       c.execute("SELECT member, topics FROM members WHERE grp = ?", (g,))]
            topics = sorted({t for _, ts in members for t in ts})
            counts = dict(c.execute(f"SELECT topic, partitions FROM topics WHERE topic IN "
                                    f"({','.join('?' * len(topics))})", topics).fetchall())
            target = assign(members, counts).get(me, set())
            for t, p in c.execute("SELECT topic, partition FROM owners WHERE grp = ? AND member = ?",
                                  (g, me)).fetchall():
                if (t, p) not in target and (release_busy or (t, p) not in self._inflight):
                    c.execute("DELETE FROM owners WHERE grp = ? AND topic = ? AND partition = ?", (g, t, p))
            c.executemany("INSERT OR IGNORE INTO owners VALUES (?, ?, ?, ?)",
                          [(g, t, p, me) for t, p in target])
            owned = {(t, p) for t, p in c.execute(
                "SELECT topic, partition FROM owners WHERE grp = ? AND member = ?", (g, me))}
            positions = {tp: self._positions[tp] if tp in self._positions else self._committed(c, *tp)
                         for tp in owned}
        self._positions = positions
        self._inflight &= owned
        self._target = target
        return target, owned

    def _fetch(self, c: sqlite3.Connection, limit: int) -> list[Message]:
        """Up to `limit` messages from one owned partition with news, rotating over partitions (fairness)."""
        (version,) = c.execute("PRAGMA data_version").fetchone()
        if version == self._seen_version and not self._fresh:
            return []  # nobody else committed anything since we last looked
        self._seen_version, self._fresh = version, False
        owned = sorted(self._positions)
        for i in range(len(owned)):
            t, p = owned[(self._turn + i) % len(owned)]
            rows = c.execute("SELECT offset, key, value, ts_ms, headers FROM messages WHERE topic = ? AND "
                             "partition = ? AND offset >= ? ORDER BY offset LIMIT ?",
                             (t, p, self._positions[(t, p)], limit)).fetchall()
            if rows:
                self._positions[(t, p)] = rows[-1][0] + 1
                self._inflight.add((t, p))
                self._turn = (self._turn + i + 1) % len(owned)
                self._fresh = True  # more may be waiting behind this batch
                return [Message(t, p, o, k, v, ts, decode_headers(h)) for o, k, v, ts, h in rows]
        return []

    def _committed(self, c: sqlite3.Connection, topic: str, partition: int) -> int:
        """The group's next offset, or the oldest message kept (retention may have passed the commit)."""
        row = c.execute("SELECT next_offset FROM offsets WHERE grp = ? AND topic = ? AND partition = ?",
                        (self.group, topic, partition)).fetchone()
        low = c.execute("SELECT min(offset) FROM messages WHERE topic = ? AND partition = ?",
                        (topic, partition)).fetchone()[0]
        if low is None:
            low = self._head(c, topic, partition)
        return max(int(row[0]) if row else 0, int(low))

    def _head(self, c: sqlite3.Connection, topic: str, partition: int) -> int:
        row = c.execute("SELECT next_offset FROM heads WHERE topic = ? AND partition = ?",
                        (topic, partition)).fetchone()
        return int(row[0]) if row else 0

    # -- in the event loop ------------------------------------------------------------------

    async def _sync(self, release_busy: bool) -> bool:
        """Rebalance; True when this member holds exactly its share."""
        if release_busy:
            self._next_sync = time.monotonic() + self.heartbeat_interval
        before = set(self._positions)
        target, owned = await self._db.run(lambda c: self._rebalance(c, release_busy))
        self._fresh = True
        if owned != before:
            _log.info("bus.assigned", group=self.group, member=self.member[:8],
                      partitions=sorted(f"{t}:{p}" for t, p in owned), waiting=len(target - owned))
        return owned == target

    async def _beat(self) -> None:
        """Renew the lease and hand over idle partitions, even while a handler keeps getmany waiting."""
        while True:
            await asyncio.sleep(self.heartbeat_interval)
            try:
                await self._sync(release_busy=False)
            except BusError as exc:
                metrics.BUS_ERRORS.labels(self.group, "transport").inc()
                _log.warning("bus.heartbeat_failed", group=self.group, error=str(exc))
