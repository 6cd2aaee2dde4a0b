"""Feeds: list with health, add, pause/resume, remove; config feeds cannot be removed through the API."""

from __future__ import annotations

from newsmon.store import feeds as feed_store
from newsmon.store.feeds import FeedState
from tests.api.conftest import Api
from tests.api.test_auth import assert_problem


async def _configured(api: Api) -> None:
    url = str(api.settings.feeds[0].url)
    await feed_store.sync_feeds(api.store, [FeedState(id="cfg-feed", url=url, config_url=url, interval=300,
                                                      current_interval=300, name="Configured")], now=1.0)


async def test_add_pause_resume_remove(api: Api) -> None:
    async with api.client(api.admin) as c:
        r = await c.post("/api/v1/feeds", json={"url": "https://example.org/rss", "name": "Example",
                                                "lang": "ar", "interval": "10m"})
        assert r.status_code == 201, r.text
        feed = r.json()
        assert r.headers["location"] == f"/api/v1/feeds/{feed['id']}"
        assert feed["interval"] == 600 and feed["active"] is True and feed["health"] == "new"
        assert feed["origin"] == "api"
        stored = {f.id: f for f in await feed_store.list_feeds(api.store)}
        assert stored[feed["id"]].url == "https://example.org/rss"  # what the poller reads

        r = await c.patch(f"/api/v1/feeds/{feed['id']}", json={"active": False})
        assert r.status_code == 200 and r.json()["active"] is False
        assert feed["id"] not in {f.id for f in await feed_store.list_feeds(api.store)}
        r = await c.patch(f"/api/v1/feeds/{feed['id']}", json={"active": True})
        assert r.json()["active"] is True

        assert (await c.delete(f"/api/v1/feeds/{feed['id']}")).status_code == 204
        assert_problem(await c.get(f"/api/v1/feeds/{feed['id']}"), 404)


async def test_duplicates_conflict(api: Api) -> None:
    async with api.client(api.admin) as c:
        r = await c.post("/api/v1/feeds", json={"url": "https://example.org/a", "id": "one"})
        assert r.status_code == 201
        assert_problem(await c.post("/api/v1/feeds", json={"url": "https://example.org/a"}), 409)
        assert_problem(await c.post("/api/v1/feeds", json={"url": "https://example.org/b", "id": "one"}), 409)


async def test_list_shows_health_and_hides_secrets(api: Api) -> None:
    await _configured(api)
    state = (await feed_store.list_feeds(api.store))[0]
    state.error_streak, state.last_error, state.etag, state.websub_secret = 3, "HTTP 503", '"v1"', "s3cret"
    await feed_store.save_feed(api.store, state)
    async with api.client(api.read) as c:
        feeds = (await c.get("/api/v1/feeds")).json()
    assert [(f["id"], f["health"], f["error_streak"], f["last_error"], f["origin"]) for f in feeds] == [
        ("cfg-feed", "failing", 3, "HTTP 503", "config")]
    assert "s3cret" not in str(feeds) and "etag" not in feeds[0]


async def test_config_feeds_are_removed_in_the_config(api: Api) -> None:
    await _configured(api)
    async with api.client(api.admin) as c:
        body = assert_problem(await c.delete("/api/v1/feeds/cfg-feed"), 409)
        assert "config" in str(body["detail"])
        assert (await c.patch("/api/v1/feeds/cfg-feed", json={"active": False})).status_code == 200


async def test_feeds_added_through_the_api_survive_a_config_sync(api: Api) -> None:
    async with api.client(api.admin) as c:
        r = await c.post("/api/v1/feeds", json={"url": "https://example.org/live.xml", "id": "live"})
        assert r.status_code == 201
        await _configured(api)  # what every poller does when it starts
        feeds = {f["id"]: f for f in (await c.get("/api/v1/feeds")).json()}
        assert {fid: (f["origin"], f["active"]) for fid, f in feeds.items()} == {
            "cfg-feed": ("config", True), "live": ("api", True)}
        assert feeds["live"]["lease_owner"] is None


async def test_origin_is_stored_not_guessed_from_the_config(api: Api) -> None:
    url = "https://example.org/moved.xml"  # a config feed whose URL is not (or no longer) in this API's config
    await feed_store.sync_feeds(api.store, [FeedState(id="elsewhere", url=url, config_url=url, interval=300,
                                                      current_interval=300)], now=1.0)
    async with api.client(api.admin) as c:
        assert (await c.get("/api/v1/feeds/elsewhere")).json()["origin"] == "config"
        assert_problem(await c.delete("/api/v1/feeds/elsewhere"), 409)
