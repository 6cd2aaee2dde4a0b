"""Riding out an outage: how the alerter's own loops (delivery worker, lifecycle timer) treat our errors.

    iteration raised NewsmonError, exc.retriable → log, count (`newsmon_alerter_loop_retries_total{loop}`),
                                                   sleep (exponential, capped, ± jitter), run the loop again
    raised and not retriable (or not ours)       → re-raised: the service fails loudly
    iteration succeeded after failures           → log once that the loop recovered, reset the delay

A PostgreSQL restart (StoreError) or a broker restart (BusError) takes seconds; the loops keep their in-memory
state (outcomes not yet recorded, attempts in flight) across it instead of exiting. The bus handlers get the same
treatment from `newsmon.bus.loop.consume`.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from newsmon import log, metrics
from newsmon.errors import NewsmonError

_log = log.get(__name__)
T = TypeVar("T")
FIRST_DELAY = 0.2  # seconds before the first retry
MAX_DELAY = 5.0  # the cap: a store back after a restart is noticed within this


class Outage:
    """Backoff state of one loop; `failed(exc, stop)` after an error, `ok()` after a good iteration."""

    def __init__(self, loop: str, first: float = FIRST_DELAY, cap: float = MAX_DELAY) -> None:
        self.loop, self.first, self.cap = loop, first, cap
        self.delay = first
        self.failures = 0

    async def failed(self, exc: NewsmonError, stop: asyncio.Event) -> None:
        """Back off after a retriable error (returns early when `stop` is set); re-raise any other."""
        if not exc.retriable:
            raise exc
        self.failures += 1
        delay = self.delay * random.uniform(0.9, 1.1)
        self.delay = min(self.delay * 2, self.cap)
        metrics.LOOP_RETRIES.labels(self.loop).inc()
        _log.warning("alerter.loop_retry", loop=self.loop, attempt=self.failures, delay=round(delay, 2),
                     error=str(exc)[:300])
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), delay)

    def ok(self) -> None:
        """The loop ran an iteration without error."""
        if self.failures:
            _log.info("alerter.loop_recovered", loop=self.loop, failures=self.failures)
            self.failures, self.delay = 0, self.first


async def retry_for(action: Callable[[], Awaitable[T]], loop: str, seconds: float) -> T:
    """`action()`, retried after retriable errors (delays capped at 1 s) for at most `seconds`; then it raises."""
    outage, deadline = Outage(loop, cap=1.0), time.monotonic() + seconds
    while True:
        try:
            return await action()
        except NewsmonError as exc:
            if time.monotonic() >= deadline:
                raise
            await outage.failed(exc, asyncio.Event())
