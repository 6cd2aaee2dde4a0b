"""The one guarded HTTP client for every outbound request (feeds and webhooks).

Guards: every TCP connection resolves the host itself and refuses loopback, private, link-local, metadata and
other non-global addresses (unless `http.allow_private_networks`), then connects to the checked address, so
DNS rebinding cannot slip past; httpx never follows redirects (callers follow them hop by hop, each hop
passing the same guard); connect/read/write timeouts; a body-size cap and a decompressed-size cap (decoding is
`net_codec`'s). httpx and httpcore errors are translated into `newsmon.errors` here, so they never leak to the
services. Under httpx, connections are pooled by `net_pool` (httpcore's own pool costs CPU quadratic in its
size per request).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import Any

import httpcore
import httpx

from newsmon import net_codec, net_pool, net_stream
from newsmon.errors import BlockedAddress, FetchError, FetchTimeout, NewsmonError, TooLarge
from newsmon.settings import HttpSettings

ACCEPT_ENCODING = "gzip, deflate, br"


def is_blocked(address: str) -> bool:
    """True for addresses a public client must not reach (loopback, private, link-local, metadata...)."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return True
    if isinstance(ip, ipaddress.IPv6Address):
        mapped = ip.ipv4_mapped or ip.sixtofour
        if mapped is not None:
            ip = mapped
    return not ip.is_global or ip.is_multicast


class _GuardedBackend(httpcore.AsyncNetworkBackend):
    """Resolves, checks every address, then connects to a checked address (not the name)."""

    def __init__(
        self, inner: httpcore.AsyncNetworkBackend, allow_private: bool, exempt: frozenset[str]
    ) -> None:
        self._inner = inner
        self._allow_private = allow_private
        self._exempt = exempt

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await _resolve(host, port, timeout)
        if not self._allow_private and f"{host}:{port}" not in self._exempt:
            refuse_private(host, addresses)
        last: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    address, port, timeout=timeout, local_address=local_address, socket_options=socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        assert last is not None
        raise last

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise BlockedAddress("unix sockets are not allowed")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def refuse_private(host: str, addresses: list[str]) -> None:
    """BlockedAddress when any address of `host` is not public (the check every outbound connection passes)."""
    blocked = [a for a in addresses if is_blocked(a)]
    if blocked:
        raise BlockedAddress(
            f"{host} resolves to a non-public address ({blocked[0]}); set http.allow_private_networks to allow it"
        )


async def public_addresses(host: str, port: int, timeout: float | None, allow_private: bool) -> list[str]:
    """The checked addresses to connect to for host:port, for a client outside httpx (the webhook poster): the
    same lookup and refusal as `_GuardedBackend`; lookup failures come out as FetchError/FetchTimeout."""
    try:
        addresses = await _resolve(host, port, timeout)
    except httpcore.ConnectTimeout as exc:
        raise FetchTimeout(str(exc)) from None
    except httpcore.ConnectError as exc:
        raise FetchError(str(exc)) from None
    if not allow_private:
        refuse_private(host, addresses)
    return addresses


async def _resolve(host: str, port: int, limit: float | None) -> list[str]:
    host = host.strip("[]")
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
        return [host]
    except ValueError:
        pass
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(limit):
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except TimeoutError:
        raise httpcore.ConnectTimeout(f"DNS lookup of {host} timed out") from None
    except OSError as exc:
        raise httpcore.ConnectError(f"cannot resolve {host}: {exc.strerror or exc}") from None
    ordered = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if not ordered:
        raise httpcore.ConnectError(f"cannot resolve {host}")
    return ordered


def translate(exc: Exception, url: object = "") -> NewsmonError:
    """An httpx/httpcore exception as one of ours (the only place that knows httpx's tree)."""
    where = f" ({url})" if url else ""
    if isinstance(exc, NewsmonError):
        return exc
    if isinstance(exc, httpx.TimeoutException | httpcore.TimeoutException | TimeoutError):
        return FetchTimeout(f"timed out: {exc.__class__.__name__}{where}")
    if isinstance(exc, httpx.InvalidURL | httpx.UnsupportedProtocol):
        err = FetchError(f"invalid URL: {exc}{where}")
        err.retriable = False
        return err
    detail = str(exc) or exc.__class__.__name__
    return FetchError(f"{exc.__class__.__name__}: {detail}{where}")


class _TranslatingStream(httpx.AsyncByteStream):
    """A response body whose read errors come out as newsmon errors; closing it frees the connection."""

    def __init__(self, inner: net_pool.Body, url: httpx.URL) -> None:
        self._inner = inner
        self._url = url

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._inner:
                yield chunk
        except (httpcore.NetworkError, httpcore.TimeoutException, httpcore.ProtocolError) as exc:
            raise translate(exc, self._url) from exc

    async def aclose(self) -> None:
        await self._inner.aclose()


