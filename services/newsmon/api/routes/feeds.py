"""Feeds: list with health; add, pause/resume, remove (stored; the poller reads the feeds table)."""

from __future__ import annotations

import hashlib
import time
from dataclasses import asdict
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from newsmon.store import feeds as feed_store
from newsmon.store.feeds import FeedState

from ..bodies import read_body
from ..context import ctx, reply
from ..models import FeedIn, FeedPatch
from ..problems import Problem

_HIDDEN = {"websub_secret", "etag", "last_modified", "body_hash"}


def _configured_urls(request: Request) -> set[str]:
    return {str(f.url) for f in ctx(request).settings.feeds}


def _view(state: FeedState, configured: set[str]) -> dict[str, Any]:
    out = {k: v for k, v in asdict(state).items() if k not in _HIDDEN}
    return out | {"health": state.health, "origin": "config" if state.config_url in configured else "api"}


async def _get(request: Request, feed_id: str) -> FeedState:
    for state in await feed_store.list_feeds(ctx(request).store, include_inactive=True):
        if state.id == feed_id:
            return state
    raise Problem(404, f"no feed with id {feed_id!r}")


async def list_feeds(request: Request) -> Response:
    """Every feed (paused ones too) with its health."""
    configured = _configured_urls(request)
    states = await feed_store.list_feeds(ctx(request).store, include_inactive=True)
    return reply([_view(s, configured) for s in states])


async def get_feed(request: Request) -> Response:
    return reply(_view(await _get(request, request.path_params["feed_id"]), _configured_urls(request)))


async def add_feed(request: Request) -> Response:
    """Store a new feed, due now."""
    body = await read_body(request, FeedIn)
    fid = body.id or "api-" + hashlib.sha256(body.url.encode()).hexdigest()[:12]
    state = FeedState(id=fid, url=body.url, config_url=body.url, interval=body.interval,
                      current_interval=body.interval, name=body.name, lang=body.lang, next_poll=time.time())
    store = ctx(request).store
    try:
        async with store.engine.begin() as conn:
            if (await conn.execute(select(feed_store.feeds.c.id).where(
                    feed_store.feeds.c.url == body.url))).first() is not None:
                raise Problem(409, f"a feed with url {body.url!r} exists")
            await conn.execute(feed_store.feeds.insert().values(**asdict(state)))
    except IntegrityError:
        raise Problem(409, f"a feed with id {fid!r} exists") from None
    return reply(_view(state, set()), status=201, headers={"Location": f"/api/v1/feeds/{fid}"})


async def patch_feed(request: Request) -> Response:
    """Pause (active=false) or resume a feed."""
    fid = request.path_params["feed_id"]
    body = await read_body(request, FeedPatch)
    await _get(request, fid)
    table = feed_store.feeds
    async with ctx(request).store.engine.begin() as conn:
        values: dict[str, Any] = {"active": body.active}
        if body.active:
            values["next_poll"] = time.time()
        await conn.execute(update(table).where(table.c.id == fid).values(**values))
    return reply(_view(await _get(request, fid), _configured_urls(request)))


async def remove_feed(request: Request) -> Response:
    """Remove a feed added through the API (config feeds are removed from the config file)."""
    fid = request.path_params["feed_id"]
    state = await _get(request, fid)
    if state.config_url in _configured_urls(request):
        raise Problem(409, f"feed {fid!r} is defined in the config file; remove it there (or pause it)")
    async with ctx(request).store.engine.begin() as conn:
        await conn.execute(delete(feed_store.feed_items).where(feed_store.feed_items.c.feed_id == fid))
        await conn.execute(delete(feed_store.feeds).where(feed_store.feeds.c.id == fid))
    return Response(status_code=204)


ROUTES = [
    Route("/api/v1/feeds", list_feeds, methods=["GET"]),
    Route("/api/v1/feeds", add_feed, methods=["POST"]),
    Route("/api/v1/feeds/{feed_id}", get_feed, methods=["GET"]),
    Route("/api/v1/feeds/{feed_id}", patch_feed, methods=["PATCH"]),
    Route("/api/v1/feeds/{feed_id}", remove_feed, methods=["DELETE"]),
]
