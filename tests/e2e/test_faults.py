"""No alert lost, none doubled, under faults, on a real Kafka broker and a real PostgreSQL server.

Worker processes (`newsmon poller`, 2 × `newsmon classifier`, 2 × `newsmon alerter`) share one config. A stream
of 5,200 Arabic and English items over 50 loopback feeds holds 60 distinct Syria military-shift stories that must
each make exactly one NEW alert; the rest must make none. While the stream flows, at seeded random moments: kill -9
of a poller, a classifier and an alerter (and some more kills of any kind), each started again a second later;
a Kafka broker restart; a PostgreSQL restart (left out when the server comes from POSTGRES_TEST_URL); the webhook
receiver down (port closed), then answering 503. A worker that exits on its own is started again, as systemd or
Kubernetes would, and its reason is printed; none may: a store outage or a broker restart must be ridden out, and
a worker started while the broker or the store is down waits for it (startup_wait).

Then, once every article is on the bus, every expected alert arrived and the bus lag is zero:
  - the receiver got exactly the expected NEW alerts (by URL), nothing else;
  - each webhook-id succeeded once, unless an alerter died (kill -9 or exit) between its success and a second
    success: the only way to send it twice (the attempt's outcome died with the process; the store then says
    delivered once, and the receiver de-duplicates by webhook-id);
  - the store has no delivery left pending or dead, no unpublished notification, no alert waiting.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import random
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from newsmon.errors import StoreError
from newsmon.events import DEAD_LETTER_TOPIC
from newsmon.store import Store
from newsmon.store.stories import story_of
from tests.e2e.faults import corpus as corpus_mod
from tests.e2e.faults.cluster import Cluster, run_newsmon
from tests.e2e.faults.pipeline import Pipeline
from tests.support.kafka import KafkaBroker
from tests.support.postgres import LocalPostgres

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(420)]

SEED = 20261129
WORKERS = {"poller": 1, "classifier": 2, "alerter": 2}
DURATION = 60.0  # seconds over which the stream releases its items
RESTART_AFTER = 1.0  # seconds a killed worker stays down


async def _kill_and_restart(cluster: Cluster, kind: str, rng: random.Random) -> str:
    up = cluster.running(kind)
    if not up:
        return f"kill -9 {kind}: none running (all down already)"
    worker = rng.choice(up)
    await asyncio.to_thread(cluster.kill9, worker)
    await asyncio.sleep(RESTART_AFTER)
    await asyncio.to_thread(cluster.respawn, worker)
    return f"kill -9 {worker.name}"


def _plan(rng: random.Random, p: Pipeline, kafka: KafkaBroker, pg: LocalPostgres | None
          ) -> list[tuple[float, str, Callable[[], Awaitable[str]]]]:
    """(second of the stream, label, action): the named faults at jittered times, then random extra kills."""

    def kill(kind: str) -> Callable[[], Awaitable[str]]:
        return lambda: _kill_and_restart(p.cluster, kind, rng)

    async def kafka_restart() -> str:
        started = time.monotonic()
        await asyncio.to_thread(kafka.restart)
        return f"kafka broker restarted ({time.monotonic() - started:.1f}s)"

    async def pg_restart() -> str:
        assert pg is not None
        started = time.monotonic()
        await asyncio.to_thread(pg.stop, "immediate")
        await asyncio.sleep(2)
        await asyncio.to_thread(pg.start)
        return f"postgresql stopped (immediate) and started ({time.monotonic() - started:.1f}s)"

    async def receiver_down() -> str:
        await p.receiver.down()
        await asyncio.sleep(6)
        await p.receiver.up()
        p.receiver.failing(True)
        started = time.monotonic()  # answer 503 until at least 3 attempts got one (at most 30 s)
        await p.receiver.wait_status(503, 3, within=30)
        p.receiver.failing(False)
        return f"receiver down 6s, then 503 for {time.monotonic() - started:.1f}s"

    plan: list[tuple[float, str, Callable[[], Awaitable[str]]]] = [
        (rng.uniform(4, 9), "kill poller", kill("poller")),
        (rng.uniform(10, 15), "kill classifier", kill("classifier")),
        (rng.uniform(16, 21), "kill alerter", kill("alerter")),
        (rng.uniform(23, 27), "kafka restart", kafka_restart),
        (rng.uniform(46, 50), "receiver down", receiver_down),
    ]
    if pg is not None:
        plan.append((rng.uniform(35, 39), "postgres restart", pg_restart))
    for _ in range(3):
        kind = rng.choice(["poller", "classifier", "alerter"])
        plan.append((rng.uniform(5, DURATION), f"kill {kind}", kill(kind)))
    return sorted(plan, key=lambda f: f[0])


async def _inject(p: Pipeline, plan: list[tuple[float, str, Callable[[], Awaitable[str]]]]) -> list[str]:
    """Run the plan against the stream's clock; faults may overlap (a kill during a broker restart)."""
    assert p.stream.started is not None
    done: list[str] = []

    async def one(at: float, action: Callable[[], Awaitable[str]]) -> None:
        await asyncio.sleep(max(0.0, p.stream.started + at - time.time()))  # type: ignore[operator]
        done.append(f"t={time.time() - p.stream.started:5.1f}s {await action()}")  # type: ignore[operator]

    async def supervise() -> None:
        while True:
            p.cluster.supervise()
            await asyncio.sleep(0.5)

    watcher = asyncio.create_task(supervise())
    try:
        await asyncio.gather(*(one(at, action) for at, _, action in plan))
    finally:
        watcher.cancel()
    return done


