"""A real loopback HTTP/1.1 feed server for tests: bytes per path, controllable status, headers and delays.

Runs its own event loop in a thread, so sync tests (CLI subprocesses) and async tests can both use it:

    with FeedServer() as srv:
        srv.route("/rss", body=b"<rss>...</rss>", etag='"v1"')
        url = srv.url("/rss")
        ...
        assert srv.count("/rss") == 2

Features: conditional GET (`etag` / `last_modified` → 304), `delay` before answering, `hang` (accept and never
answer), `stream_size` (a generated body of that many bytes, sent in chunks, never held in memory),
per-request `handler` callables, keep-alive, and a record of every request's method, path, headers and body.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tests.support.http import parse_head

_REASONS = {
    200: "OK",
    301: "Moved Permanently",
    302: "Found",
    304: "Not Modified",
    307: "Temporary Redirect",
    308: "Permanent Redirect",
    404: "Not Found",
    410: "Gone",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


@dataclass(frozen=True, slots=True)
class Request:
    """One request as the server saw it."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes = b""


@dataclass(slots=True)
class Reply:
    """What a handler answers."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class Route:
    """How one path answers."""

    body: bytes = b""
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    etag: str | None = None
    last_modified: str | None = None
    delay: float = 0.0
    hang: bool = False
    stream_size: int | None = None
    handler: Callable[[Request], Reply] | None = None


class FeedServer:
    """The server; start/stop it or use it as a context manager."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = 0
        self.routes: dict[str, Route] = {}
        self.requests: list[Request] = []
        self.in_flight = 0
        self.max_in_flight = 0  # most requests being answered at once (politeness checks)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None
        self._ready = threading.Event()
        self._writers: set[asyncio.StreamWriter] = set()

    def __enter__(self) -> FeedServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        """Start serving in a background thread; returns once the port is bound."""
        self._thread = threading.Thread(target=self._serve, name="feedserver", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("feed server did not start")

    def stop(self) -> None:
        """Close every connection and stop the thread."""
        if self._loop is None or self._thread is None:
            return
        asyncio.run_coroutine_threadsafe(self._close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop = None

    def url(self, path: str) -> str:
        """The full URL of a path on this server."""
        return f"http://{self.host}:{self.port}{path}"

    def route(self, path: str, body: bytes = b"", **options: Any) -> Route:
        """Serve `body` (and options of `Route`) at `path`; replaces an earlier route."""
        self.routes[path] = Route(body=body, **options)
        return self.routes[path]

    def count(self, path: str) -> int:
        """How many requests reached `path`."""
        return sum(1 for r in self.requests if r.path == path)

    def _serve(self) -> None:
        self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(
            asyncio.start_server(self._client, self.host, 0, backlog=1024)
        )
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()
        self._loop.close()

    async def _close(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.close()
        for task in asyncio.all_tasks():
            if task is not asyncio.current_task():
                task.cancel()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            while True:
                request = await _read_request(reader)
                if request is None:
                    break
                self.requests.append(request)
                self.in_flight += 1
                self.max_in_flight = max(self.max_in_flight, self.in_flight)
                try:
                    keep = await self._answer(request, writer)
                finally:
                    self.in_flight -= 1
                if not keep or request.headers.get("connection", "").lower() == "close":
                    break
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        except asyncio.CancelledError:  # the server is stopping: end quietly
            pass
        finally:
            self._writers.discard(writer)
            writer.close()

    async def _answer(self, request: Request, writer: asyncio.StreamWriter) -> bool:
        route = self.routes.get(request.path) or self.routes.get(request.path.split("?", 1)[0])
        if route is None:
            await _write(writer, Reply(404, b"not found"))
            return True
        if route.hang:
            await asyncio.Event().wait()
        if route.delay:
            await asyncio.sleep(route.delay)
        if route.handler is not None:
            await _write(writer, route.handler(request))
            return True
        headers = dict(route.headers)
        if route.etag:
            headers["ETag"] = route.etag
        if route.last_modified:
            headers["Last-Modified"] = route.last_modified
        if route.status == 200 and _not_modified(route, request):
            await _write(writer, Reply(304, b"", headers))
            return True
        if route.stream_size is not None:
            await _stream(writer, route, headers)
            return False
        await _write(writer, Reply(route.status, route.body, headers))
        return True


def _not_modified(route: Route, request: Request) -> bool:
    if route.etag and request.headers.get("if-none-match") == route.etag:
        return True
    return bool(route.last_modified and request.headers.get("if-modified-since") == route.last_modified)


async def _read_request(reader: asyncio.StreamReader) -> Request | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    method, path, headers = parse_head(head)
    length = int(headers.get("content-length", "0") or 0)
    body = await reader.readexactly(length) if length else b""
    return Request(method, path, headers, body)


async def _write(writer: asyncio.StreamWriter, reply: Reply) -> None:
    headers = {"Content-Type": "application/xml", **reply.headers}
    body = b"" if reply.status == 304 else reply.body
    if reply.status != 304:
        headers["Content-Length"] = str(len(body))
    head = f"HTTP/1.1 {reply.status} {_REASONS.get(reply.status, 'Status')}\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    writer.write(head.encode("latin-1") + body)
    await writer.drain()


async def _stream(writer: asyncio.StreamWriter, route: Route, headers: dict[str, str]) -> None:
    size = route.stream_size or 0
    head = f"HTTP/1.1 {route.status} OK\r\nContent-Type: application/xml\r\nConnection: close\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    writer.write(head.encode("latin-1"))
    chunk = b"<rss><channel>" + b"x" * (64 * 1024 - 14)
    sent = 0
    while sent < size:
        piece = chunk[: size - sent]
        writer.write(piece)
        await writer.drain()
        sent += len(piece)
