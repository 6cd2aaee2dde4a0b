"""The batched feed-state writer: closing it never cuts off a write in progress (that batch would be lost)."""

from __future__ import annotations

import asyncio
import time

from newsmon.poller.saver import StateSaver
from newsmon.store import Store
from newsmon.store import feeds as feed_store
from newsmon.store.feeds import FeedState


async def test_close_during_a_write_keeps_every_state(store: Store) -> None:
    states = [FeedState(id=f"f{i}", url=f"https://example.org/{i}", config_url=f"https://example.org/{i}",
                        interval=300, current_interval=300) for i in range(50)]
    await feed_store.sync_feeds(store, states, time.time())
    for round_ in range(12):  # close at varied moments: before the timer fires, while it writes, after
        saver = StateSaver(store, delay=0)
        for s in states:
            s.polls = round_ + 1
            saver.save(s)
        for _ in range(round_):
            await asyncio.sleep(0)
        await saver.close()
        stored = {s.id: s.polls for s in await feed_store.list_feeds(store)}
        assert stored == {s.id: round_ + 1 for s in states}, f"round {round_}"
