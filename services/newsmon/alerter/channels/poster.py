"""A lean keep-alive HTTP/1.1 POST for webhooks: the delivery hot path without httpx's layers.

Why not net's httpx client here: at a thousand deliveries a second, httpx → httpcore → anyio → h11 took three
quarters of a delivery's CPU (pyinstrument over tests/perf/bench_delivery.py), and a webhook needs little of it:
POST a small JSON body, read the status line and headers (Retry-After), drop the body, keep the connection.
What is kept is the bottom layer: h11 (sans-IO) writes the request and parses the response (1xx, chunked,
Content-Length, HTTP/1.0, `Connection: close`, malformed heads); this module owns only the connections. h11 is
most of this module's CPU (about 0.1-0.15 ms a POST on a shared 2-core box, against 5 µs for hand-written framing),
the price of not maintaining an HTTP parser of our own.

The guards are net's: every new connection resolves the host through `net.public_addresses` (non-public
addresses refused unless `http.allow_private_networks`) and connects to a checked address, so DNS rebinding
cannot slip past; TLS uses the same trust roots as net's client; redirects are not followed (a 3xx is a failed
attempt); the connect has its own timeout (the whole attempt is bounded by the caller); the response head
(h11's `max_incomplete_event_size`) and body (counted here) are read up to caps. OS, TLS and h11 errors become
FetchError here, at the boundary. A kept-alive connection that closes before any answer (the usual race with a
receiver's idle timeout) is retried once on a new connection; a receiver that did read the request then gets the
same webhook-id twice, as with any retry.
"""

from __future__ import annotations

import asyncio
import base64
import ssl
import time
from dataclasses import dataclass
from typing import NamedTuple
from urllib.parse import quote, unquote, urlsplit

import h11

from newsmon import net
from newsmon.errors import FetchError, FetchTimeout
from newsmon.settings import HttpSettings

MAX_HEAD = 64 * 1024  # a response head larger than this is not a webhook receiver's answer
MAX_BODY = 256 * 1024  # read and dropped up to this; a larger body costs the connection, not the attempt
KEEPALIVE = 30.0  # seconds an idle connection is kept
_PATH_SAFE = "!#$%&'()*+,/:;=?@[]~"  # kept as they are in the request target; anything else non-ASCII is %-encoded


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
        ascii_host = host if host.isascii() else host.encode("idna").decode("ascii")
        shown = f"[{ascii_host}]" if ":" in host else ascii_host
        default = port == (443 if tls else 80)
        auth = None
        if parts.username is not None:
            pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
            auth = "Basic " + base64.b64encode(pair.encode()).decode()
        path = quote((parts.path or "/") + (f"?{parts.query}" if parts.query else ""), safe=_PATH_SAFE)
        return cls(tls, host, port, path, shown if default else f"{shown}:{port}", auth)


