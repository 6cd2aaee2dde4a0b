"""The two bus engines as the contract suite (and its child processes) build them."""

from __future__ import annotations

from pathlib import Path

from newsmon.bus.base import Bus
from newsmon.bus.kafka import KafkaBus
from newsmon.bus.sqlite import SqliteBus

PARTITIONS = 4


def make_bus(engine: str, where: str, session_timeout: float) -> Bus:
    """A new, not started bus: `where` is the SQLite file or the Kafka bootstrap address."""
    if engine == "sqlite":
        return SqliteBus(Path(where), partitions=PARTITIONS, session_timeout=session_timeout)
    return KafkaBus([where], partitions=PARTITIONS, client_id="newsmon-test", session_timeout=session_timeout)
