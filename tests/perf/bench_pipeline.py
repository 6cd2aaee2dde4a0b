"""The whole pipeline under load on Kafka and PostgreSQL: N worker processes of each kind (poller, classifier,
alerter), fed by 50 loopback feeds × 104 items (5,200 articles, 200 of them alerting), delivering to a loopback
webhook receiver.

    .venv/bin/python tests/perf/bench_pipeline.py [--workers 1 2] [--modes burst paced] [--rate 100]

burst   every item is released at once: articles/s through the whole pipeline (release → last alert received
        and every consumer group caught up), the largest bus lag seen per group, and end-to-end latency
        (item released → webhook received) of the alerts, which here includes queueing behind the backlog.
paced   items are released at --rate articles/s: latency when the pipeline keeps up (poll interval, group wait).

Also printed: CPU seconds used per kind of worker, by the broker and by PostgreSQL, and how busy the machine's
cores were, which says what limits the figures. Kafka comes from a throwaway broker (deploy/kafka/kafka-local)
and PostgreSQL from a throwaway cluster (tests/support/postgres.py). Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(REPO), str(REPO / "services")]

from tests.e2e.faults import corpus as corpus_mod  # noqa: E402
from tests.e2e.faults.pipeline import Pipeline  # noqa: E402
from tests.support.kafka import KAFKA_LOCAL, free_ports  # noqa: E402
from tests.support.postgres import LocalPostgres, _bindir  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def _cpu_of(pid: int) -> float:
    """CPU seconds (user + system) a live process used so far; 0 when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK


def _children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(stat.parent.name))
        except (OSError, ValueError, IndexError):
            continue
    return out


def _machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies of all cores since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


class Servers:
    """A throwaway Kafka broker and PostgreSQL cluster for the benchmark."""

    def __init__(self, root: Path) -> None:
        port, controller = free_ports(2)
        self.kafka_env = {**{k: v for k, v in os.environ.items() if not k.startswith("KAFKA_")},
                          "KAFKA_PORT": str(port), "KAFKA_CONTROLLER_PORT": str(controller),
                          "KAFKA_DATA_DIR": str(root / "kafka")}
        if os.environ.get("KAFKA_LOCAL_HOME"):
            self.kafka_env["KAFKA_LOCAL_HOME"] = os.environ["KAFKA_LOCAL_HOME"]
        bindir = _bindir()
        if bindir is None or shutil.which("java") is None:
            raise SystemExit("needs java (Kafka) and the PostgreSQL server binaries")
        self.pg = LocalPostgres(bindir, Path(tempfile.mkdtemp(prefix="newsmon-bench-pg-")))
        self.bootstrap = ""

    def start(self) -> None:
        out = subprocess.run([str(KAFKA_LOCAL), "start"], env=self.kafka_env, capture_output=True, text=True,
                             timeout=600, check=True)
        self.bootstrap = out.stdout.strip().splitlines()[-1]
        self.pg.init()
        self.pg.start()

    def stop(self) -> None:
        subprocess.run([str(KAFKA_LOCAL), "stop"], env=self.kafka_env, capture_output=True, timeout=120,
                       check=False)
        try:
            self.pg.stop("immediate")
        finally:
            shutil.rmtree(self.pg.root, ignore_errors=True)

    def kafka_pid(self) -> int:
        return int((Path(self.kafka_env["KAFKA_DATA_DIR"]) / "kafka.pid").read_text())

    def pg_pids(self) -> list[int]:
        main = int((self.pg.data / "postmaster.pid").read_text().split()[0])
        return [main, *_children(main)]


async def run(servers: Servers, tmp: Path, workers: int, mode: str, rate: float, run_no: int) -> None:
    stream = corpus_mod.build(feeds=50, per_feed=104, stories=200, seed=11 + run_no,
                              duration=0.0 if mode == "burst" else 5200 / rate)
    url = servers.pg.createdb(f"bench_{run_no}")
    counts = dict.fromkeys(("poller", "classifier", "alerter"), workers)
    async with Pipeline(tmp / f"run{run_no}", servers.bootstrap, url, stream, counts) as p:
        await asyncio.sleep(4)  # workers join their groups; the feeds are still empty
        cpu0 = {"kafka": _cpu_of(servers.kafka_pid()), "postgres": sum(map(_cpu_of, servers.pg_pids()))}
        busy0 = _machine_busy()
        p.stream.begin()
        started = time.time()
        max_lag: dict[str, int] = {}
        all_on_bus = None
        while time.time() - started < 900:
            state = await p.drain_state()
            for group, lag in state.lag.items():
                max_lag[group] = max(max_lag.get(group, 0), lag or 0)
            if all_on_bus is None and state.unpublished_articles == 0:
                all_on_bus = time.time() - started
            if state.done:
                break
            await asyncio.sleep(0.5)
        elapsed = time.time() - started
        busy1 = _machine_busy()
        cpu = {kind: sum(_cpu_of(w.proc.pid) for w in p.cluster.of_kind(kind) if w.proc is not None)
               for kind in counts}
        cpu["kafka"] = _cpu_of(servers.kafka_pid()) - cpu0["kafka"]
        cpu["postgres"] = sum(map(_cpu_of, servers.pg_pids())) - cpu0["postgres"]
        polls = len(p.feeds.requests)
        ledger = p.ledger()
        first_ok = {}
        for wid, attempts in ledger.attempts.items():
            oks = [r.at for r in attempts if r.status is not None and 200 <= r.status < 300]
            if oks:
                first_ok[wid] = min(oks)
        by_url = ledger.delivered_urls()
        latencies = [first_ok[wid] - p.stream.released_at(stream.expected[u])
                     for u, wid in by_url.items() if u in stream.expected]
    cores = (busy1[0] - busy0[0]) / max(1, busy1[1] - busy0[1]) * os.cpu_count()  # type: ignore[operator]
    n = len(stream.items)
    print(f"\n{workers} worker(s) per service, {mode}"
          + (f" at {rate:.0f} articles/s" if mode == "paced" else "") + f": {'drained' if state.done else state}")
    print(f"  {n} articles in {elapsed:.1f} s → {n / elapsed:,.0f} articles/s end to end; all on the bus after "
          f"{all_on_bus or float('nan'):.1f} s ({n / (all_on_bus or float('nan')):,.0f}/s)")
    print("  max lag: " + ", ".join(f"{g.removeprefix('newsmon-')} {v}" for g, v in max_lag.items())
          + f"; feed requests {polls}")
    if latencies:
        print(f"  latency published → webhook ({len(latencies)} alerts): p50 {_pct(latencies, 50):.2f} s, "
              f"p95 {_pct(latencies, 95):.2f} s, p99 {_pct(latencies, 99):.2f} s, "
              f"max {max(latencies):.2f} s, mean {statistics.fmean(latencies):.2f} s")
    print("  CPU seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in cpu.items())
          + f"; machine busy {cores:.2f} of {os.cpu_count()} cores")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--modes", nargs="+", default=["burst", "paced"], choices=["burst", "paced"])
    parser.add_argument("--rate", type=float, default=100.0, help="paced mode: articles released per second")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="newsmon-bench-"))
    servers = Servers(root)
    servers.start()
    try:
        n = 0
        for mode in args.modes:
            for workers in args.workers:
                n += 1
                await run(servers, root, workers, mode, args.rate, n)
    finally:
        servers.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
