"""Feed state and the seen-article memory in the store (SQLite here; the queries are portable Core)."""

from __future__ import annotations

from newsmon.store import Store, seen
from newsmon.store import feeds as feed_store
from newsmon.store.feeds import FeedState
from newsmon.store.seen import SeenRow


def _feed(fid: str = "f", url: str = "http://a.example/rss") -> FeedState:
    return FeedState(id=fid, url=url, config_url=url, interval=300, current_interval=300)


async def test_seen_memory_is_bounded_and_forgets_the_longest_absent_first(store: Store) -> None:
    await feed_store.sync_feeds(store, [_feed()], now=0)
    for t in range(6):  # 6 polls of 5 new items each
        rows = [SeenRow(f"a{t}-{i}", None, "h", 1) for i in range(5)]
        await seen.remember(store, "f", rows, [], [], now=float(t), cap=None)
    await seen.remember(store, "f", [], [], ["a0-0"], now=10.0, cap=12)  # a0-0 is still in the document
    ids = [f"a{t}-{i}" for t in range(6) for i in range(5)]
    kept = {r.id for r in await seen.load_seen(store, "f", ids, [])}
    assert len(kept) == 12
    assert "a0-0" in kept and "a5-4" in kept and "a0-1" not in kept


async def test_sync_keeps_state_and_restarts_a_changed_url(store: Store) -> None:
    [state] = await feed_store.sync_feeds(store, [_feed()], now=100)
    state.etag, state.error_streak = '"x"', 2
    await feed_store.save_feeds(store, [state])
    [same] = await feed_store.sync_feeds(store, [_feed()], now=200)
    assert (same.etag, same.error_streak, same.next_poll) == ('"x"', 2, 100)
    [moved] = await feed_store.sync_feeds(store, [_feed(url="http://b.example/rss")], now=300)
    assert (moved.url, moved.etag, moved.next_poll) == ("http://b.example/rss", None, 300)


async def test_link_keys_find_churned_items(store: Store) -> None:
    await feed_store.sync_feeds(store, [_feed()], now=0)
    await seen.remember(store, "f", [SeenRow("old", "link1", "h", 3)], [], [], now=1.0, cap=None)
    [row] = await seen.load_seen(store, "f", ["new-id"], ["link1"])
    assert (row.id, row.revision) == ("old", 3)
