"""The demo's two loopback servers: a feed host and a Standard Webhooks receiver that verifies and prints."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import socket
from collections.abc import Callable
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


def verify_signature(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """Check a Standard Webhooks signature the way a subscriber would."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    offered = [s.split(",", 1)[1] for s in headers.get("webhook-signature", "").split() if s.startswith("v1,")]
    return any(hmac.compare_digest(expected, sig) for sig in offered)


class LoopbackServer:
    """A Starlette app served by uvicorn on 127.0.0.1 on a free port, inside the running event loop."""

    def __init__(self, app: Starlette) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self.port: int = self._sock.getsockname()[1]
        self._server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off"))
        self._task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._task = asyncio.create_task(self._server.serve(sockets=[self._sock]))
        while not self._server.started:  # noqa: ASYNC110  (uvicorn offers no started event)
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        self._server.should_exit = True
        if self._task is not None:
            await self._task


def feed_host(feeds: dict[str, bytes]) -> LoopbackServer:
    """Serves `feeds[path]` (the dict may change while serving)."""

    async def serve(request: Request) -> Response:
        body = feeds.get(request.url.path)
        if body is None:
            return Response(status_code=404)
        return Response(body, media_type="application/rss+xml; charset=utf-8")

    return LoopbackServer(Starlette(routes=[Route("/{path:path}", serve)]))


def webhook_receiver(secret: str, on_alert: Callable[[dict[str, Any], bool], None]) -> LoopbackServer:
    """Receives webhooks, verifies them, hands each body to `on_alert(body, verified)`."""

    async def receive(request: Request) -> Response:
        body = await request.body()
        headers = {k.lower(): v for k, v in request.headers.items()}
        ok = "webhook-id" in headers and verify_signature(secret, headers, body)
        on_alert(json.loads(body), ok)
        return Response(status_code=204 if ok else 400)

    return LoopbackServer(Starlette(routes=[Route("/hook", receive, methods=["POST"])]))
