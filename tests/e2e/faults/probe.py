"""What the test reads from outside the workers: Kafka topics and group offsets, and the store's tables."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from newsmon.events import ALERTS_TOPIC, ARTICLES_TOPIC, MATCHES_TOPIC
from newsmon.store.base import async_url

# consumer group → the topic it reads (un-prefixed names, as in the services)
GROUPS = {"newsmon-classifier": ARTICLES_TOPIC, "newsmon-alerter": MATCHES_TOPIC, "newsmon-delivery": ALERTS_TOPIC}


class Kafka:
    """Reads a namespace's topics and its groups' committed offsets (one client each, kept open: aiokafka does
    not like a consumer stopped right after it started)."""

    def __init__(self, bootstrap: str, namespace: str) -> None:
        self.bootstrap, self.prefix = bootstrap, f"{namespace}." if namespace else ""
        self._consumer: AIOKafkaConsumer | None = None
        self._admin: AIOKafkaAdminClient | None = None

    async def open(self) -> None:
        self._consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False)
        await self._consumer.start()
        self._admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
        await self._admin.start()

    async def close(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
        if self._admin is not None:
            await self._admin.close()

    async def _end_offsets(self, topic: str) -> dict[TopicPartition, int]:
        assert self._consumer is not None and self._admin is not None
        name = self.prefix + topic
        parts = self._consumer.partitions_for_topic(name)
        if not parts:  # not in the consumer's metadata: ask the cluster
            described = await self._admin.describe_topics([name])
            parts = {p["partition"] for d in described if d["topic"] == name for p in d["partitions"]}
        tps = [TopicPartition(name, p) for p in parts]
        return dict(await self._consumer.end_offsets(tps)) if tps else {}

    async def lag(self) -> dict[str, int | None]:
        """Messages not committed, per group (None: the probe failed, e.g. the broker is restarting)."""
        assert self._admin is not None
        out: dict[str, int | None] = {}
        for group, topic in GROUPS.items():
            try:
                async with asyncio.timeout(10):
                    ends = await self._end_offsets(topic)
                    done = await self._admin.list_consumer_group_offsets(self.prefix + group)
            except Exception:  # a probe, not a worker: "unknown" is an answer
                out[group] = None
                continue
            out[group] = sum(max(0, end - (done[tp].offset if tp in done else 0)) for tp, end in ends.items())
        return out

    async def read_all(self, topic: str) -> list[bytes]:
        """Every message value of a topic, from the beginning to the end it had when asked."""
        tally = Tally(self, topic)
        try:
            return await tally.read_new()
        finally:
            await tally.close()

    async def topic_ids(self, topic: str, key: str = "id") -> Counter[str]:
        """How often each event id appears on a topic (at least once: duplicates are allowed there)."""
        return Counter(json.loads(v)[key] for v in await self.read_all(topic))


class Tally:
    """Reads a topic forward from its beginning, a bit more at each call, counting event ids."""

    def __init__(self, kafka: Kafka, topic: str, key: str = "id") -> None:
        self.kafka, self.topic, self.key = kafka, topic, key
        self.ids: Counter[str] = Counter()
        self._consumer: AIOKafkaConsumer | None = None

    async def close(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()

    async def read_new(self) -> list[bytes]:
        """The messages added since the last call (up to the end offsets seen now)."""
        ends = {tp: end for tp, end in (await self.kafka._end_offsets(self.topic)).items() if end > 0}
        values: list[bytes] = []
        if not ends:
            return values
        if self._consumer is None:
            self._consumer = AIOKafkaConsumer(bootstrap_servers=self.kafka.bootstrap, enable_auto_commit=False)
            await self._consumer.start()
        consumer = self._consumer
        if set(consumer.assignment()) != set(ends):
            consumer.assign(list(ends))
            await consumer.seek_to_beginning(*ends)
            self.ids.clear()
        while [tp for tp, end in ends.items() if await consumer.position(tp) < end]:
            batches = await consumer.getmany(timeout_ms=1000, max_records=5000)
            values += [r.value for records in batches.values() for r in records if r.value is not None]
        self.ids.update(json.loads(v)[self.key] for v in values)
        return values


@dataclass
class StoreView:
    """Counts from the store's delivery, attempt and outbox tables."""

    deliveries: Counter[str]  # status → rows
    delivered_attempts: Counter[str]  # delivery id → attempts recorded as delivered
    failed_attempts: int
    unpublished: int
    alerts_waiting: int


async def store_view(url: str) -> StoreView:
    engine = create_async_engine(async_url(url))
    try:
        async with engine.connect() as conn:
            rows: Any = await conn.execute(text("SELECT status, count(*) FROM deliveries GROUP BY status"))
            deliveries = Counter({r[0]: int(r[1]) for r in rows})
            rows = await conn.execute(text(
                "SELECT delivery_id, count(*) FROM delivery_attempts WHERE outcome = 'delivered' GROUP BY 1"))
            delivered = Counter({r[0]: int(r[1]) for r in rows})
            failed = await conn.scalar(text("SELECT count(*) FROM delivery_attempts WHERE outcome <> 'delivered'"))
            unpublished = await conn.scalar(text("SELECT count(*) FROM alert_notifications WHERE NOT published"))
            waiting = await conn.scalar(text("SELECT count(*) FROM alerts WHERE notify_at IS NOT NULL"))
    finally:
        await engine.dispose()
    return StoreView(deliveries, delivered, int(failed or 0), int(unpublished or 0), int(waiting or 0))
