"""Start-up: reach the store and the bus, waiting for them while they are unreachable.

A service started before Kafka or PostgreSQL (a cluster boot, everything restarted at once) retries with capped
exponential backoff for `startup_wait` seconds instead of exiting: each failed attempt is logged with its reason,
counted in newsmon_startup_retries_total{dependency} and shown by /readyz on the metrics port. Then it gives up
with one line. Refusals (credentials, a missing database, an old schema) and bad URLs are not waited for: their
errors are not `retriable`. Nor are the embedded engines (SQLite files): a file that cannot be opened now will
not open by waiting. Kafka consumers that services start later wait the same way (`PatientBus`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from newsmon import log, metrics
from newsmon.bus.base import Bus, BusWrapper, Consumer, ConsumerWrapper
from newsmon.errors import NewsmonError
from newsmon.health import Health

T = TypeVar("T")
FIRST_DELAY, MAX_DELAY = 0.5, 15.0  # seconds between attempts: doubling from the first, capped
MIN_ATTEMPT = 1.0  # seconds an attempt may take even when the wait is nearly over
_log = log.get(__name__)


async def connect(what: str, attempt: Callable[[], Awaitable[T]], *, wait: float | None, stop: asyncio.Event,
                  health: Health, detail: str = "") -> T | None:
    """`attempt()` until it succeeds; None when `stop` is set while waiting.

    `what` is 'store' or 'bus' (the metric's label), `detail` says more in the log and /readyz (a group).
    `wait` is the start-up wait in seconds (0: fail at once), None for an embedded engine (never waited for).
    Raises the attempt's error when it is not retriable, NewsmonError when the wait is over.
    """
    deadline = time.monotonic() + (wait or 0)
    delay, attempts = FIRST_DELAY, 0
    prior: list[str | None] = []  # readiness before the first failure, given back after a success
    while True:
        attempts += 1
        try:
            if not wait:
                return await attempt()
            done = await asyncio.wait_for(attempt(), max(deadline - time.monotonic(), MIN_ATTEMPT))
            if prior:
                health.waiting(prior[0])
            return done
        except TimeoutError:
            error: NewsmonError = NewsmonError("no answer in time")
        except NewsmonError as exc:
            if not exc.retriable or wait is None:
                raise
            if not wait:
                raise NewsmonError(f"{exc} (startup_wait = 0: not waiting for the {what})") from exc
            error = exc
        left = deadline - time.monotonic()
        if left <= 0:
            raise NewsmonError(f"gave up waiting for the {what} after {wait:.0f}s and {attempts} attempts "
                               f"(startup_wait): {error}")
        pause = min(delay, left)
        delay = min(delay * 2, MAX_DELAY)
        metrics.STARTUP_RETRIES.labels(what).inc()
        _log.warning("startup.waiting", dependency=what, attempt=attempts, retry_in=round(pause, 1),
                     gives_up_in=round(left), error=str(error), **({"detail": detail} if detail else {}))
        before = health.waiting(f"waiting for the {what} ({detail + ', ' if detail else ''}attempt {attempts}): "
                                f"{error}")
        if not prior:
            prior.append(before)
        try:
            await asyncio.wait_for(stop.wait(), pause)
        except TimeoutError:
            continue
        _log.info("startup.stopped_waiting", dependency=what, attempts=attempts)
        return None


class PatientBus(BusWrapper):
    """The bus, with consumer starts that wait for the broker like the bus's own start does.

    A broker that goes away between the bus's start and a service's consumer start (a broker restart while
    everything starts) would otherwise end the service.
    """

    def __init__(self, inner: Bus, *, wait: float, stop: asyncio.Event, health: Health) -> None:
        super().__init__(inner)
        self._wait, self._stop, self._health = wait, stop, health

    def consumer(self, topics: Sequence[str], group: str) -> Consumer:
        return _PatientConsumer(self._inner.consumer(topics, group), self, group)


class _PatientConsumer(ConsumerWrapper):
    """A consumer whose start waits (see PatientBus); when stopped while waiting it stays unstarted."""

    def __init__(self, inner: Consumer, bus: PatientBus, group: str) -> None:
        super().__init__(inner)
        self._bus, self._group = bus, group

    async def start(self) -> None:
        b = self._bus
        await connect("bus", self._inner.start, wait=b._wait, stop=b._stop, health=b._health,
                      detail=f"group {self._group}")
