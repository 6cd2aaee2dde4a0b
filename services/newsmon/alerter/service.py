"""The alerter service: matches → lifecycle → alerts topic → routing → delivery rows → delivery worker.

Five loops share one stop event: the match consumer ("newsmon-alerter"), the lifecycle timer (group wait and
group interval expiries, and the outbox), the alert consumer ("newsmon-delivery"), the delivery worker, and the
subscription directory's reload (config + API subscriptions, see directory.py).
Both consumers run `newsmon.bus.loop.consume`: offsets are committed after the store transaction, so a crash
replays messages, which the handlers absorb idempotently.
A store or broker outage (a retriable error) ends no loop: the consumers retry the message in hand, the timer and
the delivery worker back off and go on (outage.py), keeping the outcomes they could not record yet.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

from newsmon import log, metrics
from newsmon.alerter import intake
from newsmon.alerter.delivery import DeliveryWorker
from newsmon.alerter.directory import Directory
from newsmon.alerter.outage import Outage
from newsmon.bus.base import Bus, Consumer, Message
from newsmon.bus.loop import consume
from newsmon.errors import NewsmonError
from newsmon.events import ALERTS_TOPIC, MATCHES_TOPIC
from newsmon.settings import Settings
from newsmon.store import Store
from newsmon.store import alerts as alerts_db
from newsmon.store import deliveries as deliveries_db

_log = log.get(__name__)
MATCH_GROUP = "newsmon-alerter"
ALERT_GROUP = "newsmon-delivery"


class AlerterService:
    """Runs the alerter's loops until `stop` (or, with `until_idle`, until no work is left to do)."""

    def __init__(self, settings: Settings, bus: Bus, store: Store) -> None:
        self.settings, self.bus, self.store = settings, bus, store
        self.worker = DeliveryWorker(settings, store, bus)
        self.directory = Directory(settings, store)
        self._kick = asyncio.Event()

    def _use_subscriptions(self) -> None:
        # The worker looks subscriptions up by id when it sends; it gets every spec this process has seen.
        self.worker.use(self.directory.known.values())

    def horizon(self) -> float:
        """How far ahead scheduled work still counts as work for `until_idle`."""
        d, a = self.settings.delivery, self.settings.alerting
        digests = [s.digest_every for s in self.directory.current]
        return (
            sum(d.retry_delays) * (1 + d.jitter)
            + a.group_wait
            + a.group_interval
            + max(digests, default=0)
            + 1
        )

    async def run(self, stop: asyncio.Event, until_idle: bool = False) -> None:
        """Consume, decide, route and deliver until stopped."""
        inner = asyncio.Event()
        await self.directory.refresh()
        self._use_subscriptions()
        matches = self.bus.consumer([MATCHES_TOPIC], MATCH_GROUP)
        alerts = self.bus.consumer([ALERTS_TOPIC], ALERT_GROUP)
        await matches.start()
        await alerts.start()
        bus = self.bus
        tasks = [
            asyncio.create_task(c, name=n)
            for n, c in (
                ("alerter.matches", consume(bus, matches, lambda m: self._on_matches([m]), group=MATCH_GROUP,
                                            stop=inner, batch_handler=self._on_matches)),
                ("alerter.timer", self._timer(inner)),
                ("alerter.alerts", consume(bus, alerts, lambda m: self._on_alerts([m]), group=ALERT_GROUP,
                                           stop=inner, batch_handler=self._on_alerts)),
                ("alerter.delivery", self.worker.run(inner)),
                ("alerter.subscriptions", self.directory.run(inner, self._use_subscriptions)),
            )
        ]
        watch: list[asyncio.Task[Any]] = [asyncio.create_task(stop.wait())]
        if until_idle:
            watch.append(asyncio.create_task(self._until_idle(matches, alerts)))
        try:
            await asyncio.wait([*watch, *tasks], return_when=asyncio.FIRST_COMPLETED)
        finally:
            inner.set()
            for w in watch:
                w.cancel()
            results = await asyncio.gather(*tasks, return_exceptions=True)
            await matches.stop()
            await alerts.stop()
        for task, res in zip(tasks, results, strict=True):
            if isinstance(res, BaseException) and not isinstance(res, asyncio.CancelledError):
                _log.error("alerter.loop_failed", loop=task.get_name(), error=repr(res))
                raise res

    # Each fetched batch is one store transaction (the *s handlers); message by message only to single out a
    # message that fails (bus/loop.py).
    async def _on_matches(self, msgs: Sequence[Message]) -> None:
        if await intake.take_matches(self.settings, self.store, msgs):
            await intake.publish_outbox(self.store, self.bus)
        self._kick.set()

    async def _on_alerts(self, msgs: Sequence[Message]) -> None:
        if await intake.take_alerts(self.settings, self.directory.current, self.store, msgs):
            self.worker.wake()

    async def _timer(self, stop: asyncio.Event) -> None:
        """Fire group-wait/group-interval expiries and publish the outbox (also what a crash left behind).
        A retriable store or bus error is backed off and retried (outage.py); any other ends the service."""
        outage = Outage("timer")
        while not stop.is_set():
            try:
                await intake.flush_due(self.store)
                await intake.publish_outbox(self.store, self.bus)
                due = await alerts_db.next_notify_at(self.store)
            except NewsmonError as exc:
                await outage.failed(exc, stop)
                continue
            outage.ok()
            wait = 0.5 if due is None else min(0.5, max(0.005, due - time.time()))
            self._kick.clear()
            await _wait_any([stop, self._kick], wait)

    async def _until_idle(self, *consumers: Consumer) -> None:
        """Return once nothing is left: no lag, no outbox, nothing due within the horizon, twice in a row."""
        calm = 0
        while calm < 2:
            await asyncio.sleep(0.05)
            calm = calm + 1 if await self._idle(consumers) else 0

    async def _idle(self, consumers: Sequence[Consumer]) -> bool:
        try:
            return await self._nothing_left(consumers)
        except NewsmonError as exc:  # the store or the bus is away: not idle, ask again later
            if not exc.retriable:
                raise
            metrics.LOOP_RETRIES.labels("idle").inc()
            _log.warning("alerter.idle_check_failed", error=str(exc)[:300])
            return False

    async def _nothing_left(self, consumers: Sequence[Consumer]) -> bool:
        for c in consumers:
            if await c.lag():
                return False
        if self.worker.busy or await alerts_db.unpublished(self.store, limit=1):
            return False
        limit = time.time() + self.horizon()
        for due in (await alerts_db.next_notify_at(self.store), await deliveries_db.next_due(self.store)):
            if due is not None and due <= limit:
                return False
        return True


async def _wait_any(events: Sequence[asyncio.Event], seconds: float) -> None:
    waiters = [asyncio.create_task(e.wait()) for e in events]
    await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    for w in waiters:
        w.cancel()
