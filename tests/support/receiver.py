"""A real loopback webhook receiver for tests: records every request, answers from a per-path script.

    async with Receiver() as rx:
        rx.script("/flaky", [Reply(503), Reply(503)])      # then 200s
        rx.script("/slow", [Reply(429, {"retry-after": "1"})])
        rx.script("/dead", [Reply(hang=True)] * 10)        # never answers (until the receiver stops)
        url = rx.url("/flaky")
        ...
        await rx.wait_for(3, "/flaky")
        rx.requests_to("/flaky")[0].headers["webhook-id"]

A small HTTP/1.1 server on asyncio streams (keep-alive, Content-Length bodies), so it is fast enough for the
delivery benchmark and has no dependency beyond the standard library.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import defaultdict
from dataclasses import dataclass, field
from types import TracebackType

from tests.support.http import parse_head

_REASONS = {
    200: "OK",
    204: "No Content",
    400: "Bad Request",
    404: "Not Found",
    410: "Gone",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


@dataclass(frozen=True)
class Reply:
    """One scripted answer: a status, headers, a body; `hang` never answers; `delay` answers late."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    hang: bool = False
    delay: float = 0.0


@dataclass(frozen=True)
class Request:
    """One request as received."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float
    status: int | None = None


class Receiver:
    """Loopback HTTP receiver with scripted replies per path (default: 200)."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = 0
        self.requests: list[Request] = []
        self._scripts: dict[str, list[Reply]] = defaultdict(list)
        self._seen: dict[str, int] = defaultdict(int)
        self._default: dict[str, Reply] = {}
        self._server: asyncio.Server | None = None
        self._release = asyncio.Event()
        self._changed = asyncio.Condition()
        self._writers: set[asyncio.StreamWriter] = set()

    async def __aenter__(self) -> Receiver:
        await self.start()
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        self._release.set()
        if self._server is not None:
            self._server.close()
            for w in list(self._writers):
                w.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    def url(self, path: str = "/hook") -> str:
        return f"http://{self.host}:{self.port}{path}"

    def script(self, path: str, replies: list[Reply], then: Reply | None = None) -> None:
        """Answer the next requests to `path` with `replies` in order, then with `then` (default 200)."""
        self._scripts[path] = list(replies)
        self._seen[path] = 0
        if then is not None:
            self._default[path] = then

    def requests_to(self, path: str) -> list[Request]:
        return [r for r in self.requests if r.path == path]

    async def wait_for(self, count: int, path: str | None = None, within: float = 15.0) -> list[Request]:
        """Wait until `count` requests (to `path`, or any) have been answered."""

        def got() -> list[Request]:
            return [r for r in self.requests if path is None or r.path == path]

        async with asyncio.timeout(within), self._changed:
            await self._changed.wait_for(lambda: len(got()) >= count)
        return got()

    def _reply_for(self, path: str) -> Reply:
        n = self._seen[path]
        self._seen[path] = n + 1
        script = self._scripts.get(path, [])
        return script[n] if n < len(script) else self._default.get(path, Reply())

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                method, target, headers = parse_head(head)
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                reply = self._reply_for(target)
                if reply.hang:  # recorded with no status: it was received, never answered
                    await self._record(Request(method, target, headers, body, time.time(), None))
                    await self._release.wait()
                    return
                if reply.delay:
                    await asyncio.sleep(reply.delay)
                await self._record(Request(method, target, headers, body, time.time(), reply.status))
                extra = "".join(f"{k}: {v}\r\n" for k, v in reply.headers.items())
                writer.write(
                    f"HTTP/1.1 {reply.status} {_REASONS.get(reply.status, 'Status')}\r\n"
                    f"content-length: {len(reply.body)}\r\n{extra}\r\n".encode()
                    + reply.body
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()

    async def _record(self, req: Request) -> None:
        async with self._changed:
            self.requests.append(req)
            self._changed.notify_all()
