"""Feed-state writes, batched: a poll marks its feed dirty; dirty feeds are written together a moment later.

Writing a polled feed also releases the poller's lease on it (only if that poller still holds it).

One UPDATE transaction per poll was a large share of a 304 poll's cost. Losing a batch in a crash only
means those feeds are polled again sooner (seen ids are written at once, so a lost body hash only costs a
re-parse that publishes nothing new).
"""

from __future__ import annotations

import asyncio

from newsmon import log, metrics
from newsmon.errors import StoreError
from newsmon.store import Store
from newsmon.store import feeds as feed_store
from newsmon.store.feeds import FeedState

_log = log.get(__name__)


class StateSaver:
    """Collects dirty feed states and writes them in batches."""

    def __init__(self, store: Store, owner: str | None = None, delay: float = 0.25) -> None:
        self._store = store
        self._owner = owner
        self._delay = delay
        self._dirty: dict[str, FeedState] = {}
        self._timer: asyncio.Task[None] | None = None
        self._writing = False  # the timer is past its sleep, inside flush()

    def save(self, state: FeedState) -> None:
        """Mark `state` to be written with the next batch."""
        self._dirty[state.id] = state
        if self._timer is None or self._timer.done():
            self._timer = asyncio.create_task(self._later(), name="feed-state-saver")

    async def _later(self) -> None:
        await asyncio.sleep(self._delay)
        self._writing = True
        try:
            await self.flush()
        except StoreError as exc:  # kept dirty; the next poll's save retries the batch
            metrics.FEED_ERRORS.labels("StoreError").inc()
            _log.error("feed.state_save_failed", feeds=len(self._dirty), error=str(exc))
        finally:
            self._writing = False

    async def flush(self) -> None:
        """Write every dirty state now."""
        batch = list(self._dirty.values())
        self._dirty.clear()
        try:
            lost = await feed_store.save_feeds(self._store, batch, owner=self._owner)
        except BaseException:  # a failed or cancelled write: the batch stays dirty for the next flush
            for state in batch:
                self._dirty.setdefault(state.id, state)
            raise
        if lost:  # polled past the lease's end, and another poller took the feed: its state wins
            metrics.FEED_ERRORS.labels("LeaseLost").inc(len(lost))
            _log.warning("feed.state_not_saved_lease_lost", feeds=len(lost), feed_ids=lost[:10])

    async def close(self) -> None:
        """Stop the timer and write what is left (a failure is logged; those feeds get polled again)."""
        if self._timer is not None and not self._timer.done():
            if not self._writing:  # still sleeping: cancel; a write in progress is awaited, never cut off
                self._timer.cancel()
            await asyncio.gather(self._timer, return_exceptions=True)
        for attempt in range(3):
            try:
                await self.flush()
                return
            except StoreError as exc:
                metrics.FEED_ERRORS.labels("StoreError").inc()
                _log.error(
                    "feed.state_save_failed", feeds=len(self._dirty), error=str(exc), attempt=attempt + 1
                )
                await asyncio.sleep(0.5 * (attempt + 1))