class _Conn(asyncio.Protocol):
    """One connection: received bytes go straight into its h11 state machine; a future waits for more."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.h11 = h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_HEAD)
        self.lost = False
        self.eof_fed = False  # h11 was told that no more bytes will come
        self.received = 0  # bytes received, ever: tells "no answer at all" from "part of one"
        self.idle_since = 0.0
        self._waiter: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.h11.receive_data(data)
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

    async def next_event(self) -> h11.Event:
        """The next event of the response; FetchError when it is malformed, _Closed when it was cut short."""
        while True:
            try:
                event = self.h11.next_event()
            except h11.RemoteProtocolError as exc:
                if self.eof_fed:  # every byte before the close parsed: the close itself came too early
                    raise _Closed(f"the receiver closed the connection before answering in full ({exc})") from None
                raise FetchError(f"malformed response: {exc}") from None
            if event is h11.PAUSED:
                raise FetchError("the receiver sent more than one response")
            if event is not h11.NEED_DATA:
                assert isinstance(event, h11.Event)
                if isinstance(event, h11.ConnectionClosed):
                    raise _Closed("the receiver closed the connection before answering")
                return event
            if self.lost:
                self.h11.receive_data(b"")  # a body delimited by the close ends here; anything else is cut short
                self.eof_fed = True
                continue
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None

    def reusable(self) -> bool:
        """Whether this connection, its last exchange complete, can carry another request (and is made ready)."""
        h = self.h11
        if self.lost or h.our_state is not h11.DONE or h.their_state is not h11.DONE or h.trailing_data[0]:
            return False
        h.start_next_cycle()
        return True

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


def _closes_after(event: h11.Response, conn: _Conn) -> bool:
    """Whether the receiver ends the connection after this response (so its body is not worth reading):
    `Connection: close` or HTTP/1.0 (h11 then makes our side MUST_CLOSE), or a body delimited by the close."""
    if conn.h11.our_state is h11.MUST_CLOSE:
        return True
    return event.status_code not in (204, 304) and not any(
        name in (b"content-length", b"transfer-encoding") for name, _ in event.headers)


async def _read(conn: _Conn) -> tuple[Response, bool]:
    """One response off `conn`; whether the connection can carry another request."""
    event = await conn.next_event()
    while isinstance(event, h11.InformationalResponse):  # 1xx answers are interim: the real one follows
        event = await conn.next_event()
    if not isinstance(event, h11.Response):
        raise FetchError(f"unexpected {type(event).__name__} instead of a response")
    response = Response(event.status_code,
                        {name.decode("latin-1"): value.decode("latin-1") for name, value in event.headers})
    if _closes_after(event, conn) or int(response.headers.get("content-length", 0)) > MAX_BODY:
        return response, False
    size = 0
    while not isinstance(event := await conn.next_event(), h11.EndOfMessage):
        if isinstance(event, h11.Data):
            size += len(event.data)
            if size > MAX_BODY:  # chunked past the cap: not read to the end, the connection is dropped
                return response, False
    return response, conn.reusable()


class Poster:
    """POSTs to one URL over kept-alive connections (at most `max_idle` kept)."""

    def __init__(self, url: str, http: HttpSettings, ssl_context: ssl.SSLContext | None, connect_timeout: float,
                 max_idle: int) -> None:
        self.target = Target.parse(url)
        if self.target.tls and ssl_context is None:
            raise ValueError("an https URL needs an SSL context")
        self.http, self.ssl, self.connect_timeout, self.max_idle = http, ssl_context, connect_timeout, max_idle
        self._idle: list[_Conn] = []
        t = self.target
        fixed = [("Host", t.host_header), ("User-Agent", http.user_agent)]
        if t.auth is not None:
            fixed.append(("Authorization", t.auth))
        self._path = t.path.encode("ascii")
        self._fixed = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in fixed]

    async def post(self, body: bytes, headers: dict[str, str]) -> Response:
        """Send one POST; the response's status and headers. FetchError (FetchTimeout, BlockedAddress) on failure."""
        try:
            request = h11.Request(method=b"POST", target=self._path, headers=[
                *self._fixed, (b"Content-Length", b"%d" % len(body)),
                *((name.encode("latin-1"), value.encode("latin-1")) for name, value in headers.items())])
        except (h11.LocalProtocolError, UnicodeEncodeError) as exc:  # a header h11 or latin-1 cannot carry
            raise FetchError(f"cannot send this request: {exc}") from None
        conn = self._take()
        if conn is not None:
            before = conn.received
            try:
                return await self._exchange(conn, request, body)
            except _Closed:
                if conn.received != before:  # part of an answer came: the receiver had the request
                    raise
        return await self._exchange(await self._connect(), request, body)

    async def _exchange(self, conn: _Conn, request: h11.Request, body: bytes) -> Response:
        done = False
        try:
            assert conn.transport is not None
            h = conn.h11
            conn.transport.write(h.send(request) + h.send(h11.Data(data=body)) + h.send(h11.EndOfMessage()))
            response, keep = await _read(conn)
            done = True
        except OSError as exc:
            raise FetchError(f"{exc.__class__.__name__}: {exc}") from None
        finally:
            if not done:
                conn.close()
        if keep and len(self._idle) < self.max_idle:
            conn.idle_since = time.monotonic()
            self._idle.append(conn)
        else:
            conn.close()
        return response

    def _take(self) -> _Conn | None:
        now = time.monotonic()
        while self._idle:
            conn = self._idle.pop()
            if conn.lost or conn.h11.trailing_data[0] or now - conn.idle_since > KEEPALIVE:
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
