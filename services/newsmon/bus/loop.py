"""THE consume loop: every service reads the bus through `consume()`.

Outcomes are kept apart, each with one answer:

    transport error (getmany/commit raised BusError)  → log, count, back off, try again
    stop set                                           → finish the message in hand, commit, return
    message                                            → handler(message)
      handler returned                                 → done
      handler raised, exc.retriable                    → back off, same message again (nothing committed)
      handler raised, not retriable (or unknown)       → DeadLetter on DEAD_LETTER_TOPIC, log, count → done
    batch finished                                     → commit the done prefix (never an unfinished message)

With a `batch_handler`, a fetched batch goes to it whole first (one store transaction for many messages):
      returned                                         → the whole batch is done
      raised, exc.retriable                            → back off, the same batch again
      raised, not retriable (or retries exhausted)     → message by message through `handler`, as above, so
                                                         only the message at fault is dead-lettered

Ack policy: at least once. Offsets are committed after the handler returns (per batch), so a crash re-delivers
at most one batch; handlers must be idempotent.
"""

from __future__ import annotations

import asyncio
import base64
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import NamedTuple

from newsmon import log, metrics
from newsmon.bus.base import Bus, Consumer, Message
from newsmon.errors import NewsmonError
from newsmon.events import DEAD_LETTER_TOPIC, DeadLetter

_log = log.get(__name__)

Handler = Callable[[Message], Awaitable[None]]
BatchHandler = Callable[[Sequence[Message]], Awaitable[None]]
LAG_EVERY = 5.0  # seconds between lag gauge updates while busy


class ConsumeResult(NamedTuple):
    """What one consume() call did."""

    handled: int
    dead_lettered: int


class Backoff:
    """Exponential delays with ±10% jitter, capped."""

    def __init__(self, first: float, cap: float) -> None:
        self.first, self.cap, self.current = first, cap, first

    def next(self) -> float:
        delay = self.current
        self.current = min(self.current * 2, self.cap)
        return delay * random.uniform(0.9, 1.1)

    def reset(self) -> None:
        self.current = self.first


async def consume(bus: Bus, consumer: Consumer, handler: Handler, *, group: str, stop: asyncio.Event,
                  until_idle: bool = False, max_records: int = 100, poll_timeout: float = 0.5,
                  retry_first: float = 0.2, retry_max: float = 30.0,
                  max_retries: int | None = None, batch_handler: BatchHandler | None = None) -> ConsumeResult:
    """Feed each message of a started `consumer` to `handler` (or each batch to `batch_handler`) until `stop` is
    set (or idle, if asked)."""
    handled = dead = 0
    transport = Backoff(retry_first, retry_max)
    next_lag = 0.0
    while not stop.is_set():
        try:
            # until_idle polls briefly: an empty poll only triggers the lag check that decides
            batch = await consumer.getmany(timeout=min(poll_timeout, 0.1) if until_idle else poll_timeout,
                                           max_records=max_records)
        except NewsmonError as exc:
            await _transport_failed(exc, "fetch", group, stop, transport)
            continue
        transport.reset()
        if not batch:
            if until_idle and await _idle(consumer, group):
                break
            continue
        done: list[Message] = []
        whole = None
        if batch_handler is not None:
            whole = await _handle_batch(batch_handler, batch, group=group, stop=stop,
                                        backoff=Backoff(retry_first, retry_max), max_retries=max_retries)
        if whole == "ok":
            done, handled = list(batch), handled + len(batch)
        for message in batch if whole == "split" or batch_handler is None else ():
            outcome = await _handle(bus, handler, message, group=group, stop=stop,
                                    backoff=Backoff(retry_first, retry_max), max_retries=max_retries)
            if outcome is None:  # stopped while retrying: not done, so not committed
                break
            done.append(message)
            handled += outcome == "ok"
            dead += outcome == "dead"
            if stop.is_set():
                break
        await _commit(consumer, done, group, stop, transport)
        if time.monotonic() >= next_lag:
            next_lag = time.monotonic() + LAG_EVERY
            await _lag(consumer, group)
    _log.info("bus.consume_done", group=group, handled=handled, dead_lettered=dead, stopped=stop.is_set())
    return ConsumeResult(handled, dead)


class _Stopped:
    """`_until_done`'s answer when `stop` was set while it waited to retry."""


_STOPPED = _Stopped()


async def _until_done(call: Callable[[], Awaitable[None]], *, group: str, stop: asyncio.Event, backoff: Backoff,
                      max_retries: int | None, event: str, **where: object) -> Exception | _Stopped | None:
    """Run `call` until it succeeds (None), retrying retriable errors with `backoff` (each logged as `event` with
    `where`, and counted); the error when it is not retriable or the retries are used up; _STOPPED when `stop`
    was set while waiting."""
    attempt = 0
    while True:
        try:
            await call()
            return None
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            attempt += 1
            retriable = bool(getattr(exc, "retriable", False))
            if not retriable or (max_retries is not None and attempt > max_retries):
                return exc
            delay = backoff.next()
            metrics.BUS_ERRORS.labels(group, "retry").inc()
            _log.warning(event, group=group, **where, attempt=attempt, delay=round(delay, 2), error=repr(exc))
            if await _sleep(stop, delay):
                return _STOPPED


