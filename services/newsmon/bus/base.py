"""The bus interface: one small contract, two engines (embedded SQLite log, Kafka).

Delivery is at-least-once: a consumer commits a message's offset only after its work is done, so a consumer
that dies before committing gets the message again (possibly on another member of its group). Messages with the
same key go to the same partition and keep their order.

Publishing is at-least-once too. `publish_many` sends a batch in one go (one transaction, or one round of
acknowledgements) and either returns, every message durably accepted, or raises BusError: then the caller treats
the *whole* batch as not published and sends it again later. Some of it may already be on the bus by then, so a
retry can duplicate messages; consumers de-duplicate by the ids inside the messages (article, match, alert ids).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Message:
    """A message read from the bus."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    timestamp_ms: int = 0
    headers: tuple[tuple[str, bytes], ...] = field(default=())


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A message to publish with `Bus.publish_many`."""

    value: bytes
    key: bytes | None = None
    headers: tuple[tuple[str, bytes], ...] = ()


class Consumer(Protocol):
    """A member of a consumer group reading some topics."""

    async def start(self) -> None: ...

    async def stop(self) -> None:
        """Leave the group; uncommitted messages go to another member (or to the next start)."""

    async def getmany(self, timeout: float = 1.0, max_records: int = 100) -> list[Message]:
        """Wait up to `timeout` seconds for messages; [] when none arrived."""

    async def commit(self, messages: Sequence[Message]) -> None:
        """Mark these messages (and everything before them in their partitions) as done for the group."""

    async def lag(self) -> int:
        """Messages in the assigned partitions not yet committed by the group."""


class Bus(Protocol):
    """Publish to topics and create consumers."""

    async def start(self) -> None:
        """Connect. BusError when it cannot: `retriable` when the engine is unreachable (worth waiting for), not
        when it refused us (credentials, TLS) — the start-up wait reads that flag."""

    async def stop(self) -> None: ...

    async def publish(self, topic: str, value: bytes, key: bytes | None = None,
                      headers: Sequence[tuple[str, bytes]] = ()) -> None:
        """Publish one message; returns once the engine has durably accepted it."""

    async def publish_many(self, topic: str, messages: Sequence[Outgoing]) -> None:
        """Publish messages in the order given; returns once the engine has durably accepted all of them.

        BusError when any one is refused (too large, engine unreachable): the whole batch counts as not
        published, although some of it may have been written (see the module docstring).
        """

    def consumer(self, topics: Sequence[str], group: str) -> Consumer:
        """A new (not started) consumer in `group` for `topics`."""

    async def ping(self) -> bool:
        """True when the engine is reachable (readiness)."""


class ConsumerWrapper:
    """A consumer that passes every call on to `inner`; a wrapper overrides only what it changes."""

    def __init__(self, inner: Consumer) -> None:
        self._inner = inner

    async def start(self) -> None:
        await self._inner.start()

    async def stop(self) -> None:
        await self._inner.stop()

    async def getmany(self, timeout: float = 1.0, max_records: int = 100) -> list[Message]:
        return await self._inner.getmany(timeout, max_records)

    async def commit(self, messages: Sequence[Message]) -> None:
        await self._inner.commit(messages)

    async def lag(self) -> int:
        return await self._inner.lag()


class BusWrapper:
    """A bus that passes every call on to `inner`; a wrapper overrides only what it changes."""

    def __init__(self, inner: Bus) -> None:
        self._inner = inner

    async def start(self) -> None:
        await self._inner.start()

    async def stop(self) -> None:
        await self._inner.stop()

    async def publish(self, topic: str, value: bytes, key: bytes | None = None,
                      headers: Sequence[tuple[str, bytes]] = ()) -> None:
        await self._inner.publish(topic, value, key, headers)

    async def publish_many(self, topic: str, messages: Sequence[Outgoing]) -> None:
        await self._inner.publish_many(topic, messages)

    def consumer(self, topics: Sequence[str], group: str) -> Consumer:
        return self._inner.consumer(topics, group)

    async def ping(self) -> bool:
        return await self._inner.ping()
