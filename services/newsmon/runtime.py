"""Runs newsmon's services, together (`newsmon run`) or one at a time (`newsmon poller`, ...).

Start-up waits for an unreachable bus or store (startup.py); the metrics port, when configured, answers /healthz
and /readyz from the first moment (health.py, metrics_server.py).

SIGTERM/SIGINT stop intake; each service finishes the message in hand and commits; after a drain deadline the
rest is cancelled and the counts are logged. Burst mode (`until_idle`) runs the stages in data-flow order until
each has no more work, which makes runs deterministic for tests and cron-style use.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import signal
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from newsmon import log
from newsmon.settings import Settings

if TYPE_CHECKING:
    from newsmon.bus import Bus
    from newsmon.health import Health

SERVICE_NAMES = ("poller", "classifier", "alerter", "api")
GC_YOUNG_THRESHOLD = 20_000  # allocations between young-generation collections (CPython's default: 700)
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
    """Reach the store and the bus (waiting for them, see startup.py), run the named services, shut down."""
    from newsmon.health import Health

    stop = stop or asyncio.Event()
    _install_signals(stop)
    health = Health(settings.metrics.stall_after, stop)
    ticker = asyncio.create_task(health.tick(), name="health")
    close_metrics = _serve_metrics(settings, health)
    started = time.monotonic()
    try:
        await _connected(settings, names, health, stop, until_idle, drain_seconds)
    finally:
        ticker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await ticker
        close_metrics()
        _log.info("newsmon.stop", seconds=round(time.monotonic() - started, 2))


async def _connected(settings: Settings, names: Sequence[str], health: Health, stop: asyncio.Event,
                     until_idle: bool, drain_seconds: float) -> None:
    from newsmon.bus import open_bus
    from newsmon.startup import PatientBus, connect
    from newsmon.store import Store

    url = settings.store.url
    # The embedded store upgrades itself; a shared one is upgraded on purpose (`newsmon db upgrade`).
    store = await connect("store", lambda: Store.open(url, create=url.startswith("sqlite")),
                          wait=None if url.startswith("sqlite") else settings.startup_wait, stop=stop,
                          health=health)
    if store is None:
        return
    try:
        bus = open_bus(settings.bus)
        wait = settings.startup_wait if settings.bus.kind == "kafka" else None
        if wait:  # consumers started by the services wait for the broker too
            bus = PatientBus(bus, wait=wait, stop=stop, health=health)
        if not until_idle:  # burst runs stop their consumers on purpose, one service after the other
            bus = health.watch(bus)
        started = await connect("bus", lambda: _start(bus), stop=stop, health=health, wait=wait)
        if started is None:
            return
        try:
            factories = _factories()
            services = {name: factories[name](settings, bus, store) for name in names}
            tune_gc()
            health.ready()
            _log.info("newsmon.start", services=list(services), bus=settings.bus.kind, until_idle=until_idle)
            if until_idle:
                await _burst(services, stop)
            else:
                await _concurrently(services, stop, drain_seconds, health)
        finally:
            await bus.stop()
    finally:
        await store.close()


def tune_gc() -> None:
    """Once start-up is done: what it built (modules, settings, compiled topic packs) lives as long as the process,
    so it leaves the collector's sight (`gc.freeze`), and young collections run less often (tests/perf/
    bench_poller.py: at CPython's defaults a changed 50-item poll spent ~0.8 ms in the collector, about one
    ~1.6 ms pass every other poll; tuned, ~0.1 ms)."""
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, older, oldest)


async def _start(bus: Bus) -> Bus:
    """Start the bus; a failed start is stopped again, so the next attempt begins clean."""
    try:
        await bus.start()
    except BaseException:
        try:
            await bus.stop()
        except Exception as exc:  # the start's own error is the one that matters (and is raised)
            _log.info("bus.stop_after_failed_start", error=str(exc))
        raise
    return bus


async def _burst(services: dict[str, Service], stop: asyncio.Event) -> None:
    # Data flows one way, so one pass in flow order drains everything: each stage's idle point includes the work
    # the stage before it produced (the alerter's idle point includes its scheduled retries).
    for name in SERVICE_NAMES:
        if name in services and name != "api" and not stop.is_set():
            await services[name].run(stop, until_idle=True)


async def _concurrently(services: dict[str, Service], stop: asyncio.Event, drain_seconds: float,
                        health: Health) -> None:
    tasks = {asyncio.create_task(svc.run(stop), name=name): name for name, svc in services.items()}
    stopper = asyncio.create_task(stop.wait(), name="stop")
    done, _ = await asyncio.wait([*tasks, stopper], return_when=asyncio.FIRST_COMPLETED)
    # A service that raised before `stop` failed; so did one that ended by a CancelledError of its own (nobody
    # cancelled it yet), which has no exception() to ask: that call would raise.
    crashed = {t for t in done if t is not stopper and (t.cancelled() or t.exception() is not None)}
    for task in crashed:
        _log.error("service.failed", service=tasks[task],
                   error="cancelled from inside" if task.cancelled() else repr(task.exception()))
    if not stop.is_set():  # /healthz says so while the others drain
        health.died(", ".join(f"service {tasks[t]} {'failed' if t in crashed else 'ended'}"
                              for t in done if t is not stopper))
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


def _serve_metrics(settings: Settings, health: Health) -> Callable[[], None]:
    # Workers without the API still expose their counters, /healthz and /readyz (metrics_server.py).
    if not settings.metrics.listen:
        return lambda: None
    from newsmon.metrics_server import serve

    close = serve(settings.metrics.listen, health)
    _log.info("metrics.listening", listen=settings.metrics.listen)
    return close


def _install_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
