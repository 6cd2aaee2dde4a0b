"""The bus contract for `publish_many`, on both engines (the `engine` fixture: SQLite log, real Kafka broker).

A batch either returns with every message on the topic, in order per key, or raises BusError; then the caller
sends the whole batch again, and a message may be on the topic twice (never one that was not in a batch).
"""

from __future__ import annotations

import time
from collections import defaultdict

import pytest

from newsmon.bus.base import Consumer, Message, Outgoing
from newsmon.errors import BusError
from tests.bus.conftest import Engine

TOO_BIG = 1_100_000  # over both engines' default message limit (1 MiB, Kafka's default max_request_size)


async def read_until(consumer: Consumer, last: bytes, within: float = 60.0) -> list[Message]:
    """Read (without committing) until the message with value `last` arrived, or `within` seconds passed."""
    out: list[Message] = []
    deadline = time.monotonic() + within
    while not any(m.value == last for m in out) and time.monotonic() < deadline:
        out += await consumer.getmany(timeout=0.5)
    return out


async def test_a_batch_arrives_whole_in_order_per_key_with_headers(engine: Engine) -> None:
    bus, topic = await engine.open(), engine.topic()
    batch = [Outgoing(f"{i % 4}:{i}".encode(), f"key{i % 4}".encode(), (("n", str(i).encode()),))
             for i in range(80)]
    await bus.publish_many(topic, batch)
    await bus.publish_many(topic, [Outgoing("بلا مفتاح".encode())])  # no key: any partition
    await bus.publish_many(topic, [])  # nothing to do
    consumer = bus.consumer([topic], engine.group())
    await consumer.start()
    got = await read_until(consumer, "بلا مفتاح".encode())
    got += await consumer.getmany(timeout=0.5)  # anything else would show up here
    await consumer.stop()
    assert len(got) == 81
    by_key: dict[bytes | None, list[Message]] = defaultdict(list)
    for m in got:
        by_key[m.key].append(m)
    for key in (f"key{k}".encode() for k in range(4)):
        assert len({m.partition for m in by_key[key]}) == 1, key
        assert [m.value for m in by_key[key]] == [o.value for o in batch if o.key == key]
    assert all(m.headers == (("n", m.value.split(b":")[1]),) for m in got if m.key is not None)
    assert [m.value for m in by_key[None]] == ["بلا مفتاح".encode()]


async def test_a_refused_batch_raises_and_sending_it_again_delivers_it(engine: Engine) -> None:
    bus, topic = await engine.open(), engine.topic()
    key = b"one-partition"  # one key: one partition, so the order of everything read is the publishing order
    first, second, after = Outgoing(b"first", key), Outgoing(b"second", key), Outgoing(b"after", key)
    too_big = Outgoing(b"x" * TOO_BIG, key)
    with pytest.raises(BusError):
        await bus.publish_many(topic, [first, second, too_big, after])
    # The caller's duty: the whole batch counts as not published; it sends it again (without the bad one).
    await bus.publish_many(topic, [first, second, after])
    await bus.publish_many(topic, [Outgoing(b"end", key)])
    consumer = bus.consumer([topic], engine.group())
    await consumer.start()
    got = [m.value for m in await read_until(consumer, b"end")]
    await consumer.stop()
    assert got[-4:] == [b"first", b"second", b"after", b"end"]
    # What the refused batch left on the topic, if anything: a prefix of it, before the refused message.
    assert got[:-4] in ([], [b"first"], [b"first", b"second"])
    if engine.name == "sqlite":  # one transaction: nothing of a refused batch is written
        assert got == [b"first", b"second", b"after", b"end"]
