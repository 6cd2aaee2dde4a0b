"""The webhook poster against a raw loopback HTTP server: framing (Content-Length, chunked, 1xx, HTTP/1.0),
keep-alive and its limits (a receiver that closes an idle connection, `Connection: close`, a large body, an answer
cut short), malformed answers, and net's address guard on every new connection."""

from __future__ import annotations

import asyncio
import shutil
import ssl
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from newsmon.alerter.channels.poster import Poster
from newsmon.errors import BlockedAddress, FetchError
from newsmon.settings import HttpSettings

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
CHUNKED = (b"HTTP/1.1 202 Accepted\r\nTransfer-Encoding: chunked\r\n\r\n"
           b"4;ext=1\r\nwiki\r\n5\r\npedia\r\n0\r\nX-Trailer: t\r\n\r\n")
INTERIM = b"HTTP/1.1 100 Continue\r\n\r\n" + OK
CLOSE = b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 7\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
BIG = b"HTTP/1.1 200 OK\r\nContent-Length: 10000000\r\n\r\n" + b"x" * 1000
BIG_CHUNKED = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"  # 320 KiB, never finished
               + (b"10000\r\n" + b"x" * 0x10000 + b"\r\n") * 5)
OLD_WITH_LENGTH = b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok"  # HTTP/1.0: no keep-alive, whatever follows
OLD_TO_CLOSE = b"HTTP/1.0 201 Created\r\nContent-Type: text/plain\r\n\r\nbody up to the close"
CUT_SHORT = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly part"


@dataclass
class RawServer:
    """Answers request n with script[n] (then OK); closes the connection after the requests in `hang_up`, and
    instead of answering those in `drop`."""

    script: list[bytes] = field(default_factory=list)
    hang_up: set[int] = field(default_factory=set)
    drop: set[int] = field(default_factory=set)
    connections: int = 0
    requests: list[bytes] = field(default_factory=list)
    port: int = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                              if line.lower().startswith(b"content-length:"))
                self.requests.append(head + await reader.readexactly(length))
                n = len(self.requests) - 1
                if n in self.drop:
                    break
                writer.write(self.script[n] if n < len(self.script) else OK)
                await writer.drain()
                if n in self.hang_up:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook?x=1"


@pytest.fixture
async def raw() -> AsyncIterator[RawServer]:
    srv = RawServer()
    server = await asyncio.start_server(srv.handle, "127.0.0.1", 0)
    srv.port = server.sockets[0].getsockname()[1]
    yield srv
    server.close()


def poster(url: str, allow_private: bool = True) -> Poster:
    return Poster(url, HttpSettings(allow_private_networks=allow_private), None, 2.0, max_idle=4)


async def test_framings_on_one_kept_alive_connection(raw: RawServer) -> None:
    raw.script = [OK, CHUNKED, INTERIM, OK]
    p = poster(raw.url())
    statuses = [(await p.post(b'{"a":1}', {"webhook-id": f"m{i}"})).status for i in range(4)]
    assert statuses == [200, 202, 200, 200]
    assert raw.connections == 1
    first = raw.requests[0]
    assert first.startswith(b"POST /hook?x=1 HTTP/1.1\r\n")
    assert b"\r\nHost: 127.0.0.1:" in first and b"\r\nwebhook-id: m0\r\n" in first and first.endswith(b'{"a":1}')
    p.close()


async def test_a_non_ascii_path_is_sent_percent_encoded(raw: RawServer) -> None:
    p = poster(f"http://127.0.0.1:{raw.port}/تنبيه?q=%20x")
    assert (await p.post(b"{}", {})).status == 200
    assert raw.requests[0].startswith(b"POST /%D8%AA%D9%86%D8%A8%D9%8A%D9%87?q=%20x HTTP/1.1\r\n")
    p.close()


async def test_a_connection_the_receiver_closed_is_replaced_without_losing_the_request(raw: RawServer) -> None:
    raw.hang_up = {0}  # answers, then closes the kept-alive connection (as an idle timeout would)
    p = poster(raw.url())
    assert (await p.post(b"{}", {})).status == 200
    await asyncio.sleep(0.05)
    assert (await p.post(b"{}", {})).status == 200
    assert (raw.connections, len(raw.requests)) == (2, 2)
    p.close()


async def test_a_kept_alive_connection_closed_without_an_answer_is_tried_once_more_on_a_new_one(
    raw: RawServer,
) -> None:
    raw.drop = {1}  # the second request, on the kept-alive connection, is read and not answered
    p = poster(raw.url())
    assert (await p.post(b"{}", {"webhook-id": "a"})).status == 200
    assert (await p.post(b"{}", {"webhook-id": "b"})).status == 200
    assert raw.connections == 2 and len(raw.requests) == 3  # "b" twice: the same webhook-id, as any retry
    raw.drop = {3, 4}  # on a new connection too: no second try, the attempt fails (the worker retries it later)
    with pytest.raises(FetchError):
        await p.post(b"{}", {"webhook-id": "c"})
    p.close()


