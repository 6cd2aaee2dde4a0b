"""Delivery rows name their holder: only the holder records or extends; a stale holder's late outcome is refused,
except a success; two alerter processes on one store send every alert exactly once. On SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from newsmon.events import Alert
from newsmon.store import Store
from newsmon.store import deliveries as db
from newsmon.store import delivery_leases as leases
from newsmon.store.delivery_leases import Outcome
from tests.alerter.conftest import TOPIC
from tests.support.receiver import Receiver

T0 = 1_800_000_000.0  # the claims below say what time it is: no waiting for a lease to run out


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'newsmon.db'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
async def any_store(store_url: str) -> AsyncIterator[Store]:
    store = await Store.open(store_url)
    yield store
    await store.close()


def row(i: int, endpoint: str, sub: str = "ops", due: float = T0) -> dict[str, object]:
    alert = Alert(id=f"n{i}", alert_id=f"a{i}", kind="new", topic=TOPIC, story_id=f"s{i}", title=f"alert {i}",
                  score=0.7, first_seen=datetime.now(UTC))
    return {"id": f"n{i}:{sub}:webhook", "notification_id": f"n{i}", "alert_id": f"a{i}", "subscription_id": sub,
            "channel": "webhook", "endpoint": endpoint, "status": "pending", "digest": False, "attempts": 0,
            "next_attempt_at": due, "created_at": due, "updated_at": due, "payload": alert.model_dump_json()}


async def queue(store: Store, rows: list[dict[str, object]]) -> None:
    async with store.engine.begin() as conn:
        await db.add(store, conn, rows)


def outcome(delivery_id: str, kind: str, at: float) -> Outcome:
    status = {"delivered": "delivered", "retry": "pending", "dead": "dead"}[kind]
    return Outcome(delivery_id, "webhook", at, kind, 0.01, status, at + 60 if kind == "retry" else at, 200)


async def test_a_stale_holders_late_failure_does_not_undo_the_new_holders_success(any_store: Store) -> None:
    await queue(any_store, [row(1, "http://x/")])
    [a] = await leases.claim(any_store, "A", T0, 10.0, 10)
    assert await leases.claim(any_store, "B", T0 + 5, 10.0, 10) == []  # A's lease holds
    [b] = await leases.claim(any_store, "B", T0 + 11, 10.0, 10)  # A's lease ran out (A stalled)
    assert a.id == b.id
    assert await leases.record(any_store, "B", [outcome(b.id, "delivered", T0 + 12)]) == set()
    assert await leases.record(any_store, "A", [outcome(a.id, "retry", T0 + 13)]) == {a.id}  # refused
    [stored] = await db.list_deliveries(any_store)
    assert (stored.status, stored.attempts) == ("delivered", 1)
    assert await leases.claim(any_store, "C", T0 + 3600, 10.0, 10) == []  # nothing is sent again
    assert [x["outcome"] for x in await db.attempt_log(any_store, a.id)] == ["delivered", "retry"]


async def test_a_stale_holders_late_success_stands_and_the_new_holders_outcome_is_refused(
    any_store: Store,
) -> None:
    await queue(any_store, [row(1, "http://x/")])
    [a] = await leases.claim(any_store, "A", T0, 10.0, 10)
    [b] = await leases.claim(any_store, "B", T0 + 11, 10.0, 10)
    assert await leases.record(any_store, "A", [outcome(a.id, "delivered", T0 + 12)]) == set()
    assert await leases.record(any_store, "B", [outcome(b.id, "retry", T0 + 13)]) == {b.id}
    [stored] = await db.list_deliveries(any_store)
    assert (stored.status, stored.attempts) == ("delivered", 1)
    assert await leases.claim(any_store, "C", T0 + 3600, 10.0, 10) == []


async def test_a_late_success_after_the_new_holders_retry_counts_both_attempts(any_store: Store) -> None:
    await queue(any_store, [row(1, "http://x/")])
    [a] = await leases.claim(any_store, "A", T0, 10.0, 10)
    [b] = await leases.claim(any_store, "B", T0 + 11, 10.0, 10)
    assert await leases.record(any_store, "B", [outcome(b.id, "retry", T0 + 12)]) == set()
    assert await leases.record(any_store, "A", [outcome(a.id, "delivered", T0 + 13)]) == set()  # still pending
    [stored] = await db.list_deliveries(any_store)
    assert (stored.status, stored.attempts) == ("delivered", 2)  # B's retry and A's success, not A's count of 1


async def test_only_the_holder_extends_and_an_extended_lease_keeps_others_out(any_store: Store) -> None:
    await queue(any_store, [row(1, "http://x/"), row(2, "http://x/")])
    held = await leases.claim(any_store, "A", T0, 10.0, 10)
    ids = sorted(r.id for r in held)
    assert await leases.extend(any_store, "B", ids, T0 + 100) == set()
    assert await leases.extend(any_store, "A", ids[:1], T0 + 100) == {ids[0]}
    taken = await leases.claim(any_store, "B", T0 + 50, 10.0, 10)
    assert [r.id for r in taken] == [ids[1]]  # the one A did not extend


async def test_two_alerter_processes_on_one_store_send_each_alert_once(
    any_store: Store, store_url: str, tmp_path: Path, receiver: Receiver
) -> None:
    n = 200
    now = time.time()
    await queue(any_store, [row(i, receiver.url("/a" if i % 2 else "/b"), "ops" if i % 2 else "desk", now)
                            for i in range(n)])
    children = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tests.alerter.delivery_child", store_url, str(tmp_path),
            receiver.url("/a"), receiver.url("/b"), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
        )
        for _ in range(2)
    ]
    try:
        owners = set()
        for child in children:
            assert child.stdout is not None
            line = (await asyncio.wait_for(child.stdout.readline(), 60)).decode()
            owners.add(line.split()[-1])
        assert len(owners) == 2
        await receiver.wait_for(n, within=60)
        async with asyncio.timeout(30):
            while (await db.counts(any_store)).get("delivered", 0) < n:  # noqa: ASYNC110 (other processes' work)
                await asyncio.sleep(0.05)
    finally:
        for child in children:
            if child.returncode is None:
                child.send_signal(signal.SIGTERM)
        codes = [await asyncio.wait_for(child.wait(), 30) for child in children]
    assert codes == [0, 0]
    sent = Counter(r.headers["webhook-id"] for r in receiver.requests)
    assert len(sent) == n and set(sent.values()) == {1}
    async with any_store.engine.connect() as conn:
        held = await conn.scalar(select(func.count()).where(db.deliveries.c.lease_owner.is_not(None)))
    assert held == 0  # every outcome recorded released its row
