"""Is this process alive and ready? The answers `/healthz` and `/readyz` give on the metrics port.

The metrics port is served from a thread of its own (metrics_server.py), so it still answers while the event loop
hangs, and that is what lets it say so. Alive (`liveness()` returns no reason) unless:

- the event loop is blocked: a task on it (`tick`) beats every second; no beat for `stall_after`;
- a consume loop is stuck: once `getmany` handed it messages, it must come back for more within `stall_after`,
  or show that it is retrying them (newsmon_bus_handler_errors_total of its group moving). A consumer waiting in
  `getmany` has no work in hand and is healthy however long it waits;
- something died: a service ended, or a consumer stopped, while the process is not stopping.

Ready (`readiness()` is None) once the bus and the store are connected, until the process starts stopping.
Consumers are seen through `watch(bus)`, a wrapper the runtime puts around the bus, so services need no code.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

from newsmon import metrics
from newsmon.bus.base import Bus, BusWrapper, Consumer, ConsumerWrapper, Message

TICK = 1.0  # seconds between event-loop beats


@dataclass
class _Loop:
    """What health knows of one consumer."""

    group: str
    busy_since: float | None = None  # monotonic time getmany handed over messages; None while waiting for more
    errors_seen: float | None = None  # the group's handler error count when last looked at (None: not yet)
    stopped: bool = False


class Health:
    """Liveness and readiness of one process; written on the event loop, read from the metrics thread."""

    def __init__(self, stall_after: float, stop: asyncio.Event) -> None:
        self.stall_after = stall_after
        self._stop = stop  # once set, the process is shutting down on purpose: loops may end, nothing is ready
        self._lock = threading.Lock()
        self._beat = time.monotonic()
        self._waiting: str | None = "starting"
        self._died: list[str] = []
        self._loops: list[_Loop] = []

    # -- written by the runtime and the watched consumers (event loop) --------------------------------------

    def waiting(self, reason: str | None) -> str | None:
        """Not ready, and why (e.g. 'waiting for the store (attempt 3): ...'); None: ready. Returns the previous."""
        with self._lock:
            before, self._waiting = self._waiting, reason
        return before

    def ready(self) -> None:
        with self._lock:
            self._waiting = None

    def died(self, reason: str) -> None:
        """Something that should run while the process runs has ended (call it before setting `stop`)."""
        with self._lock:
            self._died.append(reason)

    async def tick(self) -> None:
        """Beat every second until cancelled; also notice retries of consumers with messages in hand."""
        while True:
            now = time.monotonic()
            busy = [loop for loop in self._loops if loop.busy_since is not None]
            counts = _handler_errors({loop.group for loop in busy}) if busy else {}
            with self._lock:
                self._beat = now
                for loop in busy:
                    count = counts.get(loop.group, 0.0)
                    if loop.errors_seen is not None and count != loop.errors_seen and loop.busy_since is not None:
                        loop.busy_since = now  # a retry (or a dead letter) is progress
                    loop.errors_seen = count
            await asyncio.sleep(TICK)

    def watch(self, bus: Bus) -> Bus:
        """`bus`, with every consumer it makes reporting its progress here."""
        return _WatchedBus(bus, self)

    # -- read by the metrics thread ---------------------------------------------------------------------------

    def liveness(self) -> list[str]:
        """Why the process is not alive; [] when it is."""
        now, stopping = time.monotonic(), self._stop.is_set()
        with self._lock:
            reasons = list(self._died)
            if now - self._beat > self.stall_after:
                reasons.append(f"event loop blocked for {now - self._beat:.0f}s")
            for loop in self._loops:
                if loop.stopped and not stopping:
                    reasons.append(f"consumer {loop.group} stopped")
                elif loop.busy_since is not None and now - loop.busy_since > self.stall_after:
                    reasons.append(f"consumer {loop.group} made no progress for {now - loop.busy_since:.0f}s "
                                   "with messages in hand")
        return reasons

    def readiness(self) -> str | None:
        """Why the process is not ready; None when it is."""
        if self._stop.is_set():
            return "stopping"
        with self._lock:
            return self._waiting

    # -- used by the watched consumers ------------------------------------------------------------------------

    def _add(self, group: str) -> _Loop:
        loop = _Loop(group)
        with self._lock:
            self._loops.append(loop)
        return loop

    def _set(self, loop: _Loop, *, busy: bool | None = None, stopped: bool | None = None) -> None:
        with self._lock:
            if busy is not None:
                loop.busy_since = time.monotonic() if busy else None
                loop.errors_seen = None  # the next tick takes the count to compare with
            if stopped is not None:
                loop.stopped = stopped


def _handler_errors(groups: set[str]) -> dict[str, float]:
    """newsmon_bus_handler_errors_total summed over outcomes, per group asked for."""
    counts: dict[str, float] = {}
    for family in metrics.BUS_ERRORS.collect():
        for sample in family.samples:
            group = sample.labels.get("group", "")
            if sample.name.endswith("_total") and group in groups:
                counts[group] = counts.get(group, 0.0) + sample.value
    return counts


class _WatchedConsumer(ConsumerWrapper):
    """A consumer that tells Health when it has messages in hand and when it comes back for more."""

    def __init__(self, inner: Consumer, health: Health, group: str) -> None:
        super().__init__(inner)
        self._health, self._group = health, group
        self._loop: _Loop | None = None

    async def start(self) -> None:
        await self._inner.start()
        self._loop = self._health._add(self._group)

    async def stop(self) -> None:
        if self._loop is not None:
            self._health._set(self._loop, busy=False, stopped=True)
        await self._inner.stop()

    async def getmany(self, timeout: float = 1.0, max_records: int = 100) -> list[Message]:
        if self._loop is not None:
            self._health._set(self._loop, busy=False)
        batch = await self._inner.getmany(timeout, max_records)
        if batch and self._loop is not None:
            self._health._set(self._loop, busy=True)
        return batch


class _WatchedBus(BusWrapper):
    """The bus, unchanged, except that its consumers are watched."""

    def __init__(self, inner: Bus, health: Health) -> None:
        super().__init__(inner)
        self._health = health

    def consumer(self, topics: Sequence[str], group: str) -> Consumer:
        return _WatchedConsumer(self._inner.consumer(topics, group), self._health, group)
