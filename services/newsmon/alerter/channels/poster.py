"""A lean keep-alive HTTP/1.1 POST for webhooks: the delivery hot path without httpx's layers.

Why not net's httpx client here: at a thousand deliveries a second, httpx → httpcore → anyio → h11 took three
quarters of a delivery's CPU (pyinstrument over tests/perf/bench_delivery.py), and a webhook needs little of it:
POST a small JSON body, read the status line and headers (Retry-After), drop the body, keep the connection.

The guards are net's: every new connection resolves the host through `net.public_addresses` (non-public
addresses refused unless `http.allow_private_networks`) and connects to a checked address, so DNS rebinding
cannot slip past; TLS uses the same trust roots as net's client; redirects are not followed (a 3xx is a failed
attempt); the connect has its own timeout (the whole attempt is bounded by the caller); the response head and
body are read up to caps. OS and TLS errors become FetchError here, at the boundary. A kept-alive connection that
closes before any answer (the usual race with a receiver's idle timeout) is retried once on a new connection; a
receiver that did read the request then gets the same webhook-id twice, as with any retry.
"""

from __future__ import annotations

import asyncio
import base64
import ssl
import time
from dataclasses import dataclass
from typing import NamedTuple
from urllib.parse import unquote, urlsplit

from newsmon import net
from newsmon.errors import FetchError, FetchTimeout
from newsmon.settings import HttpSettings

MAX_HEAD = 64 * 1024  # a response head larger than this is not a webhook receiver's answer
MAX_BODY = 256 * 1024  # read and dropped up to this; a larger body costs the connection, not the attempt
KEEPALIVE = 30.0  # seconds an idle connection is kept


class Response(NamedTuple):
    """Status and headers (names lower-cased); the body is dropped."""

    status: int
    headers: dict[str, str]


class _Closed(FetchError):
    """The receiver closed the connection before the response was complete."""


@dataclass(frozen=True, slots=True)
class Target:
    """What a request to one URL needs, parsed once."""

    tls: bool
    host: str
    port: int
    path: str
    host_header: str
    auth: str | None

    @classmethod
    def parse(cls, url: str) -> Target:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            err = FetchError(f"unsupported URL: {url}")
            err.retriable = False
            raise err
        tls = parts.scheme == "https"
        try:
            port = parts.port or (443 if tls else 80)
        except ValueError as exc:
            err = FetchError(f"invalid port in {url}: {exc}")
            err.retriable = False
            raise err from None
        host = parts.hostname
        shown = f"[{host}]" if ":" in host else host
        default = port == (443 if tls else 80)
        auth = None
        if parts.username is not None:
            pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
            auth = "Basic " + base64.b64encode(pair.encode()).decode()
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        return cls(tls, host, port, path, shown if default else f"{shown}:{port}", auth)


