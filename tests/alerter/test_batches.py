"""The consume loop's batch path, which the alerter's two consumers use (one store transaction per fetched batch):
a batch is handled whole; a retriable failure retries the same batch; any other failure falls back to message by
message, so only the message at fault is dead-lettered. On the embedded SQLite bus."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

from newsmon.bus.base import Message
from newsmon.bus.loop import consume
from newsmon.bus.sqlite import SqliteBus
from newsmon.errors import ParseError, StoreError
from newsmon.events import DEAD_LETTER_TOPIC, DeadLetter


async def _run(tmp_path: Path, values: list[bytes], fail_batch: list[Exception]) -> tuple[
        list[list[bytes]], list[bytes], list[DeadLetter], int]:
    bus = SqliteBus(tmp_path / "bus.db")
    await bus.start()
    for v in values:
        await bus.publish("t", v, key=b"same")  # one partition: one ordered batch
    batches: list[list[bytes]] = []
    singles: list[bytes] = []

    async def handle_batch(msgs: Sequence[Message]) -> None:
        batches.append([m.value for m in msgs])
        if fail_batch:
            raise fail_batch.pop(0)
        if any(m.value == b"poison" for m in msgs):
            raise ParseError("cannot take the poison message")

    async def handle(msg: Message) -> None:
        if msg.value == b"poison":
            raise ParseError("cannot take the poison message")
        singles.append(msg.value)

    consumer = bus.consumer(["t"], "g")
    await consumer.start()
    result = await consume(bus, consumer, handle, group="g", stop=asyncio.Event(), until_idle=True,
                           retry_first=0.01, batch_handler=handle_batch)
    await consumer.stop()
    letters_consumer = bus.consumer([DEAD_LETTER_TOPIC], "reader")
    await letters_consumer.start()
    letters = [DeadLetter.model_validate_json(m.value) for m in await letters_consumer.getmany(timeout=0.2)]
    await letters_consumer.stop()
    await bus.stop()
    return batches, singles, letters, result.handled


async def test_a_batch_is_handled_whole_and_a_retriable_failure_retries_it(tmp_path: Path) -> None:
    values = [f"v{i}".encode() for i in range(5)]
    batches, singles, letters, handled = await _run(tmp_path, values, [StoreError("database restarting")])
    assert batches == [values, values]  # the same batch again after the store error
    assert singles == [] and letters == [] and handled == 5


async def test_a_poison_message_is_singled_out_and_the_rest_handled(tmp_path: Path) -> None:
    values = [b"v0", b"poison", b"v2"]
    batches, singles, letters, handled = await _run(tmp_path, values, [])
    assert batches == [values]
    assert singles == [b"v0", b"v2"]
    assert [x.value for x in letters] == ["poison"] and handled == 2
