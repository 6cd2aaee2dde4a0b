"""A consumer a service starts while the broker restarts waits for the broker, like the bus's own start.

In the fault test this was the one way left for a worker to exit on its own: the bus had started, then the broker
went away before a service joined its consumer group. Here the session broker is stopped between the two.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from prometheus_client import REGISTRY

from newsmon.bus import open_bus
from newsmon.health import Health
from newsmon.settings import BusSettings
from newsmon.startup import PatientBus
from tests.support.kafka import KafkaBroker

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(300)]


def _retries(dependency: str) -> float:
    return REGISTRY.get_sample_value("newsmon_startup_retries_total", {"dependency": dependency}) or 0.0


async def test_a_consumer_started_while_the_broker_is_down_waits_and_then_reads(kafka_broker: KafkaBroker) -> None:
    if not kafka_broker.restartable:
        pytest.skip("an external broker (KAFKA_BOOTSTRAP_SERVERS) is not ours to stop")
    stop = asyncio.Event()
    health = Health(stall_after=60, stop=stop)
    health.ready()
    settings = BusSettings(url=f"kafka://{kafka_broker.bootstrap}", namespace=f"patient{int(time.time())}")
    bus = PatientBus(open_bus(settings), wait=180, stop=stop, health=health)
    await bus.start()
    group = "patient-reader"
    before = _retries("bus")
    try:
        await bus.publish("patient.t", "وصلت الرسالة".encode(), key=b"k")
        await asyncio.to_thread(kafka_broker.stop)
        consumer = bus.consumer(["patient.t"], group)
        starting = asyncio.create_task(consumer.start())
        deadline = time.monotonic() + 90
        while "waiting for the bus (group patient-reader, attempt" not in str(health.readiness()):
            assert not starting.done(), f"the start ended while the broker was down: {starting.exception()!r}"
            assert time.monotonic() < deadline, "the consumer start never reported waiting"
            await asyncio.sleep(0.2)
        await asyncio.to_thread(kafka_broker.start)
        await asyncio.wait_for(starting, 150)
        assert health.readiness() is None  # ready again, as before the wait
        assert _retries("bus") > before
        got = []
        for _ in range(60):
            got += await consumer.getmany(timeout=0.5)
            if got:
                break
        await consumer.commit(got)
        await consumer.stop()
        assert [m.value.decode() for m in got] == ["وصلت الرسالة"]
    finally:
        stop.set()
        await bus.stop()
