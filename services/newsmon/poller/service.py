"""The poller service: keeps feeds from the config in the store and refreshes each one when it is due.

Sequencing only: `refresh` is the per-feed pipeline, `schedule` decides when, `politeness` limits hosts; a
global semaphore bounds requests in flight, and a slow or broken feed only ever holds its own slot.
"""

from __future__ import annotations

import asyncio
import hashlib
import heapq
import random
import time
from typing import Any

from newsmon import log, metrics, net
from newsmon.bus.base import Bus
from newsmon.errors import NewsmonError
from newsmon.poller import schedule
from newsmon.poller.politeness import HostLimiter
from newsmon.poller.refresh import Context, refresh
from newsmon.poller.saver import StateSaver
from newsmon.settings import FeedSettings, Settings
from newsmon.store import Store
from newsmon.store import feeds as feed_store
from newsmon.store.feeds import FeedState

_log = log.get(__name__)
_IDLE_TICK = 1.0  # longest sleep between looks at the schedule (config reloads, stop)
_RETRY_INFRA = 30.0  # seconds before retrying a feed whose poll failed on our side (bus, store)


def feed_id(feed: FeedSettings) -> str:
    """The configured id, else a stable hash of the URL."""
    return feed.id or "f_" + hashlib.sha256(str(feed.url).encode()).hexdigest()[:16]


def configured_feeds(settings: Settings) -> list[FeedState]:
    """The config's feeds as fresh states (the store keeps what it knows about them)."""
    out = {}
    for f in settings.feeds:
        fid = feed_id(f)
        out[fid] = FeedState(
            id=fid,
            url=str(f.url),
            config_url=str(f.url),
            interval=f.interval,
            current_interval=f.interval,
            name=f.name,
            lang=f.lang,
        )
    return list(out.values())


class PollerService:
    """Polls every configured feed on its own schedule and publishes new and edited articles."""

    def __init__(self, settings: Settings, bus: Bus, store: Store) -> None:
        self.settings = settings
        self.bus = bus
        self.store = store
        cfg = settings.poller
        self._slots = asyncio.Semaphore(cfg.concurrency)
        self._hosts = HostLimiter(cfg.per_host_concurrency, cfg.per_host_interval)
        self.outcomes: dict[str, int] = {}

    async def run(self, stop: asyncio.Event, until_idle: bool = False) -> None:
        """Poll until `stop` is set; `until_idle`: poll every due (or never polled) feed once, then return."""
        now = time.time()
        states = await feed_store.sync_feeds(self.store, configured_feeds(self.settings), now)
        _log.info("poller.start", feeds=len(states), until_idle=until_idle)
        saver = StateSaver(self.store)
        client = net.create_client(self.settings.http, max_connections=self.settings.poller.concurrency)
        async with client:
            ctx = Context(self.settings, self.bus, self.store, client, random.Random(), saver)
            try:
                if until_idle:
                    due = [s for s in states if s.next_poll <= now or s.last_poll is None]
                    await asyncio.gather(*(self._poll(ctx, s) for s in due))
                else:
                    hub = self._websub(ctx, states, stop)
                    await self._loop(ctx, states, stop)
                    if hub is not None:
                        await hub
            finally:
                await saver.close()
        _log.info("poller.stop", outcomes=self.outcomes)

    def _websub(
        self, ctx: Context, states: list[FeedState], stop: asyncio.Event
    ) -> asyncio.Task[None] | None:
        # WebSub is on only when both a public callback URL and a listen address are configured.
        callback = self.settings.poller.websub_callback
        listen = self.settings.poller.websub_listen
        if not callback or not listen:
            return None
        from newsmon.poller.websub import WebSub

        hub = WebSub(ctx, callback, {s.id: s for s in states})
        return asyncio.create_task(hub.run(listen, stop), name="websub")

    async def _loop(self, ctx: Context, states: list[FeedState], stop: asyncio.Event) -> None:
        queue = [(s.next_poll, s.id) for s in states]
        heapq.heapify(queue)
        by_id = {s.id: s for s in states}
        running: set[asyncio.Task[Any]] = set()
        limit = self.settings.poller.concurrency * 4  # bounded task count even when thousands are due

        def requeue(task: asyncio.Task[Any]) -> None:
            running.discard(task)
            state = by_id[task.get_name()]
            heapq.heappush(queue, (state.next_poll, state.id))

        while not stop.is_set():
            now = time.time()
            while queue and queue[0][0] <= now and len(running) < limit:
                _, fid = heapq.heappop(queue)
                task = asyncio.create_task(self._poll(ctx, by_id[fid]), name=fid)
                running.add(task)
                task.add_done_callback(requeue)
            wait = min(_IDLE_TICK, max(0.0, queue[0][0] - now)) if queue else _IDLE_TICK
            if len(running) >= limit:
                wait = _IDLE_TICK
            try:
                await asyncio.wait_for(stop.wait(), timeout=max(wait, 0.01))
            except TimeoutError:
                pass
        if running:  # finish what is in flight: each poll is bounded by the total timeout
            await asyncio.gather(*running, return_exceptions=True)

    async def _poll(self, ctx: Context, state: FeedState) -> None:
        async with self._hosts.slot(state.url), self._slots:
            try:
                outcome = await refresh(ctx, state)
            except NewsmonError as exc:  # our side failed (bus, store): not the feed's fault, retry soon
                outcome = "internal_error"
                state.next_poll = time.time() + schedule.jittered(_RETRY_INFRA, self.settings.poller, ctx.rng)
                metrics.FEED_ERRORS.labels(exc.__class__.__name__).inc()
                _log.error(
                    "feed.poll_internal_error", feed_id=state.id, error=f"{exc.__class__.__name__}: {exc}"
                )
            except (
                Exception
            ) as exc:  # a bug on one feed's input must not stop the others; logged with traceback
                outcome = "bug"
                state.next_poll = time.time() + schedule.backoff(
                    state.current_interval, 3, None, self.settings.poller
                )
                metrics.FEED_ERRORS.labels("unexpected").inc()
                _log.exception("feed.poll_crashed", feed_id=state.id, error=repr(exc))
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1
