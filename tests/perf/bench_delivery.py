"""Delivery benchmark: deliveries/s from one process to a local receiver, and what a dead endpoint costs.

    .venv/bin/python tests/perf/bench_delivery.py [--n 5000] [--concurrency 32] [--postgres]

The receiver runs in a child process (its own event loop), so the figure is the alerter's alone; CPU time is this
process's (the worker and the store driver's thread). The store is SQLite, or with --postgres a throwaway local
PostgreSQL cluster (tests/support/postgres.py; a fresh database per run).
Rows are queued in the store the way the alert consumer queues them, then the delivery worker drains them:
each delivery is a claimed row, a signed POST, and a recorded attempt (status, latency).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing as mp
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.support.receiver import Receiver, Reply

from newsmon.alerter.delivery import DeliveryWorker
from newsmon.events import Alert
from newsmon.settings import Settings
from newsmon.store import Store
from newsmon.store import deliveries as db

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def _serve(port_q: Any, stop_ev: Any) -> None:
    async def main() -> None:
        async with Receiver() as rx:
            rx.script("/dead", [], then=Reply(hang=True))
            port_q.put(rx.port)
            await asyncio.to_thread(stop_ev.wait)

    asyncio.run(main())


def _alert(i: int) -> str:
    return Alert(
        id=f"alr_bench_{i}_r1",
        alert_id=f"alr_bench_{i}",
        kind="new",
        topic="syria-military-shifts",
        story_id=f"s{i}",
        title="تقدم عسكري قرب حلب",
        score=0.7,
        first_seen=datetime.now(UTC),
    ).model_dump_json()


async def _queue(store: Store, n: int, endpoints: list[tuple[str, str]]) -> None:
    now = time.time()
    rows = []
    for i in range(n):
        sub, url = endpoints[i % len(endpoints)]
        rows.append(
            {
                "id": f"d{i}:{sub}",
                "notification_id": f"alr_bench_{i}_r1",
                "alert_id": f"alr_bench_{i}",
                "subscription_id": sub,
                "channel": "webhook",
                "endpoint": url,
                "status": "pending",
                "digest": False,
                "attempts": 0,
                "next_attempt_at": now,
                "created_at": now,
                "updated_at": now,
                "fetched_at": now,
                "payload": _alert(i),
            }
        )
    async with store.engine.begin() as conn:
        for k in range(0, len(rows), 500):
            await db.add(store, conn, rows[k : k + 500])


async def _run(
    n: int, concurrency: int, port: int, dead_share: int, limit: float, store_url: str | None = None
) -> dict[str, float]:
    live = [(f"live{i}", f"http://127.0.0.1:{port}/live{i}") for i in range(4)]
    endpoints = list(live)
    if dead_share:
        endpoints += [("dead", f"http://127.0.0.1:{port}/dead")] * dead_share
    subs = [
        {"id": sid, "topics": ["syria-military-shifts"], "webhook": {"url": url, "secret": SECRET}}
        for sid, url in dict(endpoints).items()
    ]
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            data_dir=Path(tmp),
            http={"allow_private_networks": True},
            subscriptions=subs,
            delivery={"concurrency": concurrency, "timeout": limit, "retry_delays": [3600]},
        )
        store = await Store.open(store_url or f"sqlite:///{tmp}/bench.db")
        await _queue(store, n, endpoints)
        live_n = sum(1 for i in range(n) if endpoints[i % len(endpoints)][0] != "dead")
        worker = DeliveryWorker(settings, store)
        stop = asyncio.Event()
        t0, c0 = time.perf_counter(), time.process_time()
        task = asyncio.create_task(worker.run(stop))
        while True:
            await asyncio.sleep(0.05)
            done = (await db.counts(store)).get("delivered", 0)
            if done >= live_n:
                break
        live_seconds = time.perf_counter() - t0
        cpu = time.process_time() - c0  # this process only: the receiver is a child process
        stop.set()
        await task
        await store.close()
    return {"live": live_n, "seconds": live_seconds, "rate": live_n / live_seconds, "cpu_ms": 1000 * cpu / live_n}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--timeout", type=float, default=2.0)
    ap.add_argument("--postgres", action="store_true", help="a local PostgreSQL cluster instead of SQLite")
    args = ap.parse_args()
    with contextlib.ExitStack() as stack:
        urls = _postgres(stack) if args.postgres else iter([None, None])
        _bench(args, urls)


def _postgres(stack: contextlib.ExitStack) -> Iterator[str]:
    from tests.support.postgres import LocalPostgres, _bindir

    bindir = _bindir()
    if bindir is None:
        sys.exit("PostgreSQL server binaries not found (deploy/dev/setup installs them)")
    root = Path(tempfile.mkdtemp(prefix="newsmon-pg-bench-"))
    stack.callback(shutil.rmtree, root, True)
    server = LocalPostgres(bindir, root)
    server.init()
    server.start()
    stack.callback(server.stop, "immediate")
    return (server.createdb(f"bench{i}") for i in range(2))


def _bench(args: argparse.Namespace, urls: Iterator[str | None]) -> None:
    ctx = mp.get_context("spawn")
    port_q, stop_ev = ctx.Queue(), ctx.Event()
    proc = ctx.Process(target=_serve, args=(port_q, stop_ev), daemon=True)
    proc.start()
    port = port_q.get(timeout=20)
    try:
        base = asyncio.run(_run(args.n, args.concurrency, port, 0, args.timeout, next(urls)))
        print(
            f"healthy: {base['live']} deliveries to 4 live endpoints in {base['seconds']:.2f} s "
            f"= {base['rate']:.0f} deliveries/s, {base['cpu_ms']:.2f} CPU ms each (concurrency {args.concurrency})"
        )
        dead = asyncio.run(_run(args.n, args.concurrency, port, 1, args.timeout, next(urls)))
        cost = 100 * (1 - dead["rate"] / base["rate"])
        print(
            f"with a hanging endpoint taking 1/5 of the traffic (timeout {args.timeout:g} s): "
            f"{dead['live']} live deliveries in {dead['seconds']:.2f} s = {dead['rate']:.0f}/s, "
            f"{dead['cpu_ms']:.2f} CPU ms each "
            f"({cost:.0f}% slower for the live endpoints)"
        )
    finally:
        stop_ev.set()
        proc.join(5)


if __name__ == "__main__":
    main()