@pytest.mark.slow
@pytest.mark.kafka
async def test_no_alert_lost_none_doubled_under_faults(
        tmp_path: Path, kafka_broker: KafkaBroker, postgres_url: str, request: pytest.FixtureRequest) -> None:
    if not kafka_broker.restartable:
        pytest.skip("the broker comes from KAFKA_BOOTSTRAP_SERVERS: this test must restart it")
    # a server of our own can be restarted; one from POSTGRES_TEST_URL cannot (that fault is then left out)
    pg: LocalPostgres | None = None if os.environ.get("POSTGRES_TEST_URL") else request.getfixturevalue(
        "postgres_server")
    rng = random.Random(SEED)
    stream = corpus_mod.build(feeds=50, per_feed=104, stories=60, duration=DURATION, seed=SEED)
    await asyncio.to_thread(_check_corpus, stream)
    started = time.monotonic()
    async with Pipeline(tmp_path, kafka_broker.bootstrap, postgres_url, stream, WORKERS) as p:
        await asyncio.sleep(3)  # the workers join their groups; the feeds are still empty
        p.stream.begin()
        done = await _inject(p, _plan(rng, p, kafka_broker, pg))
        state = await p.wait_drained(within=150)
        ledger = p.ledger()
        articles = p.articles.ids
        dead = len(await p.kafka.read_all(DEAD_LETTER_TOPIC))
        logs = p.cluster.log_tail
        kills, crashes, reasons = list(p.cluster.kills), list(p.cluster.crashes), list(p.cluster.reasons)
    elapsed = time.monotonic() - started

    expected = stream.expected
    got = ledger.delivered_urls("new")
    all_ids = set(ledger.attempts)
    successes = {wid: ledger.successes(wid) for wid in all_ids}
    failed_attempts = sum(1 for rs in ledger.attempts.values() for r in rs if not 200 <= (r.status or 0) < 300)
    alerter_down = sorted([t for t, name in kills if name.startswith("alerter")]
                          + [t for t, name, _ in crashes if name.startswith("alerter")])
    explained: list[str] = []
    unexplained: list[str] = []
    for wid, oks in successes.items():
        for first, again in itertools.pairwise(oks):
            (explained if any(first.at <= t <= again.at for t in alerter_down) else unexplained).append(wid)

    print(f"\nfaults ({len(done)}):\n  " + "\n  ".join(done))
    print(f"articles: {len(stream.items)} in the stream, {len(articles)} distinct on the bus, "
          f"{sum(articles.values())} messages ({sum(articles.values()) - len(articles)} re-published)")
    print(f"alerts: {len(expected)} expected, {len(got)} NEW received, {len(all_ids)} webhook-ids, "
          f"{sum(len(v) for v in ledger.attempts.values())} attempts answered ({failed_attempts} failed by the "
          f"receiver), {len(explained)} sent again after an alerter died (kill -9 or crash), "
          f"{len(unexplained)} doubled")
    print(f"store: {state}; attempts failed {state.store.failed_attempts if state.store else '?'}; "
          f"dead letters on the bus {dead}")
    print(f"kills: {len(kills)}; unasked exits, restarted as a supervisor would: {len(crashes)}"
          + "".join(f"\n  {r}" for r in reasons) + f"\nwall time {elapsed:.0f}s")

    assert not reasons, f"workers exited on their own: {reasons}"
    assert state.done, f"not drained: {state}\n{logs()}"
    assert set(got) == set(expected), (sorted(set(expected) - set(got))[:10], sorted(set(got) - set(expected))[:10])
    assert len(all_ids) == len(expected), "a webhook-id other than the expected NEW alerts was sent"
    assert not unexplained, f"delivered twice with no kill in between: {unexplained}"
    assert state.store is not None and all(n == 1 for n in state.store.delivered_attempts.values())
    assert state.store.deliveries["delivered"] == len(expected)
    assert len(articles) == len(stream.items)


