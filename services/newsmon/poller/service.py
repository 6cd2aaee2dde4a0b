"""The poller service: follows the feeds table, claims the feeds that are due, refreshes each one.

Sequencing only: `refresh` is the per-feed pipeline, `schedule` decides when, `leaseholder` follows the feeds
table and leases due feeds (several pollers share one store), `politeness` limits hosts; a global semaphore bounds
requests in flight, and a slow or broken feed only ever holds its own slot. Saving a polled feed releases its lease.
"""

from __future__ import annotations

import asyncio
import functools
import random
import time

from newsmon import log, net
from newsmon.bus.base import Bus
from newsmon.errors import NewsmonError
from newsmon.poller.feedlist import configured_feeds
from newsmon.poller.leaseholder import Leaseholder, owner_id
from newsmon.poller.politeness import HostLimiter
from newsmon.poller.refresh import Context, crashed, internal_error, refresh
from newsmon.poller.saver import StateSaver
from newsmon.settings import Settings
from newsmon.store import Store
from newsmon.store import feeds as feed_store
from newsmon.store.feeds import FeedState

_log = log.get(__name__)
_IDLE_TICK = 1.0  # longest sleep between looks at the agenda (reloads, leases to renew, stop)
_BATCH_GAP = 0.5  # seconds between two claims, so feeds falling due one by one are claimed in batches


class PollerService:
    """Polls the feeds of the store on their own schedules and publishes new and edited articles."""

    def __init__(self, settings: Settings, bus: Bus, store: Store) -> None:
        self.settings = settings
        self.bus = bus
        self.store = store
        cfg = settings.poller
        self.owner = owner_id()
        self._slots = asyncio.Semaphore(cfg.concurrency)
        self._hosts = HostLimiter(cfg.per_host_concurrency, cfg.per_host_interval)
        self._running: dict[str, asyncio.Task[None]] = {}
        self._wake = asyncio.Event()
        self._refill = False  # half the leased polls are done: claim more now
        self.outcomes: dict[str, int] = {}
        self._infra_streak = 0  # polls in a row that failed on our side (bus, store)

    async def run(self, stop: asyncio.Event, until_idle: bool = False) -> None:
        """Poll until `stop` is set; `until_idle`: poll every feed due now once, then return."""
        states = await feed_store.sync_feeds(self.store, configured_feeds(self.settings), time.time())
        _log.info("poller.start", feeds=len(states), owner=self.owner, until_idle=until_idle)
        saver = StateSaver(self.store, self.owner)
        holder = Leaseholder(self.store, self.settings.poller, saver, self.owner)
        client = net.create_client(self.settings.http, max_connections=self.settings.poller.concurrency)
        async with client:
            ctx = Context(self.settings, self.bus, self.store, client, random.Random(), saver)
            hub = None if until_idle else self._websub(ctx, stop)
            try:
                await self._loop(ctx, holder, stop, until_idle)
                if hub is not None:
                    await hub
            finally:
                if hub is not None and not hub.done():
                    hub.cancel()
                if self._running:  # finish what is in flight: each poll is bounded by the total timeout
                    await asyncio.gather(*self._running.values(), return_exceptions=True)
                await saver.close()
                await holder.release()
        _log.info("poller.stop", outcomes=self.outcomes)

    def _websub(self, ctx: Context, stop: asyncio.Event) -> asyncio.Task[None] | None:
        # WebSub is on only when both a public callback URL and a listen address are configured.
        callback = self.settings.poller.websub_callback
        listen = self.settings.poller.websub_listen
        if not callback or not listen:
            return None
        from newsmon.poller.websub import WebSub

        hub = WebSub(ctx, callback)
        return asyncio.create_task(hub.run(listen, stop, self.settings.poller.reload_interval), name="websub")

    async def _loop(self, ctx: Context, holder: Leaseholder, stop: asyncio.Event, until_idle: bool) -> None:
        cfg = self.settings.poller
        limit = cfg.concurrency * 2  # leased at once: every slot kept busy, no hoard another poller could use
        started = time.time()
        await holder.reload(self._running, cutoff=started if until_idle else None)
        next_reload, next_renew, last_claim = started + cfg.reload_interval, started + cfg.lease_ttl / 3, 0.0
        while not stop.is_set():
            now = time.time()
            if now >= next_reload and not until_idle:
                await holder.reload(self._running)
                next_reload = now + cfg.reload_interval
            if now >= next_renew and self._running:
                await holder.renew(self._running)
                next_renew = now + cfg.lease_ttl / 3
            # One claim statement per batch: feeds falling due one by one wait up to _BATCH_GAP to be claimed
            # together; a backlog is claimed half the limit at a time (woken when half the polls are done).
            nxt, free = holder.agenda.next_at(), limit - len(self._running)
            if nxt is not None and nxt <= now and free and (now >= last_claim + _BATCH_GAP or self._refill):
                self._refill, last_claim = False, now
                for state in await holder.claim_due(now, free):
                    task = asyncio.create_task(self._poll(ctx, state), name=state.id)
                    self._running[state.id] = task
                    task.add_done_callback(functools.partial(self._finished, state, holder, until_idle, limit))
            if until_idle and not self._running and not len(holder.agenda):
                return
            nxt, full = holder.agenda.next_at(), len(self._running) >= limit  # full: woken by the refill
            wait = _IDLE_TICK if nxt is None or full else min(_IDLE_TICK, max(nxt, last_claim + _BATCH_GAP) - now)
            await _pause(stop, self._wake, max(wait, 0.01))

    def _finished(
        self, state: FeedState, holder: Leaseholder, once: bool, limit: int, task: asyncio.Task[None]
    ) -> None:
        self._running.pop(task.get_name(), None)
        if not once:
            holder.agenda.set(state.id, state.next_poll)
        # A backlog and at most half the limit in flight: claim more now. (Not only at exactly half: polls that
        # drained past the mark while a claim waited on the store left the loop idle for the batch gap.)
        nxt = holder.agenda.next_at()
        if len(self._running) <= limit // 2 and not self._refill and nxt is not None and nxt <= time.time():
            self._refill = True
            self._wake.set()
        elif not self._running:
            self._wake.set()

    async def _poll(self, ctx: Context, state: FeedState) -> None:
        async with self._hosts.slot(state.url), self._slots:
            try:
                outcome = await refresh(ctx, state)
                self._infra_streak = 0
            except NewsmonError as exc:  # our side failed (bus, store): not the feed's fault, retry soon
                outcome = internal_error(ctx, state, exc, self._infra_streak)
                self._infra_streak += 1
            except Exception as exc:  # a bug on one feed's input must not stop the others; logged with traceback
                outcome = crashed(ctx, state, exc)
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1


async def _pause(stop: asyncio.Event, wake: asyncio.Event, timeout: float) -> None:
    """Sleep until `stop`, `wake` (a poll finished) or `timeout`."""
    wake.clear()
    waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(wake.wait())]
    try:
        await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
