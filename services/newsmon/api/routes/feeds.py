"""Feeds: list with health, origin and lease; add, pause/resume, remove (pollers follow the feeds table live)."""

from __future__ import annotations

import hashlib
import time
from dataclasses import asdict
from typing import Any

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


def _view(state: FeedState) -> dict[str, Any]:
    out = {k: v for k, v in asdict(state).items() if k not in _HIDDEN}
    return out | {"health": state.health}


async def _get(request: Request, feed_id: str) -> FeedState:
    state = await feed_store.get_feed(ctx(request).store, feed_id)
    if state is None:
        raise Problem(404, f"no feed with id {feed_id!r}")
    return state


async def list_feeds(request: Request) -> Response:
    """Every feed (paused ones too) with its health, origin ('config' or 'api') and the poller holding it."""
    states = await feed_store.list_feeds(ctx(request).store, include_inactive=True)
    return reply([_view(s) for s in states])


async def get_feed(request: Request) -> Response:
    return reply(_view(await _get(request, request.path_params["feed_id"])))


async def add_feed(request: Request) -> Response:
    """Store a new feed, due now (a running poller picks it up at its next reload)."""
    body = await read_body(request, FeedIn)
    fid = body.id or "api-" + hashlib.sha256(body.url.encode()).hexdigest()[:12]
    state = FeedState(id=fid, url=body.url, config_url=body.url, interval=body.interval,
                      current_interval=body.interval, name=body.name, lang=body.lang, next_poll=time.time(),
                      origin="api")
    conflict = await feed_store.add_feed(ctx(request).store, state)
    if conflict is not None:
        raise Problem(409, conflict)
    return reply(_view(state), status=201, headers={"Location": f"/api/v1/feeds/{fid}"})


async def patch_feed(request: Request) -> Response:
    """Pause (active=false) or resume a feed."""
    fid = request.path_params["feed_id"]
    body = await read_body(request, FeedPatch)
    await _get(request, fid)
    await feed_store.set_active(ctx(request).store, fid, body.active, time.time())
    return reply(_view(await _get(request, fid)))


async def remove_feed(request: Request) -> Response:
    """Remove a feed added through the API (config feeds are removed from the config file)."""
    fid = request.path_params["feed_id"]
    state = await _get(request, fid)
    if state.origin == "config":
        raise Problem(409, f"feed {fid!r} is defined in the config file; remove it there (or pause it)")
    await feed_store.remove_feed(ctx(request).store, fid)
    return Response(status_code=204)


ROUTES = [
    Route("/api/v1/feeds", list_feeds, methods=["GET"]),
    Route("/api/v1/feeds", add_feed, methods=["POST"]),
    Route("/api/v1/feeds/{feed_id}", get_feed, methods=["GET"]),
    Route("/api/v1/feeds/{feed_id}", patch_feed, methods=["PATCH"]),
    Route("/api/v1/feeds/{feed_id}", remove_feed, methods=["DELETE"]),
]