class _Transport(httpx.AsyncBaseTransport):
    """httpx requests onto `net_pool` (httpcore connections); foreign errors become ours, at the boundary."""

    def __init__(self, pool: net_pool.Pool) -> None:
        self._pool = pool

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        if url.scheme not in ("http", "https"):
            err = FetchError(f"unsupported URL scheme: {url}")
            err.retriable = False
            raise err
        assert isinstance(request.stream, httpx.AsyncByteStream)
        req = httpcore.Request(
            method=request.method,
            url=httpcore.URL(scheme=url.raw_scheme, host=url.raw_host, port=url.port, target=url.raw_path),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        try:
            response = await self._pool.handle_async_request(req)
        except (httpcore.NetworkError, httpcore.TimeoutException, httpcore.ProtocolError) as exc:
            raise translate(exc, url) from exc
        assert isinstance(response.stream, net_pool.Body)
        return httpx.Response(
            status_code=response.status,
            headers=response.headers,
            stream=_TranslatingStream(response.stream, url),
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        await self._pool.aclose()


class Client(httpx.AsyncClient):
    """The guarded client (an httpx client on our transport); `stream_get` is its lean GET."""

    def __init__(self, *, transport: _Transport, **kwargs: Any) -> None:
        super().__init__(transport=transport, **kwargs)
        self.guarded = transport


@asynccontextmanager
async def stream_get(
    client: httpx.AsyncClient, url: str, headers: dict[str, str]
) -> AsyncIterator[httpx.Response]:
    """`client.stream("GET", ...)` without httpx's per-request layers (auth and redirect loops, hooks, and a
    cookie-jar pass over every response): straight onto our transport. Cookies still work as in httpx: sent
    from the client's jar, stored when a response sets one. A third of a 304 poll's CPU was those layers.
    """
    if not isinstance(client, Client):
        async with client.stream("GET", url, headers=headers) as response:
            yield response
        return
    request = client.build_request("GET", url, headers=headers)
    response = await client.guarded.handle_async_request(request)
    response.request = request
    try:
        if "set-cookie" in response.headers:
            client.cookies.extract_cookies(response)
        yield response
    finally:
        await response.aclose()


def create_client(
    http: HttpSettings,
    *,
    timeout: float | None = None,
    max_connections: int = 256,
    exempt: frozenset[str] = frozenset(),
) -> httpx.AsyncClient:
    """The guarded async client; redirects are not followed (callers check and follow each hop).

    `exempt` names "host:port" origins allowed although private (an operator allowlist; tests).
    """
    pool = net_pool.Pool(
        _GuardedBackend(net_stream.AsyncioBackend(), http.allow_private_networks, exempt),
        httpx.create_ssl_context(),
        max_connections=max_connections,
        max_idle=max_connections,
        keepalive_expiry=30,
    )
    if timeout is None:
        tmo = httpx.Timeout(
            connect=http.connect_timeout,
            read=http.read_timeout,
            write=http.read_timeout,
            pool=http.total_timeout,
        )
    else:
        tmo = httpx.Timeout(timeout, connect=min(timeout, http.connect_timeout))
    return Client(
        transport=_Transport(pool),
        timeout=tmo,
        follow_redirects=False,
        trust_env=False,
        headers={"User-Agent": http.user_agent, "Accept-Encoding": ACCEPT_ENCODING},
    )


async def read_body(response: httpx.Response, http: HttpSettings) -> bytes:
    """The decoded body; over `max_body_bytes` on the wire or `max_decompressed_bytes` decoded: TooLarge."""
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > http.max_body_bytes:
        raise TooLarge(f"body of {declared} bytes is over the {http.max_body_bytes}-byte cap")
    raw = bytearray()
    async for chunk in response.aiter_raw():
        raw += chunk
        if len(raw) > http.max_body_bytes:
            raise TooLarge(f"body is over the {http.max_body_bytes}-byte cap")
    data = bytes(raw)
    encodings = [
        e.strip().lower() for e in response.headers.get("content-encoding", "").split(",") if e.strip()
    ]
    for encoding in reversed(encodings):
        data = net_codec.decompress(data, encoding, http.max_decompressed_bytes)
    return net_codec.sniff_gzip(data, http.max_decompressed_bytes)


async def discard_body(response: httpx.Response, limit: int = 64 * 1024) -> None:
    """Read and drop a small body (304, redirect) so its connection can be reused; a big one is cut off."""
    seen = 0
    async for chunk in response.aiter_raw():
        seen += len(chunk)
        if seen > limit:
            break  # closing the response closes this connection instead


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date); None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - (now if now is not None else time.time()))
