"""The delivery worker: sends due deliveries from the store, retries, dead-letters, and keeps endpoints apart.

    claim due rows (lease) → attempt each (channel, timeout) → outcome (delivered | retry | dead) → write back

Retries follow `delivery.retry_delays` (attempt n+1 waits delays[n], ± jitter, at least Retry-After); after
the last one the row is dead (a dead letter, replayable). 410 Gone disables the endpoint. A breaker per
endpoint, plus a cap on each endpoint's attempts in flight, keeps a dead or hanging endpoint from slowing the
rest.
Because the queue is the store, retries survive restarts with the same notification id (`webhook-id`).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import defaultdict
from collections.abc import Awaitable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx

from newsmon import log, metrics
from newsmon.alerter.channels import email as email_channel
from newsmon.alerter.channels import webhook
from newsmon.alerter.outage import Outage, retry_for
from newsmon.bus.base import Bus
from newsmon.errors import DeliveryError, NewsmonError
from newsmon.events import DEAD_LETTER_TOPIC, Alert, DeadLetter
from newsmon.settings import DeliverySettings, Settings, SubscriptionSettings
from newsmon.store import Store
from newsmon.store import deliveries as db

_log = log.get(__name__)
T = TypeVar("T")
GAUGES_EVERY = 5.0  # seconds between retry-queue / dead-letter gauge refreshes
MAX_RETRY_AFTER = 86400.0  # a Retry-After beyond a day is a receiver bug, not a plan


@dataclass
class Breaker:
    """Consecutive failures of one endpoint; open (skipped) until `open_until`, then one trial attempt."""

    failures: int = 0
    open_until: float = 0.0

    def allows(self, now: float) -> bool:
        return now >= self.open_until


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
class _Flight:
    per_endpoint: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    tasks: set[asyncio.Task[None]] = field(default_factory=set)


class DeliveryWorker:
    """Sends due deliveries with bounded concurrency; `wake()` when new rows were added."""

    def __init__(self, settings: Settings, store: Store, bus: Bus | None = None) -> None:
        self.settings, self.store, self.cfg = settings, store, settings.delivery
        self.subs: dict[str, SubscriptionSettings] = {s.id: s for s in settings.subscriptions}
        self.smtp_endpoint = f"smtp://{settings.smtp.host}:{settings.smtp.port}"
        self.per_endpoint_cap = max(1, self.cfg.concurrency // 4)
        self.email_digests = any(s.email is not None and "digest" in (s.mode, s.email.mode)
                                 for s in settings.subscriptions)
        self.lease = self.cfg.timeout + 5.0  # an attempt ends within `timeout`; its outcome is written then
        self.breakers: dict[str, Breaker] = defaultdict(Breaker)
        self.disabled: dict[str, str] = {}
        self.flight = _Flight()
        self.results: asyncio.Queue[db.Outcome] = asyncio.Queue()
        self.unrecorded: list[db.Outcome] = []  # taken off `results`, kept until the store has them
        self.dead: list[tuple[db.Delivery, str]] = []
        self.rng = random.Random()
        self._wake = asyncio.Event()
        self._clients: dict[str, asyncio.Future[httpx.AsyncClient]] = {}
        self.bus = bus

    async def open(self) -> None:
        """Load endpoint state (disabled endpoints) from the store."""
        self.disabled = await db.disabled_endpoints(self.store)

    def wake(self) -> None:
        self._wake.set()

    @property
    def busy(self) -> bool:
        return bool(self.flight.tasks) or not self.results.empty() or bool(self.unrecorded)

    async def close(self) -> None:
        if self.flight.tasks:
            await asyncio.wait(self.flight.tasks, timeout=self.cfg.timeout + 1)
        await self._last_flush()
        for made in self._clients.values():
            if made.done() and made.exception() is None:
                await made.result().aclose()

    async def _client(self, endpoint: str) -> httpx.AsyncClient:
        # One client per endpoint (endpoints stay apart) keeping up to `per_endpoint_cap` connections alive;
        # created once, off the loop (loading TLS roots takes tens of ms), before any attempt's clock starts.
        made = self._clients.get(endpoint)
        if made is None:
            http, limit, cap = self.settings.http, self.cfg.timeout, self.per_endpoint_cap
            made = asyncio.ensure_future(asyncio.to_thread(webhook.create_client, http, limit, cap))
            self._clients[endpoint] = made
        try:
            return await asyncio.shield(made)
        except Exception:
            self._clients.pop(endpoint, None)  # the next attempt tries again
            raise

    async def step(self) -> int:
        """Start attempts for due rows within capacity (waiting for a free slot); returns how many started."""
        if len(self.flight.tasks) >= self.cfg.concurrency:
            await self._wait_slot()
        room = self.cfg.concurrency - len(self.flight.tasks)
        now = time.time()
        skip = [e for e, b in self.breakers.items() if not b.allows(now)]
        skip += [e for e, n in self.flight.per_endpoint.items() if n >= self.per_endpoint_cap]
        rows = await db.claim(self.store, now, self.lease, room, skip)
        started = 0
        for row in rows:
            if self.flight.per_endpoint[row.endpoint] >= self.per_endpoint_cap:
                # over this endpoint's share: back in the queue, no attempt counted
                back = db.Outcome(row.id, now, "deferred", 0.0, "pending", row.attempts, now)
                self.results.put_nowait(back)
                continue
            self._start(row.endpoint, self._attempt([row]))
            started += 1
        groups: dict[str, list[db.Delivery]] = defaultdict(list)
        digests = await db.claim_digests(self.store, now, self.lease) if self.email_digests else []
        for row in digests:
            groups[row.subscription_id].append(row)
        for group in groups.values():
            self._start(group[0].endpoint, self._attempt(group))
            started += 1
        return started

    async def _wait_slot(self) -> None:
        self._wake.clear()
        if len(self.flight.tasks) >= self.cfg.concurrency:
            await self._wake.wait()

    def _start(self, endpoint: str, coro: Coroutine[Any, Any, None]) -> None:
        self.flight.per_endpoint[endpoint] += 1
        task: asyncio.Task[None] = asyncio.create_task(coro)
        self.flight.tasks.add(task)

        def done(t: asyncio.Task[None]) -> None:
            self.flight.tasks.discard(t)
            self.flight.per_endpoint[endpoint] -= 1
            if not t.cancelled() and t.exception() is not None:
                _log.error("delivery.task_failed", endpoint=endpoint, error=repr(t.exception()))
            self._wake.set()

        task.add_done_callback(done)

    async def _attempt(self, rows: list[db.Delivery]) -> None:
        first = rows[0]
        started, t0 = time.time(), time.monotonic()
        status: int | None = None
        try:
            status = await self._send(rows)
            err: DeliveryError | None = None
        except DeliveryError as exc:
            err = exc
        latency = time.monotonic() - t0
        metrics.DELIVERY_SECONDS.labels(first.channel).observe(latency)
        for row in rows:
            self._settle(row, err, status, started, latency)

    async def _send(self, rows: list[db.Delivery]) -> int | None:
        first = rows[0]
        sub = self.subs.get(first.subscription_id)
        if sub is None:
            raise DeliveryError("subscription no longer configured", retriable=False)
        if first.endpoint in self.disabled:
            raise DeliveryError(f"endpoint disabled: {self.disabled[first.endpoint]}", retriable=False)
        alerts = [Alert.model_validate_json(r.payload) for r in rows]
        if first.channel == "webhook" and sub.webhook is not None:
            client = await self._client(first.endpoint)
            return await self._timed(webhook.send(client, sub.webhook, sub.id, alerts[0]))
        if first.channel == "email" and sub.email is not None:
            smtp = self.settings.smtp
            await self._timed(email_channel.send(smtp, sub.email, alerts, first.digest, self.cfg.timeout))
            return None
        raise DeliveryError(f"subscription has no {first.channel} channel any more", retriable=False)

    async def _timed(self, attempt: Awaitable[T]) -> T:
        try:
            async with asyncio.timeout(self.cfg.timeout):
                return await attempt
        except TimeoutError as exc:
            raise DeliveryError(f"timeout after {self.cfg.timeout:g}s", retriable=True) from exc

    def _settle(
        self, row: db.Delivery, err: DeliveryError | None, status: int | None, now: float, latency: float
    ) -> None:
        attempts = row.attempts + 1
        breaker = self.breakers[row.endpoint]
        if err is None:
            breaker.failures, breaker.open_until = 0, 0.0
            metrics.DELIVERIES.labels(row.channel, "delivered").inc()
            if row.fetched_at is not None:
                metrics.E2E_SECONDS.observe(max(0.0, now + latency - row.fetched_at))
            out = db.Outcome(row.id, now, "delivered", latency, "delivered", attempts, now, status)
        else:
            breaker.failures += 1
            if breaker.failures >= self.cfg.breaker_threshold:
                breaker.open_until = now + self.cfg.breaker_cooldown
            if err.status == 410:
                self.disabled[row.endpoint] = "410 Gone"
            when = next_attempt(self.cfg, attempts, err, now + latency, self.rng)  # counted from the answer
            kind = "retry" if when is not None else "dead"
            metrics.DELIVERIES.labels(row.channel, "retried" if when is not None else "failed").inc()
            _log.warning(
                "delivery.failed",
                delivery_id=row.id,
                endpoint=row.endpoint,
                attempt=attempts,
                error=str(err),
                next=kind,
            )
            out = db.Outcome(
                row.id,
                now,
                kind,
                latency,
                "pending" if when else "dead",
                attempts,
                when if when is not None else now,
                err.status,
                str(err),
            )
            if when is None:
                self.dead.append((row, str(err)))
        self.results.put_nowait(out)

    async def flush(self) -> int:
        """Write every finished attempt to the store (one transaction); returns how many.

        On StoreError the outcomes stay in `unrecorded` for the next flush: a success is recorded late rather
        than lost (a lost one would be sent again once its lease ran out)."""
        while not self.results.empty():
            self.unrecorded.append(self.results.get_nowait())
        batch = list(self.unrecorded)
        if batch:
            await db.record(self.store, batch)
            del self.unrecorded[: len(batch)]
            recorded = {o.delivery_id for o in batch}
            dead = [d for d in self.dead if d[0].id in recorded]
            self.dead = [d for d in self.dead if d[0].id not in recorded]
            for row, error in dead:
                metrics.DELIVERIES.labels(row.channel, "dead_lettered").inc()
                await self._publish_dead(row, error)
        for endpoint, reason in list(self.disabled.items()):
            if reason == "410 Gone":  # a failed write is tried again at the next flush
                await db.disable_endpoint(self.store, endpoint, reason, time.time())
                self.disabled[endpoint] = "410 Gone (recorded)"
        return len(batch)

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

    async def refresh_gauges(self) -> None:
        """Set the retry-queue and dead-letter gauges from the store."""
        c = await db.counts(self.store)
        metrics.RETRY_QUEUE.set(c.get("pending", 0))
        metrics.DEAD_LETTERS.set(c.get("dead", 0))

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until `stop`; finishes attempts in flight before returning. Retriable store errors are
        backed off and retried (see outage.py); outcomes not yet recorded are kept meanwhile."""
        outage = Outage("delivery")
        opened, gauges_at = False, 0.0
        try:
            while not stop.is_set():
                try:
                    if not opened:
                        await self.open()
                        opened = True
                    self._wake.clear()
                    await self.flush()  # before claiming: never claim a row whose outcome is still unrecorded
                    started = await self.step()
                    await self.flush()
                    if time.monotonic() >= gauges_at:
                        gauges_at = time.monotonic() + GAUGES_EVERY
                        await self.refresh_gauges()
                    if not started:
                        await self.pause(stop)
                except NewsmonError as exc:
                    await outage.failed(exc, stop)
                    continue
                outage.ok()
                if started:
                    await asyncio.sleep(0.002)  # let a few attempts finish: claims and writes go in batches
        finally:
            await self.close()

    async def _last_flush(self) -> None:
        # Retried for as long as a lease lasts: after that the rows are due again anyway (same webhook-id).
        try:
            await retry_for(self.flush, "delivery", self.lease)
        except NewsmonError as exc:
            _log.error("delivery.outcomes_unrecorded", count=len(self.unrecorded), error=str(exc))
            raise

    async def pause(self, stop: asyncio.Event) -> None:
        """Sleep until woken (new rows, a finished attempt), the next row is due, or 0.5 s."""
        due = await db.next_due(self.store)
        # Rows already due but not started are held by a breaker or an endpoint's cap: a finished attempt or
        # the breaker's cooldown (at most 0.5 s of polling) lets them go.
        held = due is not None and due <= time.time()
        wait = 0.5 if due is None or held else min(0.5, max(0.005, due - time.time()))
        waiter = asyncio.ensure_future(self._wake.wait())
        stopper = asyncio.ensure_future(stop.wait())
        await asyncio.wait([waiter, stopper], timeout=wait, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        stopper.cancel()
