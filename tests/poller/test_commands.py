"""`newsmon fetch` and `newsmon feeds` through the real command line against a loopback feed server."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.poller.conftest import rss
from tests.support.feedserver import FeedServer


def newsmon(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "newsmon.cli", *args], capture_output=True, text=True, timeout=60
    )


def test_fetch_prints_articles_as_json_lines(feedserver: FeedServer) -> None:
    feedserver.route(
        "/rss",
        rss(
            [
                ("g1", "http://news.example/1", "Convoy crosses the bridge"),
                ("g2", "http://news.example/2", "Market opens higher"),
            ]
        ),
    )
    result = newsmon("fetch", feedserver.url("/rss"), "--allow-private")
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [a["title"] for a in lines] == ["Convoy crosses the bridge", "Market opens higher"]
    assert all(a["id"].startswith("a_") and a["url"] for a in lines)


def test_fetch_respects_the_config_http_settings(tmp_path: Path, feedserver: FeedServer) -> None:
    feedserver.route("/rss", rss([("g1", "http://news.example/1", "A")]))
    config = tmp_path / "newsmon.toml"
    config.write_text("[http]\nallow_private_networks = true\n", encoding="utf-8")
    result = newsmon("fetch", feedserver.url("/rss"), "--config", str(config))
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == 1


@pytest.mark.parametrize(
    ("route", "args", "message"),
    [
        (
            {"body": b"<html><body>no feed here</body></html>", "headers": {"Content-Type": "text/html"}},
            ["--allow-private"],
            "not a feed",
        ),
        ({"status": 404}, ["--allow-private"], "404"),
        ({"body": b"<rss/>"}, [], "non-public address"),
    ],
    ids=["not-a-feed", "404", "private-refused"],
)
def test_fetch_errors_are_one_line(
    feedserver: FeedServer, route: dict[str, object], args: list[str], message: str
) -> None:
    feedserver.route("/x", **route)  # type: ignore[arg-type]
    result = newsmon("fetch", feedserver.url("/x"), *args)
    assert result.returncode == 1
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1 and message in result.stderr
    assert "Traceback" not in result.stderr


def test_fetch_rejects_a_non_http_url() -> None:
    result = newsmon("fetch", "file:///etc/passwd")
    assert result.returncode == 1 and "not an http(s) URL" in result.stderr


def test_feeds_lists_configured_feeds_with_health(tmp_path: Path, feedserver: FeedServer) -> None:
    feedserver.route("/rss", rss([("g1", "http://news.example/1", "A")]))
    config = tmp_path / "newsmon.toml"
    config.write_text(
        f'data_dir = "{tmp_path}"\n[[feeds]]\nid = "local"\nurl = "{feedserver.url("/rss")}"\n'
        '[[feeds]]\nid = "other"\nurl = "https://example.org/feed.xml"\n',
        encoding="utf-8",
    )
    result = newsmon("feeds", "--config", str(config), "--json")
    assert result.returncode == 0, result.stderr
    rows = {r["id"]: r for r in map(json.loads, result.stdout.splitlines())}
    assert set(rows) == {"local", "other"} and rows["local"]["health"] == "new"
    table = newsmon("feeds", "--config", str(config))
    assert table.returncode == 0 and "local" in table.stdout and "HEALTH" in table.stdout


async def test_feeds_shows_health_after_polls(tmp_path: Path, feedserver: FeedServer) -> None:
    from newsmon.settings import load_settings
    from newsmon.store import Store
    from tests.poller.conftest import MemoryBus, poll_once

    feedserver.route("/ok", rss([("g1", "http://news.example/1", "A")]))
    feedserver.route("/down", status=503)
    config = tmp_path / "newsmon.toml"
    config.write_text(
        f'data_dir = "{tmp_path}"\n[http]\nallow_private_networks = true\n'
        f'[[feeds]]\nid = "ok"\nurl = "{feedserver.url("/ok")}"\n'
        f'[[feeds]]\nid = "down"\nurl = "{feedserver.url("/down")}"\n',
        encoding="utf-8",
    )
    settings = load_settings(config)
    store = await Store.open(settings.store.url)
    try:
        await poll_once(settings, MemoryBus(), store)
    finally:
        await store.close()
    out = newsmon("feeds", "--config", str(config), "--json").stdout
    rows = {r["id"]: r for r in map(json.loads, out.splitlines())}
    assert (rows["ok"]["health"], rows["down"]["health"], rows["down"]["error_streak"]) == (
        "ok",
        "failing",
        1,
    )
    assert "503" in rows["down"]["last_error"]


async def test_feeds_shows_origin_and_the_poller_holding_a_feed(tmp_path: Path) -> None:
    import time

    from newsmon.settings import load_settings
    from newsmon.store import Store, leases
    from newsmon.store import feeds as feed_store
    from newsmon.store.feeds import FeedState

    config = tmp_path / "newsmon.toml"
    config.write_text(f'data_dir = "{tmp_path}"\n[[feeds]]\nid = "cfg"\nurl = "https://example.org/a.xml"\n',
                      encoding="utf-8")
    settings = load_settings(config)
    store = await Store.open(settings.store.url)
    try:
        url = "https://example.org/b.xml"
        web = FeedState(id="web", url=url, config_url=url, interval=300, current_interval=300, origin="api")
        assert await feed_store.add_feed(store, web) is None
        assert len(await leases.claim(store, ["web"], "host-b:42:beef", time.time(), ttl=600)) == 1
    finally:
        await store.close()
    listing = newsmon("feeds", "--config", str(config), "--json").stdout
    rows = {r["id"]: r for r in map(json.loads, listing.splitlines())}
    assert {fid: (r["origin"], r["lease_owner"]) for fid, r in rows.items()} == {
        "cfg": ("config", None), "web": ("api", "host-b:42:beef")}
    table = newsmon("feeds", "--config", str(config)).stdout.splitlines()
    assert "ORIGIN" in table[0] and "LEASE" in table[0]
    web_line = next(line for line in table if line.startswith("web "))
    assert " api " in web_line and "host-b:42:beef" in web_line
