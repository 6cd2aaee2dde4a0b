"""The bus contract: the same tests on the embedded SQLite log and on a real Kafka broker."""

from __future__ import annotations

import asyncio
import sys
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from prometheus_client import REGISTRY

from newsmon.bus.base import Consumer, Message
from newsmon.bus.loop import consume
from newsmon.errors import ParseError, StoreError
from newsmon.events import DEAD_LETTER_TOPIC, DeadLetter
from tests.bus.conftest import Engine

REPO = Path(__file__).resolve().parents[2]


async def drain(consumer: Consumer, n: int, within: float = 60.0) -> list[Message]:
    """Read until `n` messages arrived (or `within` seconds passed); nothing is committed."""
    out: list[Message] = []
    deadline = time.monotonic() + within
    while len(out) < n and time.monotonic() < deadline:
        out += await consumer.getmany(timeout=0.5)
    return out


async def publish_each(bus: object, topic: str, items: Sequence[tuple[bytes | None, bytes]]) -> None:
    for key, value in items:
        await bus.publish(topic, value, key=key)  # type: ignore[attr-defined]


async def test_publish_then_consume_round_trip(engine: Engine) -> None:
    bus, topic = await engine.open(), engine.topic()
    await bus.publish(topic, b'{"n": 1}', key=b"k1", headers=[("trace", b"\x00\x01")])
    await bus.publish(topic, "مرحبا".encode(), key=None)
    consumer = bus.consumer([topic], engine.group())
    await consumer.start()
    got = await drain(consumer, 2)
    await consumer.stop()
    assert sorted(m.value for m in got) == sorted([b'{"n": 1}', "مرحبا".encode()])
    first = next(m for m in got if m.key == b"k1")
    assert (first.topic, first.headers) == (topic, (("trace", b"\x00\x01"),))
    assert first.timestamp_ms > 0
    assert await bus.ping()


async def test_messages_with_one_key_keep_their_order(engine: Engine) -> None:
    bus, topic = await engine.open(), engine.topic()
    items = [(f"key{i % 5}".encode(), f"{i % 5}:{i}".encode()) for i in range(60)]
    await publish_each(bus, topic, items)
    consumer = bus.consumer([topic], engine.group())
    await consumer.start()
    got = await drain(consumer, 60)
    await consumer.stop()
    by_key: dict[bytes, list[Message]] = defaultdict(list)
    for m in got:
        assert m.key is not None
        by_key[m.key].append(m)
    for key, msgs in by_key.items():
        assert len({m.partition for m in msgs}) == 1, key
        assert [m.value for m in msgs] == [v for k, v in items if k == key]
    assert len(got) == 60


async def test_two_consumers_in_a_group_share_the_work(engine: Engine) -> None:
    bus, topic, group = await engine.open(), engine.topic(), engine.group()
    first, second = bus.consumer([topic], group), bus.consumer([topic], group)
    await first.start()
    await second.start()
    seen: dict[str, list[Message]] = {"first": [], "second": []}
    stop = asyncio.Event()

    def handler(name: str):  # type: ignore[no-untyped-def]
        async def handle(m: Message) -> None:
            seen[name].append(m)
            if len(seen["first"]) + len(seen["second"]) >= 80:
                stop.set()
        return handle

    loops = [asyncio.create_task(consume(bus, c, handler(n), group=group, stop=stop))
             for n, c in (("first", first), ("second", second))]
    await publish_each(bus, topic, [(f"story-{i}".encode(), f"v{i}".encode()) for i in range(80)])
    await asyncio.wait_for(stop.wait(), 60)
    await asyncio.gather(*loops)
    await first.stop()
    await second.stop()
    values = [m.value for m in seen["first"] + seen["second"]]
    assert sorted(values) == sorted(f"v{i}".encode() for i in range(80))  # each exactly once
    parts = {n: {m.partition for m in ms} for n, ms in seen.items()}
    assert parts["first"] and parts["second"]
    assert not parts["first"] & parts["second"]


