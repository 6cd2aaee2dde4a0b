"""The live feed behind `/api/v1/stream` and the recent-matches listings.

Alerts are tailed from the store's notification outbox (the alerter's source of truth: every decided 'new' or
'update' is a row there before it reaches the bus), so the stream shows exactly what subscribers are sent.
Matches are not stored, so they are tailed from the bus by a consumer group private to this process that
never commits: it starts at the oldest retained message (filling the recent-matches buffer) and streams only
the ones newer than its start. Both work the same on the embedded and the Kafka engine.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import uuid
from collections import OrderedDict, deque

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from newsmon import log
from newsmon.bus import Bus
from newsmon.errors import NewsmonError
from newsmon.events import MATCHES_TOPIC, Alert, Match
from newsmon.store import Store
from newsmon.store.alerts import notifications

from .metrics import SSE_CLIENTS, TAIL_ERRORS

_log = log.get(__name__)
OVERLAP = 10.0  # seconds re-read behind the cursor: a slow transaction may commit an older created_at late
QUEUE_SIZE = 500
RECENT_MATCHES = 2000

Event = tuple[str, str]  # (SSE event name, JSON data)


class Hub:
    """Fans new alerts and matches out to stream subscribers; keeps recent matches in memory."""

    def __init__(self, bus: Bus | None, store: Store, poll_interval: float = 0.5) -> None:
        self.bus = bus
        self.store = store
        self.poll_interval = poll_interval
        self.matches: deque[Match] = deque(maxlen=RECENT_MATCHES)
        self.closed = asyncio.Event()
        self._queues: set[asyncio.Queue[Event | None]] = set()
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._started = time.time()

    def subscribe(self) -> asyncio.Queue[Event | None]:
        """A queue of (event, data) for one client; None means the server is closing."""
        queue: asyncio.Queue[Event | None] = asyncio.Queue(QUEUE_SIZE)
        self._queues.add(queue)
        SSE_CLIENTS.set(len(self._queues))
        return queue

    def unsubscribe(self, queue: asyncio.Queue[Event | None]) -> None:
        self._queues.discard(queue)
        SSE_CLIENTS.set(len(self._queues))

    def publish(self, event: str, data: str) -> None:
        for queue in list(self._queues):
            if queue.full():  # a stalled client loses its oldest event, never blocks the others
                queue.get_nowait()
                TAIL_ERRORS.labels("slow_client").inc()
            queue.put_nowait((event, data))

    def close(self) -> None:
        """End every stream (server shutdown)."""
        self.closed.set()
        for queue in list(self._queues):
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(None)

    async def run(self, stop: asyncio.Event) -> None:
        """Tail the store and the bus until `stop` or close."""
        tasks = [asyncio.create_task(self._tail_alerts(stop), name="tail-alerts")]
        if self.bus is not None:
            tasks.append(asyncio.create_task(self._tail_matches(stop), name="tail-matches"))
        try:
            await asyncio.wait([asyncio.create_task(stop.wait()), asyncio.create_task(self.closed.wait())],
                               return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _tail_alerts(self, stop: asyncio.Event) -> None:
        cursor = self._started
        while not stop.is_set():
            try:
                cursor = await self._alerts_since(cursor)
            except SQLAlchemyError as exc:
                TAIL_ERRORS.labels("store").inc()
                _log.warning("api.tail_failed", source="store", error=str(exc))
            await _sleep(stop, self.poll_interval)

    async def _alerts_since(self, cursor: float) -> float:
        stmt = (select(notifications.c.id, notifications.c.payload, notifications.c.created_at)
                .where(notifications.c.created_at >= cursor - OVERLAP).order_by(notifications.c.created_at))
        async with self.store.engine.connect() as conn:
            rows = (await conn.execute(stmt)).all()
        for nid, payload, created in rows:
            cursor = max(cursor, created)
            if nid in self._seen or created < self._started:
                continue
            self._remember(nid)
            self.publish("alert", payload)
        return cursor

    def _remember(self, key: str) -> None:
        self._seen[key] = None
        while len(self._seen) > 10_000:
            self._seen.popitem(last=False)

    async def _tail_matches(self, stop: asyncio.Event) -> None:
        assert self.bus is not None
        group = f"newsmon-api-live-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        consumer = self.bus.consumer([MATCHES_TOPIC], group)
        try:
            await consumer.start()
            while not stop.is_set():
                try:
                    batch = await consumer.getmany(timeout=0.5, max_records=500)
                except NewsmonError as exc:
                    TAIL_ERRORS.labels("bus").inc()
                    _log.warning("api.tail_failed", source="bus", error=str(exc))
                    await _sleep(stop, 2.0)
                    continue
                for message in batch:
                    self._take_match(message.value, message.timestamp_ms)
        except NewsmonError as exc:
            TAIL_ERRORS.labels("bus").inc()
            _log.error("api.tail_stopped", source="bus", error=str(exc))
        finally:
            with contextlib.suppress(NewsmonError):
                await consumer.stop()

    def _take_match(self, value: bytes, timestamp_ms: int) -> None:
        try:
            match = Match.model_validate_json(value)
        except ValidationError as exc:
            TAIL_ERRORS.labels("bad_message").inc()
            _log.warning("api.bad_match", error=str(exc)[:200])
            return
        self.matches.append(match)
        if timestamp_ms / 1000 >= self._started and match.id not in self._seen:
            self._remember(match.id)
            self.publish("match", _match_summary(match))


def _match_summary(m: Match) -> str:
    return m.model_dump_json()


def parse_alert(payload: str) -> Alert | None:
    """A stored notification payload as an Alert (None when it is not one)."""
    try:
        return Alert.model_validate_json(payload)
    except ValidationError:
        TAIL_ERRORS.labels("bad_payload").inc()
        return None


async def _sleep(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)