async def test_connection_close_and_a_large_body_end_the_connection(raw: RawServer) -> None:
    raw.script = [CLOSE, BIG, OK]
    p = poster(raw.url())
    first = await p.post(b"{}", {})
    assert (first.status, first.headers["retry-after"]) == (503, "7")
    assert (await p.post(b"{}", {})).status == 200  # not read to the end: this connection is dropped
    assert (await p.post(b"{}", {})).status == 200
    assert raw.connections == 3
    p.close()


async def test_a_chunked_body_past_the_cap_is_not_waited_for_and_ends_the_connection(raw: RawServer) -> None:
    raw.script = [BIG_CHUNKED, OK]
    p = poster(raw.url())
    async with asyncio.timeout(10):  # reading it to the end would wait for a terminating chunk that never comes
        assert (await p.post(b"{}", {})).status == 200
    assert (await p.post(b"{}", {})).status == 200
    assert raw.connections == 2
    p.close()


async def test_http_1_0_answers_are_read_and_their_connections_not_kept(raw: RawServer) -> None:
    raw.script = [OLD_WITH_LENGTH, OLD_TO_CLOSE, OK]
    raw.hang_up = {1}  # the second body is delimited by the close
    p = poster(raw.url())
    assert [(await p.post(b"{}", {})).status for _ in range(3)] == [200, 201, 200]
    assert raw.connections == 3
    p.close()


@pytest.mark.parametrize("answer", [
    pytest.param(b"HTTP/1.1 2x0 OK\r\nContent-Length: 0\r\n\r\n", id="bad-status"),
    pytest.param(b"SSH-2.0-OpenSSH_9.6\r\n\r\n", id="not-http"),
    pytest.param(b"HTTP/1.1 200 OK\r\nno colon here\r\nContent-Length: 0\r\n\r\n", id="bad-header"),
    pytest.param(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok", id="two-lengths"),
    pytest.param(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nok\r\n0\r\n\r\n", id="bad-chunk-size"),
    pytest.param(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nokXX0\r\n\r\n", id="chunk-overrun"),
    pytest.param(b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * 200_000, id="head-past-the-cap"),  # and never ending
])
async def test_a_malformed_answer_is_a_clear_error_and_costs_only_its_connection(raw: RawServer,
                                                                                 answer: bytes) -> None:
    raw.script = [answer, OK]
    p = poster(raw.url())
    with pytest.raises(FetchError, match="malformed response"):
        await p.post(b"{}", {})
    assert (await p.post(b"{}", {})).status == 200
    assert raw.connections == 2
    p.close()


async def test_an_answer_cut_short_on_a_kept_alive_connection_is_not_sent_again(raw: RawServer) -> None:
    raw.script = [OK, CUT_SHORT]
    raw.hang_up = {1}
    p = poster(raw.url())
    assert (await p.post(b"{}", {})).status == 200
    with pytest.raises(FetchError, match="closed the connection before answering in full"):
        await p.post(b"{}", {})
    assert len(raw.requests) == 2  # part of an answer came: the receiver had it, the worker's retry decides
    p.close()


def test_a_header_value_with_a_line_break_is_refused() -> None:
    with pytest.raises(FetchError, match="cannot send"):
        asyncio.run(poster("http://127.0.0.1:9/hook").post(b"{}", {"x-injected": "a\r\nHost: elsewhere"}))


async def test_a_private_address_is_refused_unless_allowed(raw: RawServer) -> None:
    with pytest.raises(BlockedAddress):
        await poster(raw.url(), allow_private=False).post(b"{}", {})
    assert raw.connections == 0


async def test_a_refused_connection_is_a_retriable_fetch_error(raw: RawServer) -> None:
    with pytest.raises(FetchError) as caught:
        await poster("http://127.0.0.1:9/hook").post(b"{}", {})
    assert caught.value.retriable


@pytest.mark.parametrize("url", ["ftp://example.org/x", "http:///nohost", "http://example.org:99999/"])
def test_urls_it_cannot_post_to_are_not_retriable(url: str) -> None:
    with pytest.raises(FetchError) as caught:
        poster(url)
    assert not caught.value.retriable


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for "localhost" and its key."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)
    return cert, key


async def test_https_checks_the_certificate_for_the_host_name(raw: RawServer, certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    server = await asyncio.start_server(raw.handle, "127.0.0.1", 0, ssl=server_ctx)
    port = server.sockets[0].getsockname()[1]
    trusting = ssl.create_default_context(cafile=str(cert))
    settings = HttpSettings(allow_private_networks=True)
    try:
        good = Poster(f"https://localhost:{port}/hook", settings, trusting, 2.0, max_idle=4)
        assert (await good.post(b"{}", {})).status == 200
        assert (await good.post(b"{}", {})).status == 200
        assert raw.connections == 1
        good.close()
        wrong_name = Poster(f"https://127.0.0.1:{port}/hook", settings, trusting, 2.0, max_idle=4)
        with pytest.raises(FetchError, match=r"CERTIFICATE_VERIFY_FAILED|match"):
            await wrong_name.post(b"{}", {})
        untrusted = Poster(f"https://localhost:{port}/hook", settings, ssl.create_default_context(), 2.0, max_idle=4)
        with pytest.raises(FetchError, match="CERTIFICATE_VERIFY_FAILED"):
            await untrusted.post(b"{}", {})
    finally:
        server.close()
