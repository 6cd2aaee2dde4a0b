"""Request size cap and request counting (ASGI middleware): oversized bodies get 413 before any route."""

from __future__ import annotations

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .metrics import API_REQUESTS
from .problems import problem_response

MAX_BODY = 256 * 1024


class _TooLarge(Exception):
    pass


class LimitMiddleware:
    """Caps request bodies at `max_body` bytes (declared or streamed) and counts responses."""

    def __init__(self, app: ASGIApp, max_body: int = MAX_BODY) -> None:
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = {"code": 500}
        too_large = problem_response(Request(scope), 413, f"request body over {self.max_body} bytes")
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > self.max_body:
                await too_large(scope, receive, send)
                return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_body:
                raise _TooLarge
            return message

        async def counted(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, limited, counted)
        except _TooLarge:
            await too_large(scope, receive, send)
        finally:
            API_REQUESTS.labels(scope["method"], f"{status['code'] // 100}xx").inc()
