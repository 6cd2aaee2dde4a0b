"""What the delivery worker holds and owes the store: leased rows, finished attempts, dead letters.

    claimed rows      → `hold` (lease end kept; extended while in hand, see `extend`)
    finished attempts → `put` → `flush`: one store transaction per batch (store/delivery_leases.record)
                        refused outcomes (the lease was lost to another alerter) → log + metric, no dead letter
                        dead outcomes recorded → dead-letter topic (a convenience: the store row is the record)

Outcomes stay in memory until the store has them, across a store outage: a success is recorded late rather than
lost (a lost one would be sent again once its lease ran out).
"""

from __future__ import annotations

import asyncio
import time

from newsmon import log, metrics
from newsmon.alerter.endpoints import GONE, Endpoints
from newsmon.alerter.outage import retry_for
from newsmon.bus.base import Bus
from newsmon.errors import NewsmonError
from newsmon.events import DEAD_LETTER_TOPIC, DeadLetter
from newsmon.store import Store
from newsmon.store import deliveries as db
from newsmon.store import delivery_leases as leases
from newsmon.store.delivery_leases import Outcome

_log = log.get(__name__)


class Recorder:
    """The worker's book: leases in hand, outcomes to write, dead letters to publish once written."""

    def __init__(self, store: Store, bus: Bus | None, owner: str, lease: float, endpoints: Endpoints) -> None:
        self.store, self.bus, self.owner, self.lease, self.endpoints = store, bus, owner, lease, endpoints
        self.held: dict[str, float] = {}  # rows leased and not recorded yet → lease end
        self.results: asyncio.Queue[Outcome] = asyncio.Queue()
        self.unrecorded: list[Outcome] = []  # taken off `results`, kept until the store has them
        self.dead: dict[str, tuple[db.Delivery, str]] = {}

    @property
    def pending(self) -> bool:
        return not self.results.empty() or bool(self.unrecorded)

    def hold(self, row: db.Delivery, now: float) -> None:
        self.held[row.id] = now + self.lease

    def put(self, outcome: Outcome, dead: db.Delivery | None = None) -> None:
        """An attempt's outcome; `dead` is its row when the outcome makes it a dead letter."""
        if dead is not None:
            self.dead[dead.id] = (dead, outcome.error or "")
        self.results.put_nowait(outcome)

    async def flush(self) -> int:
        """Write every finished attempt to the store (one transaction); returns how many. On StoreError the
        outcomes stay in `unrecorded` for the next flush."""
        while not self.results.empty():
            self.unrecorded.append(self.results.get_nowait())
        batch = list(self.unrecorded)
        if batch:
            lost = await leases.record(self.store, self.owner, batch)
            del self.unrecorded[: len(batch)]
            for o in batch:
                self.held.pop(o.delivery_id, None)
                dead = self.dead.pop(o.delivery_id, None)
                if o.delivery_id in lost:
                    self._lost(o)
                elif dead is not None:
                    metrics.DELIVERIES.labels(dead[0].channel, "dead_lettered").inc()
                    await self._publish_dead(*dead)
        for endpoint in list(self.endpoints.unrecorded_disabled):  # a failed write is tried at the next flush
            await db.disable_endpoint(self.store, endpoint, GONE, time.time())
            self.endpoints.unrecorded_disabled.discard(endpoint)
        return len(batch)

    def _lost(self, o: Outcome) -> None:
        metrics.DELIVERIES.labels(o.channel, "lease_lost").inc()
        _log.warning("delivery.lease_lost", delivery_id=o.delivery_id, outcome=o.outcome, owner=self.owner,
                     detail="another alerter holds the row now; its outcome stands")

    async def extend(self, now: float) -> None:
        """Extend the leases about to run out on rows still in hand (an attempt or an outcome not yet written)."""
        due = [i for i, until in self.held.items() if until - now < self.lease / 2]
        if not due:
            return
        kept = await leases.extend(self.store, self.owner, due, now + self.lease)
        for i in due:
            if i in kept:
                self.held[i] = now + self.lease
            else:  # taken over (or recorded by a late success of its former holder): our outcome will be refused
                self.held.pop(i, None)
                _log.warning("delivery.lease_not_extended", delivery_id=i, owner=self.owner)

    async def _publish_dead(self, row: db.Delivery, error: str) -> None:
        if self.bus is None:
            return
        letter = DeadLetter(
            topic="deliveries", key=row.id, value=row.payload, error=error, group="newsmon-delivery"
        )
        try:
            await self.bus.publish(DEAD_LETTER_TOPIC, letter.to_bytes(), key=row.id.encode())
        except NewsmonError as exc:  # the store row is the record; the topic is a convenience
            _log.warning("delivery.dead_letter_publish_failed", delivery_id=row.id, error=str(exc))

    async def last_flush(self) -> None:
        # Retried for as long as a lease lasts: after that the rows are due again anyway (same webhook-id).
        try:
            await retry_for(self.flush, "delivery", self.lease)
        except NewsmonError as exc:
            _log.error("delivery.outcomes_unrecorded", count=len(self.unrecorded), error=str(exc))
            raise
