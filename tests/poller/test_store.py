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


async def test_sync_applies_different_changes_to_many_feeds_at_once(store: Store) -> None:
    feeds = [_feed(f"f{i}", f"http://a.example/{i}") for i in range(6)]
    await feed_store.sync_feeds(store, feeds, now=100)
    for state in await feed_store.list_feeds(store):
        state.etag = f'"{state.id}"'
        await feed_store.save_feed(store, state)
    renamed, slower, moved = _feed("f0", "http://a.example/0"), _feed("f1", "http://a.example/1"), _feed("f2")
    renamed.name, slower.interval, slower.current_interval = "Desk zero", 900, 900
    also_renamed = _feed("f3", "http://a.example/3")
    also_renamed.name = "Desk three"
    synced = await feed_store.sync_feeds(store, [renamed, slower, moved, also_renamed, *feeds[4:]], now=200)
    by_id = {s.id: s for s in synced}
    assert set(by_id) == {"f0", "f1", "f2", "f3", "f4", "f5"}
    assert (by_id["f0"].name, by_id["f0"].etag) == ("Desk zero", '"f0"')
    assert (by_id["f3"].name, by_id["f3"].interval) == ("Desk three", 300)
    assert (by_id["f1"].interval, by_id["f1"].current_interval, by_id["f1"].etag) == (900, 900, '"f1"')
    assert (by_id["f2"].url, by_id["f2"].etag, by_id["f2"].next_poll) == ("http://a.example/rss", None, 200)
    assert all(by_id[f].etag == f'"{f}"' and by_id[f].next_poll == 100 for f in ("f0", "f1", "f3", "f4", "f5"))


async def test_seen_rows_are_found_by_id_or_link_and_edits_are_stored(store: Store) -> None:
    await feed_store.sync_feeds(store, [_feed(), _feed("g", "http://g.example/rss")], now=0)
    await seen.remember(store, "f", [SeenRow("a", "la", "h1", 1), SeenRow("b", None, "h2", 1)], [], [], 1.0, None)
    await seen.remember(store, "g", [SeenRow("a", "la", "other", 1)], [], [], 1.0, None)
    await seen.remember(store, "f", [], [SeenRow("a", "la2", "h1b", 2), SeenRow("b", None, "h2b", 2)], [], 2.0, None)
    rows = sorted(await seen.load_seen(store, "f", ["b"], ["la2"]), key=lambda r: r.id)
    assert rows == [SeenRow("a", "la2", "h1b", 2), SeenRow("b", None, "h2b", 2)]  # only this feed's rows
    assert await seen.load_seen(store, "f", [], []) == []
