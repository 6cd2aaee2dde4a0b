"""A consumer in its own process that reads without committing, then waits to be killed (kill -9 tests).

Usage: python -m tests.bus.child ENGINE WHERE TOPIC GROUP SESSION_TIMEOUT
Prints "got N" once it holds N uncommitted messages.
"""

from __future__ import annotations

import asyncio
import sys

from tests.bus.engines import make_bus


async def main(engine: str, where: str, topic: str, group: str, session: float) -> None:
    bus = make_bus(engine, where, session)
    await bus.start()
    consumer = bus.consumer([topic], group)
    await consumer.start()
    got = 0
    while not got:
        got = len(await consumer.getmany(timeout=1.0))
    print(f"got {got}", flush=True)
    await asyncio.sleep(3600)


if __name__ == "__main__":
    e, w, t, g, s = sys.argv[1:6]
    asyncio.run(main(e, w, t, g, float(s)))