def _check_corpus(stream: corpus_mod.Corpus) -> None:
    """The stream still classifies as designed (`newsmon classify`): else a topic-pack change, not a fault, fails."""
    lines = "".join(json.dumps({"id": it.guid, "title": it.title, "text": it.text}) + "\n" for it in stream.items)
    out = run_newsmon("classify", "--input", "-", stdin=lines)
    hits = {r["id"] for r in map(json.loads, out.splitlines())
            if any(m["topic"] == "syria-military-shifts" for m in r["matches"])}
    want = {it.guid for it in stream.items if it.alerts}
    assert hits == want, f"the corpus no longer classifies as designed: missed {sorted(want - hits)[:5]}, " \
                         f"extra {sorted(hits - want)[:5]} (tests/e2e/faults/corpus.py)"


async def test_a_store_query_while_postgresql_is_down_is_a_retriable_store_error(
        postgres_url: str, request: pytest.FixtureRequest) -> None:
    """The outage reaches the services as StoreError (retried), not as a bare OSError (dead-lettered as a bug)."""
    if os.environ.get("POSTGRES_TEST_URL"):
        pytest.skip("the server comes from POSTGRES_TEST_URL: this test must stop it")
    pg: LocalPostgres = request.getfixturevalue("postgres_server")
    await asyncio.to_thread(run_newsmon, "db", "upgrade", "--config", str(_store_config(request, postgres_url)))
    store = await Store.open(postgres_url, create=False)
    try:
        assert await story_of(store, "a_1") is None
        await asyncio.to_thread(pg.stop, "immediate")
        try:
            for _ in range(2):  # the pooled connection is gone, then a new one is refused
                with pytest.raises(StoreError) as caught:
                    await story_of(store, "a_1")
                assert caught.value.retriable
        finally:
            await asyncio.to_thread(pg.start)
        assert await story_of(store, "a_1") is None
    finally:
        await store.close()


def _store_config(request: pytest.FixtureRequest, url: str) -> Path:
    path: Path = request.getfixturevalue("tmp_path") / "newsmon.toml"
    path.write_text(f'[store]\nurl = "{url}"\n', encoding="utf-8")
    return path
