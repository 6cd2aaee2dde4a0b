"""One poller's view of the feeds table: its agenda (when each active feed is due) and the leases it holds.

The agenda is rebuilt from the table every `poller.reload_interval`, so feeds added, paused, resumed or removed
through the API are followed by a running poller; between reloads the poller reschedules the feeds it polled
itself. A due feed is polled only after `claim` leased it in the store (see `store.leases`): the agenda only says
when to ask. Store failures are logged and counted, and the next round tries again.
"""

from __future__ import annotations

import os
import secrets
import socket
import time
from collections.abc import Collection

from newsmon import log, metrics
from newsmon.errors import StoreError
from newsmon.poller import schedule
from newsmon.poller.saver import StateSaver
from newsmon.settings import PollerSettings
from newsmon.store import Store, leases
from newsmon.store.feeds import FeedState

_log = log.get(__name__)


def owner_id() -> str:
    """A lease owner id unique to this process: host:pid:random."""
    return f"{socket.gethostname()[:80]}:{os.getpid()}:{secrets.token_hex(4)}"


class Leaseholder:
    """The agenda of due feeds and this poller's leases on them."""

    def __init__(self, store: Store, cfg: PollerSettings, saver: StateSaver, owner: str) -> None:
        self.store = store
        self.cfg = cfg
        self.saver = saver
        self.owner = owner
        self.agenda = schedule.Agenda()

    async def reload(self, running: Collection[str], cutoff: float | None = None) -> None:
        """Rebuild the agenda from the table (`cutoff`: keep only feeds due by then; `running`: left out)."""
        try:
            await self.saver.flush()  # our finished polls are in the table before we read it
            slots = await leases.agenda(self.store)
        except StoreError as exc:  # keep the agenda we have
            self._failed("poller.reload_failed", exc)
            return
        now = time.time()
        entries = {s.id: s.due_at(now) for s in slots if s.lease_owner != self.owner}
        for s in slots:  # held by us: polling now (rescheduled when done) or just polled (our agenda knows)
            when = self.agenda.when(s.id)
            if s.lease_owner == self.owner and when is not None:
                entries[s.id] = when
        if cutoff is not None:
            entries = {fid: when for fid, when in entries.items() if when <= cutoff}
        self.agenda.replace((fid, when) for fid, when in entries.items() if fid not in running)

    async def claim_due(self, now: float, limit: int) -> list[FeedState]:
        """Lease up to `limit` of the feeds due now; their current states.

        Feeds not granted are being polled by another poller, were paused, or are not due any more: they leave
        the agenda until the next reload says when they are due.
        """
        due = self.agenda.take_due(now, limit)
        if not due:
            return []
        try:
            return await leases.claim(self.store, due, self.owner, now, self.cfg.lease_ttl)
        except StoreError as exc:
            self._failed("poller.claim_failed", exc, feeds=len(due))
            return []

    async def renew(self, ids: Collection[str]) -> None:
        """Extend the leases of polls still in flight."""
        try:
            await leases.renew(self.store, list(ids), self.owner, time.time(), self.cfg.lease_ttl)
        except StoreError as exc:  # they may run out: another poller may then poll those feeds too
            self._failed("poller.renew_failed", exc, feeds=len(ids))

    async def release(self) -> None:
        """Give up every lease still held (after the last save): other pollers need not wait for the TTL."""
        try:
            left = await leases.release_all(self.store, self.owner)
        except StoreError as exc:  # they expire by themselves
            self._failed("poller.release_failed", exc)
            return
        if left:
            _log.warning("poller.released_unsaved_leases", feeds=left)

    def _failed(self, event: str, exc: StoreError, **fields: object) -> None:
        metrics.FEED_ERRORS.labels("StoreError").inc()
        _log.error(event, error=str(exc), owner=self.owner, **fields)