async def test_a_member_joining_a_busy_group_gets_a_share(engine: Engine) -> None:
    bus, topic, group = await engine.open(), engine.topic(), engine.group()
    await publish_each(bus, topic, [(f"story-{i}".encode(), f"v{i}".encode()) for i in range(200)])
    seen: dict[str, list[bytes]] = {"busy": [], "late": []}
    stop, started = asyncio.Event(), asyncio.Event()

    def handler(name: str):  # type: ignore[no-untyped-def]
        async def handle(m: Message) -> None:
            await asyncio.sleep(0.02)  # real work takes time
            seen[name].append(m.value)
            if len(seen["busy"]) >= 10:
                started.set()
            if len(set(seen["busy"]) | set(seen["late"])) >= 200:
                stop.set()
        return handle

    busy, late = bus.consumer([topic], group), bus.consumer([topic], group)
    await busy.start()
    loops = [asyncio.create_task(consume(bus, busy, handler("busy"), group=group, stop=stop, max_records=10))]
    await started.wait()
    await late.start()
    loops.append(asyncio.create_task(consume(bus, late, handler("late"), group=group, stop=stop,
                                             max_records=10)))
    await asyncio.wait_for(stop.wait(), 60)
    await asyncio.gather(*loops)
    await busy.stop()
    await late.stop()
    assert seen["late"]
    assert set(seen["busy"]) | set(seen["late"]) == {f"v{i}".encode() for i in range(200)}


async def test_messages_of_a_consumer_that_stops_before_committing_come_again(engine: Engine) -> None:
    bus, topic, group = await engine.open(), engine.topic(), engine.group()
    await publish_each(bus, topic, [(f"k{i}".encode(), f"v{i}".encode()) for i in range(12)])
    quitter = bus.consumer([topic], group)
    await quitter.start()
    taken = await drain(quitter, 12)
    await quitter.stop()  # no commit
    heir = bus.consumer([topic], group)
    await heir.start()
    again = await drain(heir, 12)
    await heir.stop()
    assert len(taken) == 12
    assert sorted(m.value for m in again) == sorted(m.value for m in taken)


async def test_messages_of_a_killed_consumer_process_go_to_the_group(engine: Engine) -> None:
    bus, topic, group = await engine.open(), engine.topic(), engine.group()
    await publish_each(bus, topic, [(f"k{i}".encode(), f"v{i}".encode()) for i in range(8)])
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.bus.child", engine.name, engine.where, topic, group,
        str(engine.session_timeout), cwd=REPO, stdout=asyncio.subprocess.PIPE)
    try:
        assert child.stdout is not None
        line = (await child.stdout.readline()).decode()
        while line and not line.startswith("got "):  # skip the child's log lines
            line = (await child.stdout.readline()).decode()
    finally:
        child.kill()  # SIGKILL: no leave, no commit; only its lease/session runs out
        await child.communicate()
    assert line.startswith("got ")
    heir = bus.consumer([topic], group)
    await heir.start()
    again = await drain(heir, 8)
    await heir.stop()
    assert sorted(m.value for m in again) == sorted(f"v{i}".encode() for i in range(8))


async def test_a_new_consumer_resumes_after_the_last_commit(engine: Engine) -> None:
    bus, topic, group = await engine.open(), engine.topic(), engine.group()
    await publish_each(bus, topic, [(b"one-key", f"v{i}".encode()) for i in range(10)])
    first = bus.consumer([topic], group)
    await first.start()
    got = await drain(first, 10)
    await first.commit(got[:4])
    await first.stop()
    second = bus.consumer([topic], group)
    await second.start()
    rest = await drain(second, 6)
    assert await second.lag() == 6
    await second.commit(rest)
    assert await second.lag() == 0
    await second.stop()
    assert [m.value for m in rest] == [f"v{i}".encode() for i in range(4, 10)]


async def test_consume_until_idle_handles_everything_and_returns(engine: Engine) -> None:
    bus, topic, group = await engine.open(), engine.topic(), engine.group()
    await publish_each(bus, topic, [(f"k{i}".encode(), f"v{i}".encode()) for i in range(25)])
    values: list[bytes] = []

    async def handle(m: Message) -> None:
        values.append(m.value)

    consumer = bus.consumer([topic], group)
    await consumer.start()
    result = await consume(bus, consumer, handle, group=group, stop=asyncio.Event(), until_idle=True)
    again = await consume(bus, consumer, handle, group=group, stop=asyncio.Event(), until_idle=True)
    await consumer.stop()
    assert (result.handled, result.dead_lettered) == (25, 0)
    assert (again.handled, again.dead_lettered) == (0, 0)
    assert sorted(values) == sorted(f"v{i}".encode() for i in range(25))


