"""CLI subcommands owned by the poller: `newsmon fetch URL` and `newsmon feeds`."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from typing import Any

from newsmon.errors import NewsmonError


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add this service's subcommands to the parser."""
    p = sub.add_parser(
        "fetch", parents=[common], help="fetch and parse one feed, print its articles as JSON lines"
    )
    p.add_argument("url", help="feed URL (http or https)")
    p.add_argument(
        "--allow-private",
        action="store_true",
        help="allow loopback/private addresses (local testing); same as http.allow_private_networks",
    )
    p.set_defaults(func=fetch_command)
    p = sub.add_parser("feeds", parents=[common], help="list feeds with their health, origin and lease holder")
    p.add_argument("--json", action="store_true", help="one JSON object per feed")
    p.set_defaults(func=feeds_command)


def fetch_command(args: argparse.Namespace) -> int:
    """`newsmon fetch URL`: exit 0 with JSON lines on stdout, or one error line and exit 1."""
    from newsmon import log
    from newsmon.settings import load_settings

    settings = load_settings(args.config)
    if args.allow_private:
        settings.http = settings.http.model_copy(update={"allow_private_networks": True})
    log.setup("error", settings.log.format)
    try:
        lines = asyncio.run(_fetch(settings, args.url))
    except NewsmonError:
        raise
    except Exception as exc:  # never a traceback on the command line
        raise NewsmonError(f"{exc.__class__.__name__}: {exc}") from None
    try:
        sys.stdout.write("".join(line + "\n" for line in lines))
        sys.stdout.flush()
    except BrokenPipeError:
        pass
    return 0


async def _fetch(settings: Any, url: str) -> list[str]:
    from datetime import UTC, datetime
    from urllib.parse import urlsplit

    from newsmon import net
    from newsmon.poller import parser, processor
    from newsmon.poller.feedlist import feed_id
    from newsmon.poller.fetcher import fetch
    from newsmon.settings import FeedSettings

    if urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).hostname:
        raise NewsmonError(f"not an http(s) URL: {url}")
    fid = feed_id(FeedSettings(url=url))
    async with net.create_client(settings.http) as client:
        fetched = await fetch(client, url, settings.http)
    feed = parser.parse(fetched.body, url=fetched.url, content_type=fetched.content_type)
    drafts = processor.process(feed, feed_id=fid, feed_url=url, fetched_at=datetime.now(UTC))
    items = processor.resolve(drafts, processor.Known())
    return [item.article.model_dump_json() for item in items]


def feeds_command(args: argparse.Namespace) -> int:
    """`newsmon feeds`: every feed (config and API) with its health, origin and the poller holding it."""
    from newsmon.settings import load_settings

    settings = load_settings(args.config)
    rows = asyncio.run(_feed_rows(settings))
    if args.json:
        for row in rows:
            print(json.dumps(row, default=str))
        return 0
    print(
        f"{'ID':<20} {'HEALTH':<8} {'ORIGIN':<6} {'STREAK':>6} {'LAST OK':>9} {'NEXT':>8} {'EVERY':>7} "
        f"{'GAPS':>4}  {'LEASE':<28} URL"
    )
    pad = " " * 73
    for r in rows:
        health = r["health"] if r["active"] else "paused"
        lease = r["lease_owner"] if r["lease_owner"] and (r["lease_until"] or 0) > time.time() else "-"
        print(
            f"{r['id'][:20]:<20} {health:<8} {r['origin']:<6} {r['error_streak']:>6} "
            f"{_ago(r['last_success']):>9} {_ago(r['next_poll'], future=True):>8} {r['interval']:>6.0f}s "
            f"{r['gaps']:>4}  {lease[:28]:<28} {r['url']}"
        )
        if r["error_streak"] and r["last_error"]:
            print(f"{pad}! {r['last_error'][:160]}")
    return 0


async def _feed_rows(settings: Any) -> list[dict[str, Any]]:
    from newsmon.poller.feedlist import configured_feeds
    from newsmon.store import Store
    from newsmon.store import feeds as feed_store

    store = await Store.open(settings.store.url)
    try:
        stored = {s.id: s for s in await feed_store.list_feeds(store, include_inactive=True)}
    finally:
        await store.close()
    for state in configured_feeds(settings):
        stored.setdefault(state.id, state)
    return [
        {
            "id": s.id,
            "url": s.url,
            "health": s.health,
            "active": s.active,
            "origin": s.origin,
            "lease_owner": s.lease_owner,
            "lease_until": s.lease_until,
            "error_streak": s.error_streak,
            "last_error": s.last_error,
            "last_success": s.last_success,
            "next_poll": s.next_poll,
            "interval": s.current_interval,
            "items_per_day": s.items_per_day,
            "gaps": s.gaps,
            "polls": s.polls,
            "title": s.title,
        }
        for s in sorted(stored.values(), key=lambda s: s.id)
    ]


def _ago(when: float | None, future: bool = False) -> str:
    if not when:
        return "-"
    delta = (when - time.time()) if future else (time.time() - when)
    if future and delta <= 0:
        return "due"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if abs(delta) >= size:
            return f"{delta / size:.0f}{unit}"
    return f"{delta:.0f}s"
