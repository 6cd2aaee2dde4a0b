"""What only the embedded engine has: group assignment, retention, its own errors, open_bus."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from pydantic import ValidationError

from newsmon.bus import open_bus
from newsmon.bus.kafka import KafkaBus
from newsmon.bus.namespace import NamespacedBus
from newsmon.bus.sqlite import SqliteBus
from newsmon.bus.sqlite_group import assign
from newsmon.errors import BusError
from newsmon.settings import BusSettings


@pytest.mark.parametrize(("members", "sizes"), [
    pytest.param([("a", ["t"])], {"a": 4}, id="one-member-takes-all"),
    pytest.param([("b", ["t"]), ("a", ["t"])], {"a": 2, "b": 2}, id="two-split-evenly"),
    pytest.param([("a", ["t"]), ("b", ["t"]), ("c", ["t"])], {"a": 2, "b": 1, "c": 1},
                 id="three-round-robin"),
    pytest.param([("a", ["t"]), ("b", ["u"])], {"a": 4, "b": 2}, id="different-subscriptions"),
    pytest.param([("a", ["t"]), ("b", ["t"]), ("c", ["t"]), ("d", ["t"]), ("e", ["t"])],
                 {"a": 1, "b": 1, "c": 1, "d": 1, "e": 0}, id="more-members-than-partitions"),
])
def test_assign_gives_every_partition_to_exactly_one_subscribed_member(
        members: list[tuple[str, list[str]]], sizes: dict[str, int]) -> None:
    partitions = {"t": 4, "u": 2}
    out = assign(members, partitions)
    assert out == assign(list(reversed(members)), partitions)  # every process computes the same answer
    assert {m: len(ps) for m, ps in out.items()} == sizes
    subscribed = {t for _, ts in members for t in ts}
    every = [tp for ps in out.values() for tp in ps]
    assert sorted(every) == sorted((t, p) for t in subscribed for p in range(partitions[t]))
    assert all(t in dict(members)[m] for m, ps in out.items() for t, _ in ps)


async def test_retention_deletes_old_messages_and_never_reuses_offsets(tmp_path: Path) -> None:
    path = tmp_path / "bus.db"
    old = SqliteBus(path, retention=0.05)
    await old.start()
    for i in range(3):
        await old.publish("t", f"old{i}".encode(), key=b"k")
    await old.stop()
    await asyncio.sleep(0.1)
    bus = SqliteBus(path, retention=0.05)
    await bus.start()  # sweeps on start
    await bus.publish("t", b"new", key=b"k")
    consumer = bus.consumer(["t"], "g")
    await consumer.start()
    got = await consumer.getmany(timeout=2)
    assert [(m.value, m.offset) for m in got] == [(b"new", 3)]
    assert await consumer.lag() == 1
    await consumer.stop()
    await bus.stop()


async def test_an_unusable_bus_file_is_a_retriable_bus_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    bus = SqliteBus(tmp_path / "file" / "bus.db")
    with pytest.raises(BusError) as caught:
        await bus.start()
    assert caught.value.retriable
    await bus.stop()


async def test_open_bus_picks_the_engine_by_scheme_and_applies_the_namespace(tmp_path: Path) -> None:
    kafka = BusSettings.model_validate({"url": "kafka://127.0.0.1:1,127.0.0.1:2"})
    assert isinstance(open_bus(kafka), KafkaBus)
    with pytest.raises(ValidationError, match="must start with sqlite:// or kafka://"):
        BusSettings.model_validate({"url": "memory://"})
    url = f"sqlite:///{tmp_path / 'bus.db'}"
    bus = open_bus(BusSettings.model_validate({"url": url, "namespace": "staging"}))
    assert isinstance(bus, NamespacedBus)
    await bus.start()
    await bus.publish("articles", b"x")
    await bus.stop()
    raw = open_bus(BusSettings.model_validate({"url": url}))
    assert isinstance(raw, SqliteBus)
    await raw.start()
    consumer = raw.consumer(["staging.articles"], "g")
    await consumer.start()
    assert [m.value for m in await consumer.getmany(timeout=2)] == [b"x"]
    await consumer.stop()
    await raw.stop()
