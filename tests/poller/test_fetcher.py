"""The guarded client and the fetcher against a real loopback server: caps, timeouts, redirects, policy."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import shutil
import ssl
import subprocess
import tracemalloc
import zlib
from pathlib import Path
from typing import Any

import brotli
import pytest

from newsmon import net
from newsmon.errors import BlockedAddress, FetchError, FetchTimeout, HTTPStatusError, TooLarge, TooManyRedirects
from newsmon.net import parse_retry_after
from newsmon.poller.fetcher import fetch
from newsmon.settings import HttpSettings
from tests.poller.conftest import rss
from tests.support.feedserver import FeedServer

DOC = rss([("g1", "http://news.example/a/1", "First item")])


def http(**overrides: Any) -> HttpSettings:
    base: dict[str, Any] = {
        "allow_private_networks": True,
        "connect_timeout": 2,
        "read_timeout": 2,
        "total_timeout": 5,
    }
    return HttpSettings(**{**base, **overrides})


async def get(url: str, cfg: HttpSettings, **kw: Any) -> Any:
    async with net.create_client(cfg) as client:
        return await fetch(client, url, cfg, **kw)


async def test_conditional_get_sends_validators_and_reads_304(feedserver: FeedServer) -> None:
    feedserver.route("/rss", DOC, etag='"v1"', last_modified="Sun, 29 Nov 2026 01:00:00 GMT")
    first = await get(feedserver.url("/rss"), http())
    assert (first.outcome, first.body, first.etag) == ("ok", DOC, '"v1"')
    second = await get(feedserver.url("/rss"), http(), etag=first.etag, last_modified=first.last_modified)
    assert (second.outcome, second.status, second.body) == ("not_modified", 304, b"")
    assert feedserver.requests[-1].headers["if-none-match"] == '"v1"'
    assert feedserver.requests[-1].headers["if-modified-since"] == "Sun, 29 Nov 2026 01:00:00 GMT"
    assert feedserver.requests[0].headers["user-agent"].startswith("newsmon/")


async def test_rate_limited_carries_retry_after(feedserver: FeedServer) -> None:
    feedserver.route("/rss", b"slow down", status=429, headers={"Retry-After": "120"})
    with pytest.raises(HTTPStatusError) as info:
        await get(feedserver.url("/rss"), http())
    assert (info.value.status, info.value.retry_after, info.value.retriable) == (429, 120.0, True)


def test_retry_after_http_date() -> None:
    assert parse_retry_after("Sun, 29 Nov 2026 02:00:30 GMT", now=1795917600.0) == 30.0
    assert parse_retry_after("soon") is None


async def test_server_that_never_answers_times_out(feedserver: FeedServer) -> None:
    feedserver.route("/rss", hang=True)
    with pytest.raises(FetchTimeout):
        await get(feedserver.url("/rss"), http(read_timeout=0.5, total_timeout=1))


async def test_slow_drip_is_cut_by_the_total_timeout(feedserver: FeedServer) -> None:
    feedserver.route("/rss", DOC, delay=3)
    with pytest.raises(FetchTimeout):
        await get(feedserver.url("/rss"), http(read_timeout=10, total_timeout=1))


@pytest.mark.parametrize("declared", [False, True], ids=["streamed", "content-length"])
async def test_fifty_megabyte_body_is_cut_off_with_bounded_memory(
    feedserver: FeedServer, declared: bool
) -> None:
    size = 50 * 1024 * 1024
    feedserver.route("/big", stream_size=size, headers={"Content-Length": str(size)} if declared else {})
    tracemalloc.start()
    try:
        with pytest.raises(TooLarge):
            await get(feedserver.url("/big"), http(max_body_bytes=2 * 1024 * 1024))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 12 * 1024 * 1024


def _bombs() -> dict[str, tuple[bytes, dict[str, str]]]:
    zeros = b"\0" * (40 * 1024 * 1024)
    gz = gzip.compress(zeros, 9)
    return {
        "gzip": (gz, {"Content-Encoding": "gzip"}),
        "deflate": (zlib.compress(zeros, 9), {"Content-Encoding": "deflate"}),
        "br": (brotli.compress(zeros, quality=5), {"Content-Encoding": "br"}),
        "gzip-undeclared": (gz, {}),
    }


@pytest.fixture(scope="module")
def bombs() -> dict[str, tuple[bytes, dict[str, str]]]:
    return _bombs()


@pytest.mark.parametrize("kind", ["gzip", "deflate", "br", "gzip-undeclared"])
async def test_decompression_bomb_is_refused(feedserver: FeedServer, bombs: Any, kind: str) -> None:
    body, headers = bombs[kind]
    feedserver.route("/bomb", body, headers=headers)
    with pytest.raises(TooLarge):
        await get(feedserver.url("/bomb"), http(max_decompressed_bytes=8 * 1024 * 1024))


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "br", "none-but-gzipped"])
async def test_compressed_bodies_are_decoded(feedserver: FeedServer, encoding: str) -> None:
    packers = {
        "gzip": gzip.compress,
        "deflate": zlib.compress,
        "br": brotli.compress,
        "none-but-gzipped": gzip.compress,
    }
    headers = {} if encoding == "none-but-gzipped" else {"Content-Encoding": encoding}
    feedserver.route("/rss", packers[encoding](DOC), headers=headers)
    assert (await get(feedserver.url("/rss"), http())).body == DOC


async def test_redirect_loop_is_refused(feedserver: FeedServer) -> None:
    feedserver.route("/a", status=302, headers={"Location": "/b"})
    feedserver.route("/b", status=301, headers={"Location": "/a"})
    with pytest.raises(TooManyRedirects, match="loop"):
        await get(feedserver.url("/a"), http())
    assert feedserver.count("/a") == 1 and feedserver.count("/b") == 1


async def test_redirect_limit(feedserver: FeedServer) -> None:
    for i in range(10):
        feedserver.route(f"/r{i}", status=307, headers={"Location": f"/r{i + 1}"})
    with pytest.raises(TooManyRedirects):
        await get(feedserver.url("/r0"), http(max_redirects=3))
    assert feedserver.count("/r4") == 0


async def test_permanent_redirect_reports_the_new_url(feedserver: FeedServer) -> None:
    feedserver.route("/old", status=301, headers={"Location": "/new"})
    feedserver.route("/new", DOC)
    result = await get(feedserver.url("/old"), http())
    assert (result.moved_to, result.body) == (feedserver.url("/new"), DOC)
    feedserver.route("/tmp", status=302, headers={"Location": "/new"})
    assert (await get(feedserver.url("/tmp"), http())).moved_to is None


async def test_redirect_to_loopback_is_refused_when_private_networks_are_not_allowed() -> None:
    with FeedServer() as public, FeedServer() as private:
        private.route("/secret", b"internal")
        public.route("/rss", status=302, headers={"Location": private.url("/secret")})
        cfg = http(allow_private_networks=False)
        # The first server stands in for a public host; only its own origin is exempted.
        async with net.create_client(cfg, exempt=frozenset({f"127.0.0.1:{public.port}"})) as client:
            with pytest.raises(BlockedAddress):
                await fetch(client, public.url("/rss"), cfg)
        assert public.count("/rss") == 1
        assert private.count("/secret") == 0


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/x",
        "http://localhost:9/x",
        "http://169.254.169.254/latest",
        "http://10.1.2.3/x",
        "http://[::1]:9/x",
        "http://[::ffff:127.0.0.1]:9/x",
        "http://0.0.0.0:9/x",
        "http://100.100.100.200/x",
    ],
)
async def test_private_addresses_are_refused(url: str) -> None:
    with pytest.raises(BlockedAddress):
        await get(url, http(allow_private_networks=False))


def test_address_policy() -> None:
    assert not net.is_blocked("93.184.215.14")
    assert not net.is_blocked("2606:2800:21f:cb07:6820:80da:af6b:8b2c")
    for address in (
        "127.0.0.1",
        "10.0.0.1",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "fd00:ec2::254",
        "::1",
        "fe80::1",
        "224.0.0.1",
        "not-an-ip",
    ):
        assert net.is_blocked(address), address


async def test_status_errors_are_classified(feedserver: FeedServer) -> None:
    feedserver.route("/gone", status=410)
    feedserver.route("/broken", status=500)
    with pytest.raises(HTTPStatusError) as gone:
        await get(feedserver.url("/gone"), http())
    with pytest.raises(HTTPStatusError) as broken:
        await get(feedserver.url("/broken"), http())
    assert (gone.value.retriable, broken.value.retriable) == (False, True)


class _CountingServer:
    """A loopback HTTP/1.1 server that counts TCP connections; `close_after` answers per connection."""

    def __init__(self, close_after: int = 0) -> None:
        self.connections = 0
        self.requests = 0
        self.close_after = close_after
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> str:
        self.server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        answered = 0
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                self.requests += 1
                if head.startswith(b"GET /moved"):
                    writer.write(b"HTTP/1.1 301 Moved\r\nLocation: /rss\r\nContent-Length: 5\r\n\r\nmoved")
                elif b"if-none-match" in head.lower():
                    writer.write(b'HTTP/1.1 304 Not Modified\r\nETag: "v1"\r\n\r\n')
                else:
                    writer.write(b'HTTP/1.1 200 OK\r\nETag: "v1"\r\nContent-Length: 6\r\n\r\n<rss/>')
                await writer.drain()
                answered += 1
                if self.close_after and answered >= self.close_after:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


async def test_one_kept_alive_connection_serves_bodies_304s_and_redirects() -> None:
    counting = _CountingServer()
    async with counting as base, net.create_client(http()) as client:
        for _ in range(3):
            assert (await fetch(client, f"{base}/rss", http())).outcome == "ok"
            assert (await fetch(client, f"{base}/rss", http(), etag='"v1"')).outcome == "not_modified"
            assert (await fetch(client, f"{base}/moved", http())).moved_to == f"{base}/rss"
    assert (counting.requests, counting.connections) == (12, 1)


async def test_a_kept_alive_connection_the_server_closed_is_replaced() -> None:
    counting = _CountingServer(close_after=1)
    async with counting as base, net.create_client(http()) as client:
        for _ in range(4):
            assert (await fetch(client, f"{base}/rss", http())).outcome == "ok"
            await asyncio.sleep(0.05)
    assert (counting.requests, counting.connections) == (4, 4)


async def test_connections_are_bounded_by_the_client_limit() -> None:
    counting = _CountingServer()
    async with counting as base, net.create_client(http(), max_connections=3) as client:
        results = await asyncio.gather(*(fetch(client, f"{base}/rss", http()) for _ in range(30)))
    assert {r.outcome for r in results} == {"ok"}
    assert counting.requests == 30
    assert counting.connections <= 3


async def test_a_cookie_the_server_sets_is_sent_back_by_the_same_client(feedserver: FeedServer) -> None:
    feedserver.route("/rss", DOC, headers={"Set-Cookie": "session=abc123; Path=/"})
    cfg = http()
    async with net.create_client(cfg) as client:
        await fetch(client, feedserver.url("/rss"), cfg)
        await fetch(client, feedserver.url("/rss"), cfg)
    assert "cookie" not in feedserver.requests[0].headers
    assert feedserver.requests[1].headers["cookie"] == "session=abc123"


async def test_a_server_closing_an_idle_connection_costs_no_failed_poll(feedserver: FeedServer) -> None:
    feedserver.route("/rss", DOC, headers={"Connection": "close"})
    cfg = http()
    async with net.create_client(cfg) as client:
        outcomes = [(await fetch(client, feedserver.url("/rss"), cfg)).outcome for _ in range(3)]
    assert outcomes == ["ok", "ok", "ok"] and feedserver.count("/rss") == 3


def _self_signed(tmp_path: Path) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
         "-days", "1", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost"],
        check=True, capture_output=True,
    )
    return cert, key


async def test_https_feed_over_loopback_tls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cert, key = _self_signed(tmp_path)
    big = rss([(f"g{i}", f"http://news.example/a/{i}", "Item " + "x" * 2000) for i in range(200)])  # ~400 kB
    served: list[bytes] = []

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while head := await reader.readuntil(b"\r\n\r\n"):
            served.append(head)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(big), big))
            await writer.drain()

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    server = await asyncio.start_server(
        lambda r, w: asyncio.ensure_future(_quietly(answer(r, w), w)), "127.0.0.1", 0, ssl=context
    )
    port = server.sockets[0].getsockname()[1]
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # the client trusts this test's certificate only
    cfg = http()
    try:
        async with net.create_client(cfg) as client:
            first = await fetch(client, f"https://localhost:{port}/rss", cfg)
            second = await fetch(client, f"https://localhost:{port}/rss", cfg)
            with pytest.raises(FetchError, match="certificate"):  # it names localhost, not 127.0.0.1
                await fetch(client, f"https://127.0.0.1:{port}/rss", cfg)
    finally:
        server.close()
        await server.wait_closed()
    assert (first.outcome, first.body, second.body) == ("ok", big, big)
    assert len(served) == 2


async def _quietly(work: Any, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
        await work
    writer.close()
