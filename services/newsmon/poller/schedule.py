"""When to poll a feed next (pure): adaptive interval, server hints, capped backoff, jitter.

- Healthy feed: the interval follows the observed publishing rate (about one new item per poll), bounded by
  [max(min_interval, interval/4), min(max_interval, interval*4)] around the configured interval; the server's
  freshness hints (Cache-Control max-age, Expires, RSS <ttl>) lengthen it, up to the upper bound.
- Possible gap (a full document of only new items): the interval is halved at once, down to the lower bound.
- Failure: interval * 2**streak, capped at max_backoff; Retry-After is honoured (up to a day) — and the feed
  is never given up on: the streak keeps counting, the delay stays capped.
- Every delay gets +-jitter so feeds that started together drift apart.

`Agenda` is one poller's in-memory view of when each feed is due: at most one entry per feed.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Iterable
from dataclasses import dataclass

from newsmon.settings import PollerSettings

_DAY = 86400.0
_MAX_RETRY_AFTER = _DAY
_RATE_WEIGHT = 0.3  # weight of the newest observation in the publishing-rate average


@dataclass(frozen=True, slots=True)
class Bounds:
    """The interval range one feed may use."""

    low: float
    high: float


def bounds(configured: float, cfg: PollerSettings) -> Bounds:
    """Per-feed bounds: around the configured interval, within the global ones."""
    low = max(min(cfg.min_interval, configured), configured / 4)
    high = max(low, min(cfg.max_interval, configured * 4))
    return Bounds(low, high)


def jittered(delay: float, cfg: PollerSettings, rng: random.Random) -> float:
    """`delay` spread by the configured jitter fraction."""
    return max(0.0, delay * (1 + rng.uniform(-cfg.jitter, cfg.jitter)))


def observed_rate(previous: float | None, new_items: int, elapsed: float) -> float | None:
    """Items per day: a moving average of new items per elapsed time between successful polls."""
    if elapsed <= 0:
        return previous
    rate = new_items * _DAY / elapsed
    return rate if previous is None else previous + _RATE_WEIGHT * (rate - previous)


def document_rate(times: list[float]) -> float | None:
    """Items per day from the items' own timestamps (useful on a feed's first poll)."""
    if len(times) < 3:
        return None
    span = max(times) - min(times)
    return (len(times) - 1) * _DAY / span if span > 0 else None


def healthy_interval(
    configured: float, items_per_day: float | None, hint: float | None, cfg: PollerSettings
) -> float:
    """The interval after a successful poll."""
    b = bounds(configured, cfg)
    interval = configured if not items_per_day else _DAY / items_per_day
    if hint:
        interval = max(interval, hint)
    return min(b.high, max(b.low, interval))


def after_gap(current: float, configured: float, cfg: PollerSettings) -> float:
    """A shorter interval after items may have been missed."""
    return max(bounds(configured, cfg).low, current / 2)


def backoff(interval: float, streak: int, retry_after: float | None, cfg: PollerSettings) -> float:
    """The delay after the `streak`-th failure in a row (streak >= 1); never infinite, never given up."""
    delay = min(cfg.max_backoff, interval * 2.0 ** min(max(streak - 1, 0), 30))
    if retry_after is not None:
        delay = max(delay, min(retry_after, _MAX_RETRY_AFTER))
    return delay


class Agenda:
    """When each feed is due next, at most one entry per feed (a heap; replaced entries are skipped lazily)."""

    def __init__(self) -> None:
        self._due: dict[str, float] = {}
        self._heap: list[tuple[float, str]] = []

    def __len__(self) -> int:
        return len(self._due)

    def __contains__(self, feed_id: object) -> bool:
        return feed_id in self._due

    def when(self, feed_id: str) -> float | None:
        """When `feed_id` is due (None: not scheduled)."""
        return self._due.get(feed_id)

    def set(self, feed_id: str, when: float) -> None:
        """Schedule `feed_id` at `when` (replacing its earlier entry)."""
        self._due[feed_id] = when
        heapq.heappush(self._heap, (when, feed_id))

    def replace(self, entries: Iterable[tuple[str, float]]) -> None:
        """Forget everything and schedule exactly these (feed id, when) pairs."""
        self._due = dict(entries)
        self._heap = [(when, fid) for fid, when in self._due.items()]
        heapq.heapify(self._heap)

    def take_due(self, now: float, limit: int) -> list[str]:
        """Remove and return up to `limit` feeds due at `now`, earliest first."""
        out: list[str] = []
        while self._heap and len(out) < limit and self._heap[0][0] <= now:
            when, fid = heapq.heappop(self._heap)
            if self._due.get(fid) == when:
                del self._due[fid]
                out.append(fid)
        return out

    def next_at(self) -> float | None:
        """When the earliest feed is due (None: nothing scheduled)."""
        while self._heap and self._due.get(self._heap[0][1]) != self._heap[0][0]:
            heapq.heappop(self._heap)
        return self._heap[0][0] if self._heap else None
