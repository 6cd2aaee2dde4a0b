"""Bus throughput: messages/s published and consumed on the embedded SQLite log and on Kafka.

    .venv/bin/python tests/perf/bench_bus.py [N]        (default N=3000 messages of ~1 KiB)

Kafka comes from KAFKA_BOOTSTRAP_SERVERS, else a throwaway broker is started with deploy/kafka/kafka-local on
free ports (skipped when java is missing). Figures vary with the machine; they are printed, never asserted.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(REPO), str(REPO / "services")]

from tests.support.kafka import KAFKA_LOCAL, free_ports  # noqa: E402

from newsmon.bus.base import Bus, Message, Outgoing  # noqa: E402
from newsmon.bus.kafka import KafkaBus  # noqa: E402
from newsmon.bus.loop import consume  # noqa: E402
from newsmon.bus.sqlite import SqliteBus  # noqa: E402

VALUE = (b'{"id": "a_0000", "title": "' + "حلب".encode() * 20 + b'", "text": "' + b"x" * 900 + b'"}')


async def timed(label: str, n: int, work: Callable[[], Awaitable[object]]) -> None:
    started = time.perf_counter()
    await work()
    seconds = time.perf_counter() - started
    print(f"  {label:<38} {n / seconds:>9,.0f} msg/s   ({n} in {seconds:.2f} s)")


async def bench(name: str, bus: Bus, n: int) -> None:
    print(f"{name}:")
    await bus.start()
    run = uuid.uuid4().hex[:8]
    seq, conc, many = f"bench.{run}.seq", f"bench.{run}.conc", f"bench.{run}.many"

    async def sequential() -> None:
        for i in range(n):
            await bus.publish(seq, VALUE, key=f"k{i % 50}".encode())

    async def concurrent() -> None:
        for start in range(0, n, 200):
            await asyncio.gather(*(bus.publish(conc, VALUE, key=f"k{i % 50}".encode())
                                   for i in range(start, min(n, start + 200))))

    async def batches() -> None:  # what the poller does with a first-seen 50-item feed
        for start in range(0, n, 50):
            await bus.publish_many(many, [Outgoing(VALUE, f"k{i % 50}".encode())
                                          for i in range(start, min(n, start + 50))])

    async def read_commit() -> None:
        consumer = bus.consumer([seq], f"bench.{run}.raw")
        await consumer.start()
        got = 0
        while got < n:
            batch = await consumer.getmany(timeout=1.0, max_records=500)
            await consumer.commit(batch)
            got += len(batch)
        await consumer.stop()

    async def loop() -> None:
        async def handle(m: Message) -> None:
            return None

        consumer = bus.consumer([conc], f"bench.{run}.loop")
        await consumer.start()
        result = await consume(bus, consumer, handle, group=f"bench.{run}.loop", stop=asyncio.Event(),
                               until_idle=True, max_records=500)
        await consumer.stop()
        assert result.handled == n, result

    await timed("publish, one at a time (await each)", n, sequential)
    await timed("publish, 200 concurrent", n, concurrent)
    await timed("publish_many, batches of 50 (await each)", n, batches)
    await timed("consume: getmany(500) + commit", n, read_commit)
    await timed("consume: loop.consume, no-op handler", n, loop)
    await bus.stop()


def kafka_broker(data: Path) -> tuple[str, Callable[[], None]]:
    """A bootstrap address, and how to stop the broker if we started it."""
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        return os.environ["KAFKA_BOOTSTRAP_SERVERS"], lambda: None
    port, controller = free_ports(2)
    env = {**os.environ, "KAFKA_PORT": str(port), "KAFKA_CONTROLLER_PORT": str(controller),
           "KAFKA_DATA_DIR": str(data)}
    out = subprocess.run([str(KAFKA_LOCAL), "start"], env=env, check=True, capture_output=True, text=True)

    def stop() -> None:
        subprocess.run([str(KAFKA_LOCAL), "stop"], env=env, check=False, capture_output=True)

    return out.stdout.strip().splitlines()[-1], stop


async def main(n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        await bench("sqlite (embedded, WAL, synchronous=NORMAL)", SqliteBus(Path(tmp) / "bus.db"), n)
        if shutil.which("java") is None and not os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
            print("kafka: skipped (no java, no KAFKA_BOOTSTRAP_SERVERS)")
            return
        bootstrap, stop = kafka_broker(Path(tmp) / "kafka")
        try:
            await bench(f"kafka ({bootstrap}, acks=all, idempotent)", KafkaBus([bootstrap]), n)
        finally:
            stop()


if __name__ == "__main__":
    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(30))  # warnings and up only
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 3000))
