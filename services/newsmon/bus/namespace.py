"""A bus wrapper that prefixes topic and group names, so several deployments (or tests) share one cluster."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from newsmon.bus.base import Bus, BusWrapper, Consumer, ConsumerWrapper, Message, Outgoing


class NamespacedConsumer(ConsumerWrapper):
    """A consumer whose messages show the un-prefixed topic names."""

    def __init__(self, inner: Consumer, prefix: str) -> None:
        super().__init__(inner)
        self._prefix = prefix

    async def getmany(self, timeout: float = 1.0, max_records: int = 100) -> list[Message]:
        messages = await self._inner.getmany(timeout, max_records)
        return [dataclasses.replace(m, topic=m.topic.removeprefix(self._prefix)) for m in messages]

    async def commit(self, messages: Sequence[Message]) -> None:
        await self._inner.commit([dataclasses.replace(m, topic=self._prefix + m.topic) for m in messages])


class NamespacedBus(BusWrapper):
    """Prefixes every topic and consumer group with `prefix`."""

    def __init__(self, inner: Bus, prefix: str) -> None:
        super().__init__(inner)
        self._prefix = prefix

    async def publish(self, topic: str, value: bytes, key: bytes | None = None,
                      headers: Sequence[tuple[str, bytes]] = ()) -> None:
        await self._inner.publish(self._prefix + topic, value, key, headers)

    async def publish_many(self, topic: str, messages: Sequence[Outgoing]) -> None:
        await self._inner.publish_many(self._prefix + topic, messages)

    def consumer(self, topics: Sequence[str], group: str) -> Consumer:
        inner = self._inner.consumer([self._prefix + t for t in topics], self._prefix + group)
        return NamespacedConsumer(inner, self._prefix)
