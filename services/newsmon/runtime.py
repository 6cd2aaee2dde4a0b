"""Runs newsmon's services, together (`newsmon run`) or one at a time (`newsmon poller`, ...).

SIGTERM/SIGINT stop intake; each service finishes the message in hand and commits; after a drain deadline the
rest is cancelled and the counts are logged. Burst mode (`until_idle`) runs the stages in data-flow order until
each has no more work, which makes runs deterministic for tests and cron-style use.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from newsmon import log
from newsmon.settings import Settings

SERVICE_NAMES = ("poller", "classifier", "alerter", "api")
_log = log.get(__name__)


class Service(Protocol):
    """What every long-running worker offers."""

    async def run(self, stop: asyncio.Event, until_idle: bool = False) -> Any: ...


def _factories() -> dict[str, Callable[[Settings, Any, Any], Service]]:
    from newsmon.alerter.service import AlerterService
    from newsmon.api.service import ApiService
    from newsmon.classifier.service import ClassifierService
    from newsmon.poller.service import PollerService

    return {"poller": PollerService, "classifier": ClassifierService, "alerter": AlerterService,
            "api": ApiService}


async def run_services(settings: Settings, names: Sequence[str], *, until_idle: bool = False,
                       stop: asyncio.Event | None = None, drain_seconds: float = 30.0) -> None:
    """Open the store and the bus, run the named services, shut down cleanly."""
    from newsmon.bus import open_bus
    from newsmon.store import Store

    stop = stop or asyncio.Event()
    # The embedded store upgrades itself; a shared one is upgraded on purpose (`newsmon db upgrade`).
    store = await Store.open(settings.store.url, create=settings.store.url.startswith("sqlite"))
    bus = open_bus(settings.bus)
    await bus.start()
    _install_signals(stop)
    _serve_metrics(settings)
    factories = _factories()
    services = {name: factories[name](settings, bus, store) for name in names}
    _log.info("newsmon.start", services=list(services), bus=settings.bus.kind, until_idle=until_idle)
    started = time.monotonic()
    try:
        if until_idle:
            await _burst(services, stop)
        else:
            await _concurrently(services, stop, drain_seconds)
    finally:
        await bus.stop()
        await store.close()
        _log.info("newsmon.stop", seconds=round(time.monotonic() - started, 2))


async def _burst(services: dict[str, Service], stop: asyncio.Event) -> None:
    # Data flows one way, so one pass in flow order drains everything: each stage's idle point includes the work
    # the stage before it produced (the alerter's idle point includes its scheduled retries).
    for name in SERVICE_NAMES:
        if name in services and name != "api" and not stop.is_set():
            await services[name].run(stop, until_idle=True)


async def _concurrently(services: dict[str, Service], stop: asyncio.Event, drain_seconds: float) -> None:
    tasks = {asyncio.create_task(svc.run(stop), name=name): name for name, svc in services.items()}
    stopper = asyncio.create_task(stop.wait(), name="stop")
    done, _ = await asyncio.wait([*tasks, stopper], return_when=asyncio.FIRST_COMPLETED)
    # A service that raised before `stop` failed; so did one that ended by a CancelledError of its own (nobody
    # cancelled it yet), which has no exception() to ask: that call would raise.
    crashed = {t for t in done if t is not stopper and (t.cancelled() or t.exception() is not None)}
    for task in crashed:
        _log.error("service.failed", service=tasks[task],
                   error="cancelled from inside" if task.cancelled() else repr(task.exception()))
    stop.set()
    pending = [t for t in tasks if not t.done()]
    if pending:
        _, still = await asyncio.wait(pending, timeout=drain_seconds)
        for task in still:
            _log.warning("service.cancelled_after_deadline", service=tasks[task], deadline=drain_seconds)
            task.cancel()
        await asyncio.gather(*still, return_exceptions=True)
    stopper.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await stopper
    failed = [tasks[t] for t in tasks
              if t in crashed or (t.done() and not t.cancelled() and t.exception() is not None)]
    if failed:
        from newsmon.errors import NewsmonError

        raise NewsmonError(f"service(s) failed: {', '.join(failed)} (see the log)")


def _serve_metrics(settings: Settings) -> None:
    # Workers without the API still expose their own counters (and a liveness signal) to a scraper.
    if settings.metrics.listen:
        from prometheus_client import start_http_server

        host, _, port = settings.metrics.listen.rpartition(":")
        start_http_server(int(port), addr=host)
        _log.info("metrics.listening", listen=settings.metrics.listen)


def _install_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