class _Conn(asyncio.Protocol):
    """One connection: bytes in a buffer, a future to wait for more."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.lost = False
        self.received = 0  # bytes received, ever: tells "no answer at all" from "part of one"
        self.idle_since = 0.0
        self._waiter: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buf += data
        self.received += len(data)
        self._wake()

    def eof_received(self) -> bool:
        self.lost = True
        self._wake()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def more(self) -> None:
        """Wait for more bytes; _Closed when none will come."""
        if self.lost:
            raise _Closed("the receiver closed the connection before answering in full")
        self._waiter = asyncio.get_running_loop().create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None

    async def need(self, n: int) -> None:
        while len(self.buf) < n:
            await self.more()

    async def line(self) -> bytes:
        while (end := self.buf.find(b"\r\n")) < 0:
            if len(self.buf) > MAX_HEAD:
                raise FetchError("response line too long")
            await self.more()
        out = bytes(self.buf[:end])
        del self.buf[: end + 2]
        return out

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


async def _read(conn: _Conn) -> tuple[Response, bool]:
    """One response off `conn`; whether the connection can carry another request."""
    while True:
        while (end := conn.buf.find(b"\r\n\r\n")) < 0:
            if len(conn.buf) > MAX_HEAD:
                raise FetchError("response head too large")
            await conn.more()
        head = bytes(conn.buf[:end]).decode("latin-1").split("\r\n")
        del conn.buf[: end + 4]
        version, _, rest = head[0].partition(" ")
        code = rest[:3]
        if not (version.startswith("HTTP/1.") and code.isdigit()):
            raise FetchError(f"not an HTTP/1.x response: {head[0][:80]!r}")
        headers: dict[str, str] = {}
        for line in head[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        status = int(code)
        if status >= 200:  # 1xx answers are interim: the real one follows
            break
    keep = version == "HTTP/1.1" and "close" not in headers.get("connection", "").lower()
    if status in (204, 304):
        return Response(status, headers), keep and not conn.buf
    if "chunked" in headers.get("transfer-encoding", "").lower():
        return Response(status, headers), keep and await _chunks(conn)
    length = headers.get("content-length", "")
    if length.isdigit():
        if int(length) > MAX_BODY:
            return Response(status, headers), False
        await conn.need(int(length))
        del conn.buf[: int(length)]
        return Response(status, headers), keep and not conn.buf
    return Response(status, headers), False  # delimited by close: not worth reading


async def _chunks(conn: _Conn) -> bool:
    """Read a chunked body; False when it was too large to finish (the connection is dropped)."""
    total = 0
    while True:
        size_line = (await conn.line()).split(b";", 1)[0].strip()
        try:
            size = int(size_line, 16)
        except ValueError:
            raise FetchError(f"bad chunk size {size_line[:20]!r}") from None
        if size == 0:
            while await conn.line():  # trailers, up to the empty line
                pass
            return not conn.buf
        total += size
        if total > MAX_BODY:
            return False
        await conn.need(size + 2)
        del conn.buf[: size + 2]


class Poster:
    """POSTs to one URL over kept-alive connections (at most `max_idle` kept)."""

    def __init__(self, url: str, http: HttpSettings, ssl_context: ssl.SSLContext | None, connect_timeout: float,
                 max_idle: int) -> None:
        self.target = Target.parse(url)
        if self.target.tls and ssl_context is None:
            raise ValueError("an https URL needs an SSL context")
        self.http, self.ssl, self.connect_timeout, self.max_idle = http, ssl_context, connect_timeout, max_idle
        self._idle: list[_Conn] = []

    async def post(self, body: bytes, headers: dict[str, str]) -> Response:
        """Send one POST; the response's status and headers. FetchError (FetchTimeout, BlockedAddress) on failure."""
        t = self.target
        lines = [f"POST {t.path} HTTP/1.1", f"Host: {t.host_header}", f"User-Agent: {self.http.user_agent}",
                 f"Content-Length: {len(body)}"]
        if t.auth is not None:
            lines.append(f"Authorization: {t.auth}")
        for name, value in headers.items():
            if "\r" in value or "\n" in value:
                raise FetchError(f"header {name} has a line break")
            lines.append(f"{name}: {value}")
        request = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
        conn = self._take()
        if conn is not None:
            before = conn.received
            try:
                return await self._exchange(conn, request)
            except _Closed:
                if conn.received != before:  # part of an answer came: the receiver had the request
                    raise
        return await self._exchange(await self._connect(), request)

    async def _exchange(self, conn: _Conn, request: bytes) -> Response:
        done = False
        try:
            assert conn.transport is not None
            conn.transport.write(request)
            response, keep = await _read(conn)
            done = True
        except OSError as exc:
            raise FetchError(f"{exc.__class__.__name__}: {exc}") from None
        finally:
            if not done:
                conn.close()
        if keep and len(self._idle) < self.max_idle and not conn.lost:
            conn.idle_since = time.monotonic()
            self._idle.append(conn)
        else:
            conn.close()
        return response

    def _take(self) -> _Conn | None:
        now = time.monotonic()
        while self._idle:
            conn = self._idle.pop()
            if conn.lost or conn.buf or now - conn.idle_since > KEEPALIVE:
                conn.close()
                continue
            return conn
        return None

    async def _connect(self) -> _Conn:
        t, loop = self.target, asyncio.get_running_loop()
        addresses = await net.public_addresses(t.host, t.port, self.connect_timeout,
                                               self.http.allow_private_networks)
        last: FetchError = FetchError(f"cannot connect to {t.host}:{t.port}")
        for address in addresses:
            try:
                async with asyncio.timeout(self.connect_timeout):
                    _, conn = await loop.create_connection(
                        _Conn, address, t.port, ssl=self.ssl if t.tls else None,
                        server_hostname=t.host if t.tls else None,
                    )
                return conn
            except TimeoutError:
                last = FetchTimeout(f"connect to {t.host}:{t.port} timed out")
            except OSError as exc:  # refused, unreachable, TLS (ssl.SSLError is an OSError)
                last = FetchError(f"connect to {t.host}:{t.port}: {exc.__class__.__name__}: {exc}")
        raise last

    def close(self) -> None:
        for conn in self._idle:
            conn.close()
        self._idle.clear()
