"""The connection pool under `net`'s client: httpcore connections, kept alive per origin, reused LIFO.

Why not httpcore's own pool: every request start and end rescans all of its connections, and for each idle one
recounts the whole list and polls its socket, so the CPU per request grows with the square of the pool size
(at 64 keep-alive connections that was most of a request's cost). Here a request takes one idle connection of
its origin (checked once: still idle, not expired, not closed by the server) or opens a new one; a semaphore
bounds requests in flight; idle connections are capped and swept for expiry now and then. The connections
themselves (HTTP/1.1 framing, TLS, the network backend that carries `net`'s address guard) are httpcore's.
Only `net` imports this module.
The connections run on `net_stream.AsyncioBackend`.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import AsyncIterable, AsyncIterator

import httpcore

_Key = tuple[bytes, bytes, int]
_IDEMPOTENT = (b"GET", b"HEAD", b"OPTIONS")


class Pool:
    """Requests in flight ≤ `max_connections`; at most `max_idle` idle connections kept for reuse."""

    def __init__(
        self,
        backend: httpcore.AsyncNetworkBackend,
        ssl_context: ssl.SSLContext,
        *,
        max_connections: int,
        max_idle: int,
        keepalive_expiry: float,
    ) -> None:
        self._backend = backend
        self._ssl_context = ssl_context
        self._slots = asyncio.Semaphore(max_connections)
        self._max_idle = max_idle
        self._expiry = keepalive_expiry
        self._idle: dict[_Key, list[httpcore.AsyncHTTPConnection]] = {}
        self._idle_count = 0
        self._busy: set[httpcore.AsyncHTTPConnection] = set()
        self._swept = time.monotonic()

    async def handle_async_request(self, request: httpcore.Request) -> httpcore.Response:
        """Send `request` on a pooled connection; the response stream gives the connection back on close."""
        timeouts = request.extensions.get("timeout", {})
        try:
            async with asyncio.timeout(timeouts.get("pool")):
                await self._slots.acquire()
        except TimeoutError:
            raise httpcore.PoolTimeout("no free connection slot in time") from None
        try:
            key, conn, response = await self._send(request)
        except BaseException:
            self._slots.release()
            raise
        return httpcore.Response(
            status=response.status,
            headers=response.headers,
            content=Body(self, key, conn, response),
            extensions=response.extensions,
        )

    async def _send(
        self, request: httpcore.Request
    ) -> tuple[_Key, httpcore.AsyncHTTPConnection, httpcore.Response]:
        url = request.url
        key = (url.scheme, url.host, url.port or (443 if url.scheme == b"https" else 80))
        conn = await self._reusable(key)
        # A kept-alive connection the server closed just now fails before any answer: GET-like requests are
        # sent again once, on a new connection (what a browser does); others fail and the caller retries.
        retry = conn is not None and request.method in _IDEMPOTENT
        while True:
            if conn is None:
                conn = httpcore.AsyncHTTPConnection(
                    origin=url.origin,
                    ssl_context=self._ssl_context,
                    keepalive_expiry=self._expiry,
                    network_backend=self._backend,
                )
            self._busy.add(conn)
            try:
                return key, conn, await conn.handle_async_request(request)
            except (httpcore.RemoteProtocolError, httpcore.ReadError, httpcore.WriteError):
                await self._drop(conn)
                if not retry:
                    raise
            except BaseException:
                await self._drop(conn)
                raise
            retry, conn = False, None

    async def _reusable(self, key: _Key) -> httpcore.AsyncHTTPConnection | None:
        idle = self._idle.get(key)
        while idle:
            conn = idle.pop()
            self._idle_count -= 1
            if not idle:
                del self._idle[key]
            if conn.is_idle() and not conn.has_expired():
                return conn
            await conn.aclose()
        return None

    async def release(self, key: _Key, conn: httpcore.AsyncHTTPConnection) -> None:
        """A response was closed: keep its connection for reuse when it can serve another request."""
        self._busy.discard(conn)
        self._slots.release()
        if not conn.is_idle() or self._idle_count >= self._max_idle:
            await conn.aclose()
        else:
            self._idle.setdefault(key, []).append(conn)
            self._idle_count += 1
        if time.monotonic() - self._swept > self._expiry / 2:
            await self._sweep()

    async def _drop(self, conn: httpcore.AsyncHTTPConnection) -> None:
        self._busy.discard(conn)
        await conn.aclose()

    async def _sweep(self) -> None:
        self._swept = time.monotonic()
        for key, idle in list(self._idle.items()):
            keep = [c for c in idle if c.is_idle() and not c.has_expired()]
            for conn in idle:
                if conn not in keep:
                    await conn.aclose()
            self._idle_count -= len(idle) - len(keep)
            if keep:
                self._idle[key] = keep
            else:
                del self._idle[key]

    async def aclose(self) -> None:
        """Close every connection, idle or busy."""
        conns = [c for idle in self._idle.values() for c in idle] + list(self._busy)
        self._idle.clear()
        self._busy.clear()
        self._idle_count = 0
        for conn in conns:
            await conn.aclose()


class Body:
    """A response body that hands its connection back to the pool when closed (once)."""

    def __init__(self, pool: Pool, key: _Key, conn: httpcore.AsyncHTTPConnection, response: httpcore.Response):
        self._pool = pool
        self._key = key
        self._conn = conn
        self._inner = response.stream
        self._open = True

    async def __aiter__(self) -> AsyncIterator[bytes]:
        assert isinstance(self._inner, AsyncIterable)
        async for chunk in self._inner:
            yield chunk

    async def aclose(self) -> None:
        if not self._open:
            return
        self._open = False
        try:
            closer = getattr(self._inner, "aclose", None)
            if closer is not None:
                await closer()
        finally:
            await self._pool.release(self._key, self._conn)
