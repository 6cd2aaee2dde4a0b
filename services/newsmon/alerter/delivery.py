"""The delivery worker: sends due deliveries from the store, retries, dead-letters, and keeps endpoints apart.

    claim due rows (leased to this process) → attempt each (sender.py) → outcome (delivered | retry | dead)
    → outcomes written back in batches, leases of rows in hand extended meanwhile (recorder.py)

Retries follow `delivery.retry_delays` (attempt n+1 waits delays[n], ± jitter, at least Retry-After); after
the last one the row is dead (a dead letter, replayable). 410 Gone disables the endpoint. A breaker per
endpoint, plus a cap on each endpoint's attempts in flight, keeps a dead or hanging endpoint from slowing the
rest (endpoints.py). Because the queue is the store, retries survive restarts with the same notification id
(`webhook-id`); because a row names its holder, a process whose lease ran out cannot overwrite the outcome of
the process that took the row over.
"""

from __future__ import annotations

import asyncio
import os
import random
import socket
import time
import uuid
from collections import defaultdict
from collections.abc import Coroutine, Iterable
from typing import Any

from newsmon import log, metrics
from newsmon.alerter.endpoints import Endpoints, endpoint_of, next_attempt, webhook_urls
from newsmon.alerter.outage import Outage
from newsmon.alerter.recorder import Recorder
from newsmon.alerter.sender import Sender
from newsmon.bus.base import Bus
from newsmon.errors import DeliveryError, NewsmonError
from newsmon.settings import Settings, SubscriptionSettings
from newsmon.store import Store
from newsmon.store import deliveries as db
from newsmon.store import delivery_leases as leases
from newsmon.store.delivery_leases import Outcome

_log = log.get(__name__)
GAUGES_EVERY = 5.0  # seconds between retry-queue / dead-letter gauge refreshes
BATCH_WAIT = 0.01  # seconds the worker waits, at most, for a batch of free slots before claiming again


