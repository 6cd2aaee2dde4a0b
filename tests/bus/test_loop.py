"""The consume loop's transport-error path (the contract suite covers handler outcomes on both engines)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

from prometheus_client import REGISTRY

from newsmon.bus.base import Consumer, Message
from newsmon.bus.loop import consume
from newsmon.bus.sqlite import SqliteBus
from newsmon.errors import BusError


class Flaky:
    """A consumer whose transport fails the first `failures` fetches (a broker restart, a locked file)."""

    def __init__(self, inner: Consumer, failures: int) -> None:
        self.inner, self.failures = inner, failures

    async def start(self) -> None:
        await self.inner.start()

    async def stop(self) -> None:
        await self.inner.stop()

    async def getmany(self, timeout: float = 1.0, max_records: int = 100) -> list[Message]:
        if self.failures:
            self.failures -= 1
            raise BusError("connection reset")
        return await self.inner.getmany(timeout, max_records)

    async def commit(self, messages: Sequence[Message]) -> None:
        await self.inner.commit(messages)

    async def lag(self) -> int:
        return await self.inner.lag()


async def test_transport_errors_back_off_and_lose_nothing(tmp_path: Path) -> None:
    bus = SqliteBus(tmp_path / "bus.db")
    await bus.start()
    for i in range(5):
        await bus.publish("t", f"v{i}".encode(), key=f"k{i}".encode())
    seen: list[bytes] = []

    async def handle(m: Message) -> None:
        seen.append(m.value)

    labels = {"group": "g", "outcome": "transport"}
    before = REGISTRY.get_sample_value("newsmon_bus_handler_errors_total", labels)
    consumer = Flaky(bus.consumer(["t"], "g"), failures=3)
    await consumer.start()
    result = await consume(bus, consumer, handle, group="g", stop=asyncio.Event(), until_idle=True,
                           retry_first=0.01)
    await consumer.stop()
    await bus.stop()
    assert result.handled == 5 and sorted(seen) == [f"v{i}".encode() for i in range(5)]
    after = REGISTRY.get_sample_value("newsmon_bus_handler_errors_total", labels)
    assert (after or 0) - (before or 0) == 3
