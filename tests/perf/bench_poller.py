"""Poller benchmark against a local feed server (in its own process: the poller's CPU is counted apart).

    .venv/bin/python tests/perf/bench_poller.py [--feeds 2000] [--changed 300] [--cadence 10000] [--profile]
    .venv/bin/python tests/perf/bench_poller.py --http-only 5000   # the HTTP client alone

Prints: conditional polls/s (304 answers), changed 50-item feeds/s (first sight: 50 new articles;
steady: 5 new of 50), CPU seconds per poll, the feed server's CPU per request (it shares the cores: when
it nears a core, the server and not the poller limits the wall rate), RSS with 10,000 feeds configured,
and the CPU share of 10,000 feeds on a 5-minute cadence. Targets (issue #3, 2-core machine): >= 1,000
conditional polls/s, >= 60 changed feeds/s, 10,000 feeds / 5 min at under half a core. The bus is the
embedded SQLite log, in a temp dir. Each line also shows the time spent in the garbage collector per poll;
`--gc default` measures with CPython's GC settings instead of the runtime's (runtime.tune_gc).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import multiprocessing
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from sqlalchemy import bindparam, update
from tests.support.feedserver import FeedServer, Reply, Request

from newsmon import log
from newsmon.bus import open_bus
from newsmon.poller.feedlist import configured_feeds
from newsmon.poller.service import PollerService
from newsmon.runtime import tune_gc
from newsmon.settings import Settings, load_settings
from newsmon.store import Store
from newsmon.store import feeds as feed_store
from newsmon.store.feeds import feeds as feeds_table

ITEM = (
    "<item><guid isPermaLink='false'>{feed}-{n}</guid><link>http://bench.example/{feed}/{n}</link>"
    "<title>Report number {n} from desk {feed}: convoy moves north</title><description>&lt;p&gt;Paragraph "
    "about event {n}, with &lt;b&gt;some markup&lt;/b&gt; and enough words to look like a real summary of "
    "a news story.&lt;/p&gt;</description><pubDate>Sun, 29 Nov 2026 02:{m:02d}:00 GMT</pubDate></item>"
)


def _doc(feed: str, start: int, count: int) -> bytes:
    items = "".join(ITEM.format(feed=feed, n=n, m=n % 60) for n in range(start + count, start, -1))
    return (
        f"<?xml version='1.0' encoding='utf-8'?><rss version='2.0'><channel><title>Desk {feed}</title>"
        f"<link>http://bench.example/{feed}</link>{items}</channel></rss>"
    ).encode()


def _serve(feeds: int, changed: int, port: Any, stop: Any) -> None:
    srv = FeedServer()
    for i in range(feeds):
        srv.route(f"/n/{i}", _doc(f"n{i}", 0, 1), etag=f'"n{i}"')
    counters = [0] * changed

    def rotating(request: Request) -> Reply:
        i = int(request.path.rsplit("/", 1)[1])
        counters[i] += 1
        return Reply(200, _doc(f"c{i}", 5 * counters[i], 50), {"Content-Type": "application/rss+xml"})

    for i in range(changed):
        srv.route(f"/c/{i}", handler=rotating)
    srv.start()
    srv.requests = _Nothing()  # do not keep every request in memory
    port.value = srv.port
    stop.wait()
    srv.stop()


class _Nothing(list[Any]):
    def append(self, _item: Any) -> None:
        return None


CONCURRENCY = [64]  # set from --concurrency


def _settings(tmp: Path, urls: list[str], interval: float = 300) -> Settings:
    conc = CONCURRENCY[0]
    return load_settings(
        None,
        data_dir=tmp,
        feeds=[{"url": u, "interval": interval} for u in urls],
        http={"allow_private_networks": True},
        poller={"concurrency": conc, "per_host_concurrency": conc, "per_host_interval": 0, "jitter": 0.1},
    )


SERVER_PID = [0]  # the feed server's process, whose CPU is reported beside ours


def _server_cpu() -> float:
    """CPU seconds the feed server process has used (0 where /proc is missing)."""
    try:
        fields = Path(f"/proc/{SERVER_PID[0]}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class _GcClock:
    """Collections and the wall time spent in them (gc.callbacks), since the last `take()`."""

    def __init__(self) -> None:
        self.count, self.seconds, self._began = [0, 0, 0], 0.0, 0.0
        gc.callbacks.append(self._tick)

    def _tick(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._began = time.perf_counter()
        else:
            self.count[info["generation"]] += 1
            self.seconds += time.perf_counter() - self._began

    def take(self) -> tuple[list[int], float]:
        taken = (self.count, self.seconds)
        self.count, self.seconds = [0, 0, 0], 0.0
        return taken


GC_CLOCK = _GcClock()


async def _burst(settings: Settings, store: Store, bus: Any) -> tuple[float, float, dict[str, int]]:
    svc = PollerService(settings, bus, store)
    GC_CLOCK.take()
    wall, cpu, server = time.perf_counter(), time.process_time(), _server_cpu()
    await svc.run(asyncio.Event(), until_idle=True)
    svc.outcomes["_server_cpu_ms"] = round((_server_cpu() - server) * 1000)
    counts, seconds = GC_CLOCK.take()
    svc.outcomes["_gc_us"] = round(seconds * 1e6)
    svc.outcomes["_gc_runs"] = sum(counts)
    return time.perf_counter() - wall, time.process_time() - cpu, svc.outcomes


async def _startup(settings: Settings, store: Store) -> tuple[float, float]:
    """Wall and CPU seconds of the feed-table sync every `run` starts with (part of each burst's figure)."""
    wall, cpu = time.perf_counter(), time.process_time()
    await feed_store.sync_feeds(store, configured_feeds(settings), time.time())
    return time.perf_counter() - wall, time.process_time() - cpu


async def _all_due(store: Store) -> None:
    async with store.engine.begin() as conn:
        await conn.execute(update(feeds_table).values(next_poll=0))


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def _phase(
    name: str, tmp: Path, urls: list[str], rounds: int = 1
) -> list[tuple[float, float, dict[str, int]]]:
    settings = _settings(tmp / name, urls)
    store = await Store.open(settings.store.url)
    bus = open_bus(settings.bus)
    await bus.start()
    results = []
    try:
        for _ in range(rounds + 1):
            results.append(await _burst(settings, store, bus))
            await _all_due(store)
        wall, cpu = await _startup(settings, store)
        print(f"{name}: each burst starts with a feed sync of {wall:.2f}s wall, {cpu:.2f}s CPU (included below)")
    finally:
        await bus.stop()
        await store.close()
    return results


def _line(label: str, polls: int, wall: float, cpu: float, outcomes: dict[str, int]) -> None:
    server = outcomes.pop("_server_cpu_ms", 0) / polls  # the feed server shares the machine's cores
    gc_ms, gc_runs = outcomes.pop("_gc_us", 0) / 1000 / polls, outcomes.pop("_gc_runs", 0) / polls
    print(f"{label:<44} {polls / wall:8.0f} polls/s   {cpu / polls * 1000:6.2f} ms CPU/poll   "
          f"(GC {gc_ms:4.2f} ms, {gc_runs:4.1f} runs; server {server:4.2f} ms/req, "
          f"{server * polls / 1000 / wall:4.2f} core)   {outcomes}")


async def _cadence(tmp: Path, base: str, feeds: int, seconds: float) -> None:
    urls = [f"{base}/n/{i % 2000}?k={i}" for i in range(feeds)]
    settings = _settings(tmp / "cadence", urls, interval=300)
    store = await Store.open(settings.store.url)
    bus = open_bus(settings.bus)
    await bus.start()
    try:
        before = _rss_mb()
        await feed_store.sync_feeds(store, configured_feeds(settings), time.time())
        now = time.time()
        rng = random.Random(1)
        # Warm state, as after a restart of a long-running poller: validators known, schedule spread out.
        async with store.engine.begin() as conn:
            await conn.execute(
                update(feeds_table)
                .where(feeds_table.c.config_url == bindparam("_u"))
                .values(etag=bindparam("_e"), last_success=now - 300, next_poll=bindparam("_n")),
                [
                    {"_u": u, "_e": f'"n{i % 2000}"', "_n": now + rng.uniform(0, 300)}
                    for i, u in enumerate(urls)
                ],
            )
        svc = PollerService(settings, bus, store)
        stop = asyncio.Event()
        task = asyncio.create_task(svc.run(stop))
        await asyncio.sleep(2)
        cpu0, wall0 = time.process_time(), time.perf_counter()
        await asyncio.sleep(seconds)
        cpu_used, elapsed = time.process_time() - cpu0, time.perf_counter() - wall0
        rss = _rss_mb()
        stop.set()
        await task
        print(
            f"{feeds} feeds / 5 min steady state: {cpu_used / elapsed:.3f} cores over {elapsed:.0f}s "
            f"({svc.outcomes}); RSS {rss:.0f} MB (was {before:.0f} MB before the feeds were loaded)"
        )
    finally:
        await bus.stop()
        await store.close()


async def _http_only(base: str, n: int) -> None:
    """The fetcher and guarded client alone (no store, no bus): what one HTTP request costs the poller."""
    from newsmon import net
    from newsmon.poller.fetcher import fetch

    http = load_settings(None, http={"allow_private_networks": True}).http
    slots = asyncio.Semaphore(CONCURRENCY[0])
    async with net.create_client(http, max_connections=CONCURRENCY[0]) as client:

        async def one(i: int, etag: str | None) -> str:
            async with slots:
                return (await fetch(client, f"{base}/n/{i % 2000}", http, etag=etag)).outcome

        for label, etag in (("200 (1-item feed)", None), ("304", "match")):
            await asyncio.gather(*(one(i, etag and f'"n{i % 2000}"') for i in range(200)))  # warm connections
            wall, cpu = time.perf_counter(), time.process_time()
            outcomes = await asyncio.gather(*(one(i, etag and f'"n{i % 2000}"') for i in range(n)))
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            print(f"HTTP only, {label:<18} {n / wall:8.0f} requests/s {cpu / n * 1000:6.2f} ms CPU/request "
                  f"{set(outcomes)}")


async def main(args: argparse.Namespace) -> None:
    log.setup("warning", "console")
    if args.gc == "tuned":  # as `newsmon run` does once its services are built
        tune_gc()
    ctx = multiprocessing.get_context("spawn")
    port, stop = ctx.Value("i", 0), ctx.Event()
    server = ctx.Process(target=_serve, args=(args.feeds, args.changed, port, stop), daemon=True)
    server.start()
    SERVER_PID[0] = server.pid or 0
    while not port.value:  # noqa: ASYNC110 (a value set by another process)
        await asyncio.sleep(0.05)
    base = f"http://127.0.0.1:{port.value}"
    try:
        with tempfile.TemporaryDirectory() as d:
            tmp = Path(d)
            if args.http_only:
                await _http_only(base, args.http_only)
                return
            profiler = _profiler(args.profile == "notmod")
            n = await _phase("notmod", tmp, [f"{base}/n/{i}" for i in range(args.feeds)], rounds=2)
            _report(profiler)
            _line(f"first poll, {args.feeds} 1-item feeds", args.feeds, *n[0])
            for wall, cpu, outcomes in n[1:]:
                _line("conditional poll (304)", args.feeds, wall, cpu, outcomes)
            profiler = _profiler(args.profile == "changed")
            c = await _phase("changed", tmp, [f"{base}/c/{i}" for i in range(args.changed)], rounds=2)
            _line("changed 50-item feed, first sight (50 new)", args.changed, *c[0])
            for wall, cpu, outcomes in c[1:]:
                _line("changed 50-item feed, steady (5 new of 50)", args.changed, wall, cpu, outcomes)
            _report(profiler)
            if args.cadence:
                await _cadence(tmp, base, args.cadence, args.seconds)
    finally:
        stop.set()
        server.join(10)


def _report(profiler: Any) -> None:
    if profiler is not None:
        profiler.stop()
        print(profiler.output_text(unicode=True, color=False, show_all=False)[:8000])


def _profiler(enabled: bool) -> Any:
    if not enabled:
        return None
    from pyinstrument import Profiler

    profiler = Profiler(async_mode="disabled")  # CPU where it is spent (awaits show as the event loop's select)
    profiler.start()
    return profiler


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feeds", type=int, default=2000, help="feeds answering 304")
    parser.add_argument("--changed", type=int, default=300, help="feeds that change on every poll")
    parser.add_argument(
        "--cadence", type=int, default=10000, help="feeds for the RSS / steady-state run (0: skip)"
    )
    parser.add_argument("--seconds", type=float, default=30, help="steady-state measurement length")
    parser.add_argument(
        "--concurrency", type=int, default=64, help="poller.concurrency (one host: per-host too)"
    )
    parser.add_argument("--gc", choices=["tuned", "default"], default="tuned",
                        help="the runtime's GC tuning (runtime.tune_gc), or CPython's defaults")
    parser.add_argument("--http-only", type=int, default=0, help="only time N fetches (200 and 304)")
    parser.add_argument("--profile", choices=["notmod", "changed"], help="pyinstrument profile of one phase")
    arguments = parser.parse_args()
    CONCURRENCY[0] = arguments.concurrency
    asyncio.run(main(arguments))
