"""The message bus: `open_bus(settings)` picks the engine by URL scheme; `loop.consume` is THE consume loop.

    sqlite:///path/bus.db          the embedded durable log (default; one machine, several processes)
    kafka://host:9092,host2:9092   Kafka through aiokafka
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from newsmon.bus.base import Bus, Consumer, Message
from newsmon.errors import ConfigError

if TYPE_CHECKING:
    from newsmon.settings import BusSettings

__all__ = ["Bus", "Consumer", "Message", "open_bus"]


def open_bus(settings: BusSettings) -> Bus:
    """A new (not started) bus for `settings.url`, topic and group names prefixed by `settings.namespace`."""
    from newsmon.events import TOPICS

    prefix = f"{settings.namespace}." if settings.namespace else ""
    bus: Bus
    if settings.kind == "sqlite":
        from newsmon.bus.sqlite import SqliteBus

        bus = SqliteBus(settings.sqlite_path, partitions=settings.partitions, retention=settings.retention)
    elif settings.kind == "kafka":
        from newsmon.bus.kafka import KafkaBus, connection_options

        bus = KafkaBus(settings.bootstrap_servers, partitions=settings.partitions,
                       replication_factor=settings.replication_factor,
                       client_id=settings.client_id, topics=[prefix + t for t in TOPICS],
                       connection=connection_options(settings))
    else:
        raise ConfigError(f"bus.url = {settings.url!r}: the {settings.kind}:// engine is not available; "
                          "use sqlite:/// or kafka://")
    if prefix:
        from newsmon.bus.namespace import NamespacedBus

        bus = NamespacedBus(bus, prefix)
    return bus
