"""The engine fixture: every contract test runs once on the embedded SQLite log and once on a real Kafka."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from newsmon.bus.base import Bus
from tests.bus.engines import make_bus


class Engine:
    """Opens buses on one engine for one test, with unique topic and group names, and closes them after."""

    def __init__(self, name: str, where: str) -> None:
        self.name, self.where = name, where
        self.run = uuid.uuid4().hex[:10]
        self.buses: list[Bus] = []
        # Kafka brokers refuse sessions under group.min.session.timeout.ms (6 s by default).
        self.session_timeout = 1.5 if name == "sqlite" else 6.0

    def topic(self, name: str = "t") -> str:
        return f"test.{self.run}.{name}"

    def group(self, name: str = "g") -> str:
        return f"test.{self.run}.{name}"

    async def open(self) -> Bus:
        bus = make_bus(self.name, self.where, self.session_timeout)
        await bus.start()
        self.buses.append(bus)
        return bus


@pytest.fixture(params=["sqlite", pytest.param("kafka", marks=pytest.mark.kafka)])
async def engine(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Engine]:
    if request.param == "sqlite":
        where = str(tmp_path / "bus.db")
    else:
        where = request.getfixturevalue("kafka_bootstrap")
    eng = Engine(request.param, where)
    yield eng
    for bus in eng.buses:
        await bus.stop()
