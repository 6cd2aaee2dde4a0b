"""Feed leases in the store, on SQLite and PostgreSQL: claims are exclusive, expire, renew, and guard saves."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from newsmon.store import Store, leases
from newsmon.store import feeds as feed_store
from newsmon.store.feeds import FeedState

TTL = 60.0


def _feed(fid: str, origin: str = "config") -> FeedState:
    url = f"http://news.example/{fid}.xml"
    return FeedState(id=fid, url=url, config_url=url, interval=300, current_interval=300, origin=origin)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'leases.db'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Store]:
    store = await Store.open(db_url)
    yield store
    await store.close()


async def _ids(states: list[FeedState]) -> set[str]:
    return {s.id for s in states}


async def test_a_claimed_feed_is_not_granted_again_until_its_lease_ends(db: Store) -> None:
    await feed_store.sync_feeds(db, [_feed("a"), _feed("b")], now=100)
    got = await leases.claim(db, ["a", "b"], "p1", now=100, ttl=TTL)
    assert {(s.id, s.lease_owner, s.lease_until) for s in got} == {("a", "p1", 160), ("b", "p1", 160)}
    assert await leases.claim(db, ["a", "b"], "p2", now=150, ttl=TTL) == []
    taken = await leases.claim(db, ["a"], "p2", now=161, ttl=TTL)  # p1 died: its lease ran out
    assert [(s.id, s.lease_owner) for s in taken] == [("a", "p2")]


async def test_only_due_active_feeds_are_claimed(db: Store) -> None:
    await feed_store.sync_feeds(db, [_feed("due"), _feed("later"), _feed("paused")], now=100)
    later = await feed_store.get_feed(db, "later")
    assert later is not None
    later.next_poll = 500
    await feed_store.save_feed(db, later)
    await feed_store.set_active(db, "paused", False, now=100)
    got = await leases.claim(db, ["due", "later", "paused", "unknown"], "p1", now=200, ttl=TTL)
    assert await _ids(got) == {"due"}
    slots = {s.id: s for s in await leases.agenda(db)}
    assert set(slots) == {"due", "later"}
    assert slots["due"].due_at(200) == 260 and slots["later"].due_at(200) == 500


async def test_saving_releases_the_lease_only_for_its_holder(db: Store) -> None:
    await feed_store.sync_feeds(db, [_feed("a")], now=100)
    [mine] = await leases.claim(db, ["a"], "p1", now=100, ttl=TTL)
    [theirs] = await leases.claim(db, ["a"], "p2", now=200, ttl=TTL)  # p1 was too slow
    mine.etag, mine.next_poll = '"stale"', 400
    assert await feed_store.save_feeds(db, [mine], owner="p1") == ["a"]  # not written: p2 holds the feed now
    row = await feed_store.get_feed(db, "a")
    assert row is not None and (row.etag, row.lease_owner) == (None, "p2")
    theirs.etag, theirs.next_poll = '"fresh"', 500
    assert await feed_store.save_feeds(db, [theirs], owner="p2") == []
    row = await feed_store.get_feed(db, "a")
    assert row is not None and (row.etag, row.next_poll, row.lease_owner, row.lease_until) == (
        '"fresh"', 500, None, None)


async def test_renew_and_release(db: Store) -> None:
    await feed_store.sync_feeds(db, [_feed("a"), _feed("b")], now=100)
    await leases.claim(db, ["a", "b"], "p1", now=100, ttl=TTL)
    assert await leases.renew(db, ["a"], "p1", now=150, ttl=TTL) == 1
    assert await leases.renew(db, ["a"], "p2", now=150, ttl=TTL) == 0
    assert [s.id for s in await leases.claim(db, ["a", "b"], "p2", now=170, ttl=TTL)] == ["b"]
    assert await leases.release_all(db, "p1") == 1
    assert [s.id for s in await leases.claim(db, ["a"], "p2", now=171, ttl=TTL)] == ["a"]


async def test_racing_claims_never_share_a_feed(db_url: str) -> None:
    """Several pollers (each with its own engine) claim the same due feeds at once: every feed goes to one."""
    stores = [await Store.open(db_url) for _ in range(4)]
    try:
        ids = [f"f{i:02d}" for i in range(40)]
        await feed_store.sync_feeds(stores[0], [_feed(fid) for fid in ids], now=100)
        now = time.time()
        results = await asyncio.gather(
            *(leases.claim(s, ids, f"p{n}", now=now, ttl=TTL) for n, s in enumerate(stores) for _ in range(3))
        )
        claimed = [s.id for states in results for s in states]
        assert sorted(claimed) == ids  # each exactly once
    finally:
        for s in stores:
            await s.close()


async def test_config_sync_leaves_api_feeds_and_pauses_alone(db: Store) -> None:
    await feed_store.sync_feeds(db, [_feed("cfg"), _feed("old")], now=100)
    assert await feed_store.add_feed(db, _feed("web", origin="api")) is None
    await feed_store.set_active(db, "cfg", False, now=100)
    active = await feed_store.sync_feeds(db, [_feed("cfg"), _feed("new")], now=200)
    assert {s.id for s in active} == {"web", "new"}  # "cfg" stays paused, "old" is gone from the config
    rows = {s.id: s for s in await feed_store.list_feeds(db, include_inactive=True)}
    assert {fid: (s.origin, s.active) for fid, s in rows.items()} == {
        "cfg": ("config", False), "new": ("config", True), "web": ("api", True)}
    await feed_store.sync_feeds(db, [_feed("cfg"), _feed("web")], now=300)  # the config adopts an API feed
    web = await feed_store.get_feed(db, "web")
    assert web is not None and web.origin == "config"


async def test_adding_a_feed_twice_conflicts(db: Store) -> None:
    assert await feed_store.add_feed(db, _feed("x", origin="api")) is None
    assert "url" in (await feed_store.add_feed(db, _feed("x", origin="api")) or "")
    other = _feed("x", origin="api")
    other.url = "http://news.example/other.xml"
    assert "id" in (await feed_store.add_feed(db, other) or "")
