"""The whole pipeline as separate worker processes on Kafka and PostgreSQL, fed by the stream, watched from outside.

    async with Pipeline(tmp, bootstrap, store_url, corpus, {"poller": 1, "classifier": 2, "alerter": 2}) as p:
        p.stream.begin()
        ...                                   # inject faults through p.cluster, p.receiver
        state = await p.wait_drained(120)     # every expected alert received, no lag, nothing pending
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from newsmon.events import ARTICLES_TOPIC
from tests.e2e.faults import config, probe
from tests.e2e.faults.cluster import Cluster, run_newsmon
from tests.e2e.faults.corpus import Corpus
from tests.e2e.faults.hooks import HOOK, FlakyReceiver, Ledger
from tests.e2e.faults.stream import FeedStream
from tests.support.feedserver import FeedServer


@dataclass
class Drain:
    """How far the pipeline is from done."""

    missing: int  # expected alerts not yet received with success
    unpublished_articles: int  # items of the stream not yet on the articles topic
    lag: dict[str, int | None]
    store: probe.StoreView | None

    @property
    def done(self) -> bool:
        s = self.store
        settled = s is not None and set(s.deliveries) <= {"delivered"} and s.unpublished == s.alerts_waiting == 0
        return (self.missing == 0 and self.unpublished_articles == 0 and settled
                and all(v == 0 for v in self.lag.values()))

    def __str__(self) -> str:
        s = self.store
        store = "unknown" if s is None else (f"deliveries={dict(s.deliveries)} unpublished={s.unpublished} "
                                             f"alerts_waiting={s.alerts_waiting}")
        return f"missing={self.missing} articles_not_on_bus={self.unpublished_articles} lag={self.lag} {store}"


class Pipeline:
    """Feed server, receiver, config and worker processes for one run."""

    def __init__(self, tmp: Path, bootstrap: str, store_url: str, corpus: Corpus, counts: dict[str, int],
                 poll_every: float = 2.0) -> None:
        self.tmp, self.bootstrap, self.store_url, self.corpus = tmp, bootstrap, store_url, corpus
        self.counts, self.poll_every = counts, poll_every
        self.namespace = f"f{uuid.uuid4().hex[:8]}"
        self.kafka = probe.Kafka(bootstrap, self.namespace)
        self.articles = probe.Tally(self.kafka, ARTICLES_TOPIC)
        self.feeds = FeedServer()
        self.receiver = FlakyReceiver()
        self.stream = FeedStream(corpus, self.feeds)
        self.cluster = Cluster(tmp / "config.toml", tmp / "logs")

    async def __aenter__(self) -> Pipeline:
        self.tmp.mkdir(parents=True, exist_ok=True)
        self.feeds.start()
        await self.receiver.start()
        config.write(self.cluster.config, bootstrap=self.bootstrap, namespace=self.namespace,
                     store_url=self.store_url, feed_urls=self.stream.urls(), hook_url=self.receiver.url(HOOK),
                     poll_every=self.poll_every)
        await asyncio.to_thread(run_newsmon, "db", "upgrade", "--config", str(self.cluster.config))
        self.cluster.start(self.counts)
        await self.kafka.open()
        return self

    async def __aexit__(self, et: type[BaseException] | None, e: BaseException | None,
                        tb: TracebackType | None) -> None:
        try:
            await self.articles.close()
            await self.kafka.close()
            await asyncio.to_thread(self.cluster.stop)
        finally:
            await self.receiver.stop()
            self.feeds.stop()

    def ledger(self) -> Ledger:
        return Ledger.of(list(self.receiver.requests))

    async def drain_state(self) -> Drain:
        got = self.ledger().delivered_urls()
        missing = len(set(self.corpus.expected) - set(got))
        lag = await self.kafka.lag()
        try:
            await self.articles.read_new()
        except Exception:  # the broker may be restarting: count again next time
            pass
        unpublished = len(self.corpus.items) - len(self.articles.ids)
        try:
            store: probe.StoreView | None = await probe.store_view(self.store_url)
        except Exception:  # the store may be restarting: not known yet
            store = None
        return Drain(missing, unpublished, lag, store)

    async def wait_drained(self, within: float, every: float = 1.0) -> Drain:
        """Poll until done (twice in a row, `every` apart) or `within` seconds passed; the last state."""
        deadline, calm = time.monotonic() + within, 0
        state = await self.drain_state()
        while time.monotonic() < deadline:
            self.cluster.supervise()
            state = await self.drain_state()
            calm = calm + 1 if state.done else 0
            if calm >= 2:
                break
            await asyncio.sleep(every)
        return state
