"""The subscriptions a running alerter routes to: the config file's plus those stored through the API.

The store is re-read every `alerting.subscriptions_reload`, so a subscription created, changed or deleted through
the API takes effect within that time, without a restart. Routing uses `current`; the delivery worker uses
`known` — every spec seen by this process, the latest version of each — so deliveries routed before a
deletion was noticed still go out (the deletion stops new notifications, not those already queued).

A config subscription wins over a stored one with the same id (the API refuses such ids; the config may gain
one later). Stored rows that do not validate or are shadowed are ignored with a warning (once per problem) and
counted in the `newsmon_alerter_subscriptions{origin="ignored"}` gauge. A failed re-read keeps the last set.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from newsmon import log, metrics
from newsmon.errors import NewsmonError
from newsmon.settings import Settings, SubscriptionSettings
from newsmon.store import Store
from newsmon.store import subscriptions as db

_log = log.get(__name__)


class Directory:
    """Config subscriptions + stored ones, refreshed from the store."""

    def __init__(self, settings: Settings, store: Store) -> None:
        self.store = store
        self.every = settings.alerting.subscriptions_reload
        self.config = list(settings.subscriptions)
        self.current: list[SubscriptionSettings] = list(self.config)
        self.known: dict[str, SubscriptionSettings] = {s.id: s for s in self.config}
        self._stored: dict[str, str] = {}  # id → spec JSON, to tell a change from a re-read of the same rows
        self._warned: set[str] = set()
        self._count(0, 0)

    def _count(self, stored: int, ignored: int) -> None:
        metrics.SUBSCRIPTIONS.labels("config").set(len(self.config))
        metrics.SUBSCRIPTIONS.labels("api").set(stored)
        metrics.SUBSCRIPTIONS.labels("ignored").set(ignored)

    def _ignore(self, sub_id: str, reason: str) -> None:
        if f"{sub_id}\n{reason}" not in self._warned:
            self._warned.add(f"{sub_id}\n{reason}")
            _log.warning("alerter.subscription_ignored", subscription=sub_id, reason=reason)

    async def refresh(self) -> bool:
        """Re-read the stored subscriptions; True when the set changed."""
        try:
            rows = await db.list_all(self.store)
        except NewsmonError as exc:
            metrics.SUBSCRIPTION_RELOAD_ERRORS.inc()
            _log.warning("alerter.subscriptions_reload_failed", error=str(exc), retriable=exc.retriable)
            return False
        config_ids = {s.id for s in self.config}
        stored: dict[str, SubscriptionSettings] = {}
        ignored = 0
        for row in rows:
            if isinstance(row, db.Invalid):
                self._ignore(row.id, f"stored spec does not validate: {row.error}")
                ignored += 1
            elif row.spec.id in config_ids:
                self._ignore(row.spec.id, "the config file defines a subscription with this id")
                ignored += 1
            else:
                stored[row.spec.id] = row.spec
        self._count(len(stored), ignored)
        specs = {i: db.dump_spec(s) for i, s in stored.items()}
        if specs == self._stored:
            return False
        added, removed = sorted(specs.keys() - self._stored.keys()), sorted(self._stored.keys() - specs.keys())
        changed = sorted(i for i in specs.keys() & self._stored.keys() if specs[i] != self._stored[i])
        self._stored = specs
        self.current = [*self.config, *stored.values()]
        self.known.update(stored)
        _log.info("alerter.subscriptions", added=added, removed=removed, changed=changed, routed=len(self.current))
        return True

    async def run(self, stop: asyncio.Event, on_change: Callable[[], None]) -> None:
        """Refresh every `every` seconds until `stop`, calling `on_change` after each change."""
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.every)
            if not stop.is_set() and await self.refresh():
                on_change()