def owner_id() -> str:
    """A lease owner id unique to this worker: host:pid:random."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class DeliveryWorker:
    """Sends due deliveries with bounded concurrency; `wake()` when new rows were added."""

    def __init__(self, settings: Settings, store: Store, bus: Bus | None = None) -> None:
        self.settings, self.store, self.cfg, self.bus = settings, store, settings.delivery, bus
        self.owner = owner_id()
        self.subs: dict[str, SubscriptionSettings] = {}
        self.email_digests = False
        self.smtp_endpoint = f"smtp://{settings.smtp.host}:{settings.smtp.port}"
        self.lease = self.cfg.timeout + 5.0  # an attempt ends within `timeout`; its outcome is written then
        self.batch = max(1, self.cfg.concurrency // 4)  # free slots worth a claim while attempts are in flight
        self.endpoints = Endpoints(self.cfg)
        self.sender = Sender(settings, self.endpoints.lane_cap)
        self.tasks: set[asyncio.Task[None]] = set()
        self.recorder = Recorder(store, bus, self.owner, self.lease, self.endpoints)
        self.repoint: dict[str, str] = {}  # subscription → new webhook URL, for its queued rows
        self.retired: set[str] = set()  # endpoints no subscription points at any more
        self.rng = random.Random()
        self._wake = asyncio.Event()
        self.use(settings.subscriptions)

    def use(self, subs: Iterable[SubscriptionSettings]) -> None:
        """Route with these subscription specs from now on. A changed webhook URL takes the subscription's queued
        rows with it (written to the store by the run loop); an URL nothing points at any more is retired."""
        before = webhook_urls(self.subs.values())
        self.subs = {s.id: s for s in subs}
        now = webhook_urls(self.subs.values())
        for sub_id, url in now.items():
            if sub_id in before and before[sub_id] != url:
                self.repoint[sub_id] = url
        self.retired |= set(before.values()) - set(now.values())
        self.email_digests = any(s.email is not None and "digest" in (s.mode, s.email.mode)
                                 for s in self.subs.values())
        self.wake()

    async def open(self) -> None:
        """Load endpoint state (disabled endpoints) from the store."""
        self.endpoints.disabled.update(await db.disabled_endpoints(self.store))
        self.repoint = webhook_urls(self.subs.values())  # a URL may have changed while no alerter ran

    def wake(self) -> None:
        self._wake.set()

    @property
    def busy(self) -> bool:
        return bool(self.tasks) or self.recorder.pending

    def endpoint(self, row: db.Delivery) -> str:
        """Where `row` goes now (see endpoints.py)."""
        return endpoint_of(self.subs.get(row.subscription_id), row.channel, row.endpoint)

    async def close(self) -> None:
        if self.tasks:
            await asyncio.wait(self.tasks, timeout=self.cfg.timeout + 1)
        await self.recorder.last_flush()
        self.sender.close()

    async def step(self) -> int:
        """Start attempts for due rows within capacity (waiting for a free slot); returns how many started."""
        if len(self.tasks) >= self.cfg.concurrency:
            await self._wait_slot()
        room = self.cfg.concurrency - len(self.tasks)
        now = time.time()
        rows = await leases.claim(self.store, self.owner, now, self.lease, room, self.endpoints.held(now))
        started = 0
        for row in rows:
            self.recorder.hold(row, now)
            endpoint = self.endpoint(row)
            if self.endpoints.lane_full(endpoint):  # over this endpoint's share: back in the queue, not counted
                self.recorder.put(Outcome(row.id, row.channel, now, "deferred", 0.0, "pending", now))
                continue
            self._start(endpoint, self._attempt([row], endpoint))
            started += 1
        if self.email_digests:
            groups: dict[str, list[db.Delivery]] = defaultdict(list)
            for row in await leases.claim_digests(self.store, self.owner, now, self.lease):
                self.recorder.hold(row, now)
                groups[row.subscription_id].append(row)
            for group in groups.values():
                self._start(self.endpoint(group[0]), self._attempt(group, self.endpoint(group[0])))
                started += 1
        return started

    async def _wait_slot(self) -> None:
        self._wake.clear()
        if len(self.tasks) >= self.cfg.concurrency:
            await self._wake.wait()

    def _start(self, endpoint: str, coro: Coroutine[Any, Any, None]) -> None:
        self.endpoints.enter(endpoint)
        task: asyncio.Task[None] = asyncio.create_task(coro)
        self.tasks.add(task)

        def done(t: asyncio.Task[None]) -> None:
            self.tasks.discard(t)
            self.endpoints.leave(endpoint)
            self._wake.set()
            if not t.cancelled() and t.exception() is not None:
                _log.error("delivery.task_failed", endpoint=endpoint, error=repr(t.exception()))

        task.add_done_callback(done)

    async def _attempt(self, rows: list[db.Delivery], endpoint: str) -> None:
        first = rows[0]
        started, t0 = time.time(), time.monotonic()
        status: int | None = None
        sub, disabled = self.subs.get(first.subscription_id), self.endpoints.disabled.get(endpoint)
        try:
            status = await self.sender.send(rows, sub, endpoint, disabled)
            err: DeliveryError | None = None
        except DeliveryError as exc:
            err = exc
        latency = time.monotonic() - t0
        metrics.DELIVERY_SECONDS.labels(first.channel).observe(latency)
        if err is None:
            self.endpoints.succeeded(endpoint)
        else:
            self.endpoints.failed(endpoint, err, started)
        for row in rows:
            self._settle(row, endpoint, err, status, started, latency)

    def _settle(self, row: db.Delivery, endpoint: str, err: DeliveryError | None, status: int | None,
                now: float, latency: float) -> None:
        attempts = row.attempts + 1
        if err is None:
            metrics.DELIVERIES.labels(row.channel, "delivered").inc()
            if row.fetched_at is not None:
                metrics.E2E_SECONDS.observe(max(0.0, now + latency - row.fetched_at))
            self.recorder.put(Outcome(row.id, row.channel, now, "delivered", latency, "delivered", now, status))
            return
        when = next_attempt(self.cfg, attempts, err, now + latency, self.rng)  # counted from the answer
        kind = "retry" if when is not None else "dead"
        metrics.DELIVERIES.labels(row.channel, "retried" if when is not None else "failed").inc()
        _log.warning("delivery.failed", delivery_id=row.id, endpoint=endpoint, attempt=attempts, error=str(err),
                     next=kind)
        out = Outcome(row.id, row.channel, now, kind, latency, "pending" if when else "dead",
                      when if when is not None else now, err.status, str(err))
        self.recorder.put(out, dead=row if when is None else None)

    async def _follow_subscriptions(self) -> None:
        """Write changed webhook URLs to the queued rows; close what retired endpoints held."""
        for sub_id, url in list(self.repoint.items()):
            moved = await db.repoint(self.store, sub_id, "webhook", url, time.time())
            if moved:
                _log.info("delivery.endpoint_changed", subscription=sub_id, endpoint=url, rows=moved)
            if self.repoint.get(sub_id) == url:
                del self.repoint[sub_id]
        for endpoint in list(self.retired):
            if endpoint in webhook_urls(self.subs.values()).values():  # back in use
                self.retired.discard(endpoint)
            elif endpoint not in self.endpoints.lanes:
                self.endpoints.retire(endpoint)
                self.sender.retire(endpoint)
                self.retired.discard(endpoint)

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
                    await self.recorder.flush()  # the outcomes of the attempts that finished meanwhile, one batch
                    await self._follow_subscriptions()
                    await self.recorder.extend(time.time())
                    started = await self.step()
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
                    await self._gather(stop)
        finally:
            await self.close()

    async def _gather(self, stop: asyncio.Event) -> None:
        """Let attempts finish until a batch of slots is free, or BATCH_WAIT passed: then one claim and one write
        serve a batch of deliveries (the store round trips, not the sends, were the cost per delivery)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + BATCH_WAIT
        while self.cfg.concurrency - len(self.tasks) < self.batch and not stop.is_set():
            left = deadline - loop.time()
            if left <= 0:
                return
            self._wake.clear()
            try:
                async with asyncio.timeout(left):
                    await self._wake.wait()
            except TimeoutError:
                return

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
