"""Endpoint state of the delivery worker: where a delivery goes, its breaker, its lane, whether it is disabled.

    endpoint of a row   → the subscription's current webhook URL (or the SMTP server), not the URL stored when
                          the row was routed: a URL changed through the API (PUT) takes the queued rows with it
    breaker             → consecutive failures; open (skipped) for `breaker_cooldown` after `breaker_threshold`
    lane                → attempts in flight to one endpoint, capped so a hanging endpoint holds few slots
    disabled            → 410 Gone (from the store at start, or seen now); dead-letters until replayed

Everything here is keyed by that endpoint and forgotten (`retire`) once no subscription points at it any more,
so a changed URL leaves no breaker or lane behind under its old key.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from newsmon.errors import DeliveryError
from newsmon.settings import DeliverySettings, SubscriptionSettings

MAX_RETRY_AFTER = 86400.0  # a Retry-After beyond a day is a receiver bug, not a plan
GONE = "410 Gone"


def next_attempt(
    cfg: DeliverySettings, attempts: int, err: DeliveryError, now: float, rng: random.Random
) -> float | None:
    """When to try again after failed attempt number `attempts`; None when it goes to the dead letters."""
    if not err.retriable or attempts > len(cfg.retry_delays):
        return None
    delay = cfg.retry_delays[attempts - 1] * (1 + rng.uniform(-cfg.jitter, cfg.jitter))
    if err.retry_after is not None:
        delay = max(delay, min(err.retry_after, MAX_RETRY_AFTER))
    return now + delay


@dataclass
class Breaker:
    """Consecutive failures of one endpoint; open (skipped) until `open_until`, then one trial attempt."""

    failures: int = 0
    open_until: float = 0.0

    def allows(self, now: float) -> bool:
        return now >= self.open_until


def endpoint_of(sub: SubscriptionSettings | None, channel: str, stored: str) -> str:
    """Where a delivery of `sub` on `channel` goes now (the stored endpoint when the spec does not say)."""
    if channel == "webhook" and sub is not None and sub.webhook is not None:
        return str(sub.webhook.url)
    return stored


def webhook_urls(subs: Iterable[SubscriptionSettings]) -> dict[str, str]:
    """Subscription id → its webhook URL."""
    return {s.id: str(s.webhook.url) for s in subs if s.webhook is not None}


class Endpoints:
    """Breakers, lanes and disabled marks, per endpoint."""

    def __init__(self, cfg: DeliverySettings) -> None:
        self.cfg = cfg
        self.lane_cap = max(1, cfg.concurrency // 4)
        self.breakers: dict[str, Breaker] = defaultdict(Breaker)
        self.lanes: dict[str, int] = defaultdict(int)
        self.disabled: dict[str, str] = {}
        self.unrecorded_disabled: set[str] = set()  # seen 410 Gone, not yet written to the store

    def held(self, now: float) -> list[str]:
        """Endpoints to skip when claiming: breaker open, or lane full."""
        skip = [e for e, b in self.breakers.items() if not b.allows(now)]
        return skip + [e for e, n in self.lanes.items() if n >= self.lane_cap]

    def lane_full(self, endpoint: str) -> bool:
        return self.lanes.get(endpoint, 0) >= self.lane_cap

    def enter(self, endpoint: str) -> None:
        self.lanes[endpoint] += 1

    def leave(self, endpoint: str) -> None:
        self.lanes[endpoint] -= 1
        if self.lanes[endpoint] <= 0:
            del self.lanes[endpoint]

    def succeeded(self, endpoint: str) -> None:
        self.breakers.pop(endpoint, None)

    def failed(self, endpoint: str, err: DeliveryError, now: float) -> None:
        breaker = self.breakers[endpoint]
        breaker.failures += 1
        if breaker.failures >= self.cfg.breaker_threshold:
            breaker.open_until = now + self.cfg.breaker_cooldown
        if err.status == 410:
            self.disabled[endpoint] = GONE
            self.unrecorded_disabled.add(endpoint)

    def retire(self, endpoint: str) -> None:
        """Forget an endpoint no subscription points at any more (its lane empties by itself)."""
        self.breakers.pop(endpoint, None)
