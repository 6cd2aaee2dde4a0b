"""A tiny in-memory Bus for the alerter's tests (one partition per topic, committed offsets per group)."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Sequence

from newsmon.bus.base import Consumer, Message, Outgoing


class MemoryBus:
    """Implements newsmon.bus.base.Bus in memory; survives a service restart within one test."""

    def __init__(self) -> None:
        self.log: dict[str, list[Message]] = defaultdict(list)
        self.committed: dict[tuple[str, str], int] = defaultdict(int)
        self.changed = asyncio.Event()

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def ping(self) -> bool:
        return True

    async def publish(
        self, topic: str, value: bytes, key: bytes | None = None, headers: Sequence[tuple[str, bytes]] = ()
    ) -> None:
        log = self.log[topic]
        log.append(Message(topic, 0, len(log), key, value, 0, tuple(headers)))
        self.changed.set()

    async def publish_many(self, topic: str, messages: Sequence[Outgoing]) -> None:
        for m in messages:
            await self.publish(topic, m.value, m.key, m.headers)

    def consumer(self, topics: Sequence[str], group: str) -> Consumer:
        return MemoryConsumer(self, list(topics), group)


class MemoryConsumer:
    """Reads from the group's committed offsets; uncommitted messages come back after a restart."""

    def __init__(self, bus: MemoryBus, topics: list[str], group: str) -> None:
        self.bus, self.topics, self.group = bus, topics, group
        self.pos: dict[str, int] = {}

    async def start(self) -> None:
        self.pos = {t: self.bus.committed[(self.group, t)] for t in self.topics}

    async def stop(self) -> None: ...

    async def getmany(self, timeout: float = 1.0, max_records: int = 100) -> list[Message]:
        out = self._take(max_records)
        if not out:
            self.bus.changed.clear()
            try:
                await asyncio.wait_for(self.bus.changed.wait(), timeout)
            except TimeoutError:
                return []
            out = self._take(max_records)
        return out

    def _take(self, limit: int) -> list[Message]:
        out: list[Message] = []
        for t in self.topics:
            msgs = self.bus.log[t][self.pos[t] : self.pos[t] + limit - len(out)]
            self.pos[t] += len(msgs)
            out += msgs
        return out

    async def commit(self, messages: Sequence[Message]) -> None:
        for m in messages:
            key = (self.group, m.topic)
            self.bus.committed[key] = max(self.bus.committed[key], m.offset + 1)

    async def lag(self) -> int:
        return sum(len(self.bus.log[t]) - self.bus.committed[(self.group, t)] for t in self.topics)