async def _handle(bus: Bus, handler: Handler, message: Message, *, group: str, stop: asyncio.Event,
                  backoff: Backoff, max_retries: int | None) -> str | None:
    """'ok', 'dead' (dead-lettered), or None when stopped before the message was done."""
    result = await _until_done(lambda: handler(message), group=group, stop=stop, backoff=backoff,
                               max_retries=max_retries, event="bus.handler_retry", topic=message.topic,
                               partition=message.partition, offset=message.offset)
    if result is None:
        return "ok"
    if isinstance(result, _Stopped):
        return None
    return "dead" if await _dead_letter(bus, message, result, group, stop) else None


async def _handle_batch(handler: BatchHandler, batch: Sequence[Message], *, group: str, stop: asyncio.Event,
                        backoff: Backoff, max_retries: int | None) -> str | None:
    """'ok', 'split' (handle message by message), or None when stopped before the batch was done."""
    result = await _until_done(lambda: handler(batch), group=group, stop=stop, backoff=backoff,
                               max_retries=max_retries, event="bus.batch_retry", messages=len(batch))
    if result is None:
        return "ok"
    if isinstance(result, _Stopped):
        return None
    metrics.BUS_ERRORS.labels(group, "batch_split").inc()
    _log.warning("bus.batch_split", group=group, messages=len(batch), error=repr(result))
    return "split"


async def _dead_letter(bus: Bus, message: Message, exc: Exception, group: str, stop: asyncio.Event) -> bool:
    """Publish the message and its error to the dead-letter topic; False if stopped before that succeeded."""
    letter = DeadLetter(topic=message.topic, key=_text(message.key), value=_text(message.value) or "",
                        error=f"{type(exc).__name__}: {exc}", group=group)
    metrics.BUS_ERRORS.labels(group, "dead_letter").inc()
    _log.error("bus.dead_letter", group=group, topic=message.topic, partition=message.partition,
               offset=message.offset, error=letter.error,
               exc_info=exc if not isinstance(exc, NewsmonError) else None)  # a bug: keep its traceback
    where = [("newsmon-source-partition", str(message.partition).encode()),
             ("newsmon-source-offset", str(message.offset).encode())]
    backoff = Backoff(0.2, 30.0)
    while True:
        try:
            await bus.publish(DEAD_LETTER_TOPIC, letter.to_bytes(), key=message.key, headers=where)
            return True
        except NewsmonError as exc2:
            metrics.BUS_ERRORS.labels(group, "transport").inc()
            _log.warning("bus.dead_letter_publish_failed", group=group, error=str(exc2))
            if await _sleep(stop, backoff.next()):
                return False


async def _commit(consumer: Consumer, done: Sequence[Message], group: str, stop: asyncio.Event,
                  backoff: Backoff) -> None:
    """Commit the finished messages; a refused commit means they will be delivered again (at least once)."""
    while done:
        try:
            await consumer.commit(done)
        except NewsmonError as exc:
            metrics.BUS_ERRORS.labels(group, "commit").inc()
            if not exc.retriable or stop.is_set():
                _log.warning("bus.commit_lost", group=group, messages=len(done), error=str(exc))
                return
            _log.warning("bus.commit_failed", group=group, error=str(exc))
            if await _sleep(stop, backoff.next()):
                return
            continue
        metrics.BUS_CONSUMED.labels(group).inc(len(done))
        backoff.reset()
        return


async def _idle(consumer: Consumer, group: str) -> bool:
    """True when the group has nothing left in this member's partitions."""
    return await _lag(consumer, group) == 0


async def _lag(consumer: Consumer, group: str) -> int | None:
    """Update the lag gauge; None when the engine could not tell."""
    try:
        lag = await consumer.lag()
    except NewsmonError as exc:
        metrics.BUS_ERRORS.labels(group, "transport").inc()
        _log.warning("bus.lag_failed", group=group, error=str(exc))
        return None
    metrics.BUS_LAG.labels(group).set(lag)
    return lag


async def _transport_failed(exc: NewsmonError, what: str, group: str, stop: asyncio.Event,
                            backoff: Backoff) -> None:
    delay = backoff.next()
    metrics.BUS_ERRORS.labels(group, "transport").inc()
    _log.warning("bus.transport_error", group=group, during=what, delay=round(delay, 2), error=str(exc))
    await _sleep(stop, delay)


async def _sleep(stop: asyncio.Event, seconds: float) -> bool:
    """Sleep, waking early when stopped; True if stopped."""
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except TimeoutError:
        return False
    return True


def _text(raw: bytes | None) -> str | None:
    """Bytes as text for the dead letter: UTF-8 when it is, else 'base64:' + base64."""
    if raw is None:
        return None
    try:
        return raw.decode()
    except UnicodeDecodeError:
        return "base64:" + base64.b64encode(raw).decode()