async def test_stop_finishes_the_message_in_hand_commits_and_returns(engine: Engine) -> None:
    bus, topic, group = await engine.open(), engine.topic(), engine.group()
    await publish_each(bus, topic, [(b"k", f"v{i}".encode()) for i in range(5)])
    stop, values = asyncio.Event(), []

    async def handle(m: Message) -> None:
        values.append(m.value)
        stop.set()  # asked to stop while this message is being handled

    consumer = bus.consumer([topic], group)
    await consumer.start()
    result = await consume(bus, consumer, handle, group=group, stop=stop)
    await consumer.stop()
    later = bus.consumer([topic], group)
    await later.start()
    rest = await drain(later, 4)
    await later.stop()
    assert result.handled == 1 and values == [b"v0"]
    assert [m.value for m in rest] == [b"v1", b"v2", b"v3", b"v4"]


async def test_a_non_retriable_handler_error_dead_letters_the_message(engine: Engine) -> None:
    bus, topic, group = await engine.open(), engine.topic(), engine.group()
    await publish_each(bus, topic, [(b"k", b"good-1"), (b"k", b"broken"), (b"k", b"bug"), (b"k", b"good-2")])
    handled: list[bytes] = []

    async def handle(m: Message) -> None:
        if m.value == b"broken":
            raise ParseError("not an article")
        if m.value == b"bug":
            raise ValueError("unexpected")  # unknown exceptions are not retried either
        handled.append(m.value)

    errors_before = REGISTRY.get_sample_value(
        "newsmon_bus_handler_errors_total", {"group": group, "outcome": "dead_letter"}) or 0
    consumer = bus.consumer([topic], group)
    await consumer.start()
    result = await consume(bus, consumer, handle, group=group, stop=asyncio.Event(), until_idle=True)
    await consumer.stop()
    assert (result.handled, result.dead_lettered) == (2, 2)
    assert handled == [b"good-1", b"good-2"]
    assert REGISTRY.get_sample_value(
        "newsmon_bus_handler_errors_total", {"group": group, "outcome": "dead_letter"}) == errors_before + 2

    reader = bus.consumer([DEAD_LETTER_TOPIC], engine.group("dlq-reader"))
    await reader.start()
    letters: list[tuple[DeadLetter, Message]] = []
    deadline = time.monotonic() + 60
    while len(letters) < 2 and time.monotonic() < deadline:  # the topic is shared by the whole Kafka session
        letters += [(letter, m) for m in await reader.getmany(timeout=0.5)
                    if (letter := DeadLetter.model_validate_json(m.value)).topic == topic]
    await reader.stop()
    assert [(x.value, x.key, x.group) for x, _ in letters] == [("broken", "k", group), ("bug", "k", group)]
    assert [x.error for x, _ in letters] == ["ParseError: not an article", "ValueError: unexpected"]
    assert dict(letters[0][1].headers)["newsmon-source-offset"] == b"1"

    again = bus.consumer([topic], group)  # the dead-lettered message was committed with the others
    await again.start()
    assert await again.lag() == 0
    await again.stop()


async def test_a_retriable_handler_error_retries_the_message(engine: Engine) -> None:
    bus, topic, group = await engine.open(), engine.topic(), engine.group()
    await publish_each(bus, topic, [(b"k", b"a"), (b"k", b"flaky"), (b"k", b"b")])
    calls: list[bytes] = []

    async def handle(m: Message) -> None:
        calls.append(m.value)
        if m.value == b"flaky" and calls.count(b"flaky") < 3:
            raise StoreError("database is locked")

    consumer = bus.consumer([topic], group)
    await consumer.start()
    result = await consume(bus, consumer, handle, group=group, stop=asyncio.Event(), until_idle=True,
                           retry_first=0.01)
    assert await consumer.lag() == 0
    await consumer.stop()
    assert (result.handled, result.dead_lettered) == (3, 0)
    assert calls == [b"a", b"flaky", b"flaky", b"flaky", b"b"]
