"""Server-Sent Events: `/api/v1/stream` sends `alert` and `match` events as they happen, with keep-alives."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from .context import ctx
from .live import Hub

KEEPALIVE = 15.0


def frame(event: str, data: str) -> bytes:
    """One SSE frame (data is single-line JSON)."""
    return f"event: {event}\ndata: {data}\n\n".encode()


async def _events(request: Request, hub: Hub) -> AsyncIterator[bytes]:
    queue = hub.subscribe()
    try:
        yield b"retry: 3000\n: connected\n\n"
        while not hub.closed.is_set():
            try:
                item = await asyncio.wait_for(queue.get(), timeout=KEEPALIVE)
            except TimeoutError:
                if await request.is_disconnected():
                    return
                yield b": keep-alive\n\n"
                continue
            if item is None:
                return
            yield frame(*item)
    finally:
        hub.unsubscribe(queue)


async def stream(request: Request) -> Response:
    """The live stream (EventSource may pass the token as ?token=)."""
    return StreamingResponse(_events(request, ctx(request).hub), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


ROUTES = [Route("/api/v1/stream", stream, methods=["GET"])]
