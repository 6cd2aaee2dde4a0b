"""Running pollers follow the feeds table, and several pollers share it, through the real command line.

- `newsmon run` with its API: a feed added over HTTP is polled and its articles flow to the API; paused, it is no
  longer requested; a WebSub push through the running service's callback publishes too.
- Two `newsmon poller` processes on one PostgreSQL store: a loopback feed host records who fetches what and
  that no feed is ever fetched by two requests at once; after `kill -9` of one poller the other takes its feeds
  as soon as the dead poller's leases end.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from newsmon.demo.servers import LoopbackServer
from newsmon.store import Store, leases
from tests.e2e import articles


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Fetch:
    """One request as the feed host saw it."""

    path: str
    agent: str
    started: float
    ended: float = 0.0


@dataclass
class FeedHost:
    """Serves RSS documents; records every fetch and any fetch of a path that overlapped another of it."""

    docs: dict[str, bytes] = field(default_factory=dict)
    delay: float = 0.0
    fetches: list[Fetch] = field(default_factory=list)
    in_flight: dict[str, list[Fetch]] = field(default_factory=dict)
    overlaps: list[tuple[Fetch, Fetch]] = field(default_factory=list)
    hub_requests: list[dict[str, str]] = field(default_factory=list)
    link_hub: str = ""

    async def serve(self, request: Request) -> Response:
        path = request.url.path
        if request.method == "POST" and path == "/hub":
            form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
            self.hub_requests.append(form)
            return Response(status_code=202)
        fetch = Fetch(path, request.headers.get("user-agent", ""), time.time())
        self.fetches.append(fetch)
        flying = self.in_flight.setdefault(path, [])
        self.overlaps += [(other, fetch) for other in flying]
        flying.append(fetch)
        try:
            if self.delay:
                await asyncio.sleep(self.delay)
        finally:
            flying.remove(fetch)
            fetch.ended = time.time()
        body = self.docs.get(path)
        if body is None:
            return Response(status_code=404)
        headers = {"Link": f'<{self.link_hub}>; rel="hub"'} if self.link_hub else {}
        return Response(body, media_type="application/rss+xml", headers=headers)

    def count(self, path: str, agent: str | None = None) -> int:
        return sum(1 for f in self.fetches if f.path == path and (agent is None or f.agent == agent))


@pytest.fixture
async def host() -> AsyncIterator[tuple[FeedHost, str]]:
    feeds = FeedHost()
    server = LoopbackServer(Starlette(routes=[Route("/{p:path}", feeds.serve, methods=["GET", "POST"])]))
    await server.start()
    feeds.link_hub = ""
    yield feeds, server.url
    await server.stop()


async def newsmon(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "newsmon.cli", *args, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env={**os.environ, **(env or {})})
    out, err = await asyncio.wait_for(proc.communicate(), timeout=120)
    return proc.returncode or 0, out.decode(), err.decode()


async def start(*args: str, env: dict[str, str] | None = None) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "newsmon.cli", *args, stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE, env={**os.environ, **(env or {})})


async def stop(proc: asyncio.subprocess.Process) -> str:
    if proc.returncode is None:
        proc.send_signal(signal.SIGTERM)
    _, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    return err.decode()


async def until(check: Callable[[], Awaitable[bool] | bool], within: float, what: str,
                proc: asyncio.subprocess.Process | None = None) -> None:
    """Wait for `check` (a deadline, not a timing assertion); fail early if `proc` died."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        result = check()
        if await result if isinstance(result, Awaitable) else result:
            return
        if proc is not None and proc.returncode is not None:
            raise AssertionError(f"newsmon exited {proc.returncode} while waiting for {what}")
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def write_config(tmp: Path, lines: list[str]) -> Path:
    path = tmp / "newsmon.toml"
    path.write_text("\n".join([f'data_dir = "{tmp / "data"}"', *lines]) + "\n", encoding="utf-8")
    return path


def run_config(tmp: Path, api_port: int, *extra: str) -> Path:
    return write_config(tmp, [
        "[http]", "allow_private_networks = true", "total_timeout = 5",
        "[poller]", "reload_interval = 0.3", "min_interval = 0.5", "per_host_interval = 0",
        *extra,
        "[api]", f'listen = "127.0.0.1:{api_port}"',
        "[log]", 'level = "warning"',
    ])


@asynccontextmanager
async def api_up(base: str, token: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=10) as c:

        async def healthy() -> bool:
            try:
                return (await c.get("/healthz")).status_code == 200
            except httpx.TransportError:
                return False

        await until(healthy, 60, "the API")
        yield c


async def admin_token(cfg: Path) -> str:
    code, out, err = await newsmon("tokens", "create", "--scope", "admin", "--config", str(cfg))
    assert code == 0, err
    return out.strip()


async def test_a_feed_added_through_the_api_is_polled_and_stops_when_paused(
        tmp_path: Path, host: tuple[FeedHost, str]) -> None:
    feeds, base = host
    feeds.docs["/live.xml"] = articles.rss([articles.SYRIA_AR, *articles.UNRELATED])
    port = _free_port()
    cfg = run_config(tmp_path, port)
    token = await admin_token(cfg)
    proc = await start("run", "--config", str(cfg))
    try:
        async with api_up(f"http://127.0.0.1:{port}", token) as api:
            r = await api.post("/api/v1/feeds", json={"url": base + "/live.xml", "id": "live", "interval": "1s"})
            assert r.status_code == 201, r.text
            await until(lambda: feeds.count("/live.xml") >= 2, 30, "polls of the new feed", proc)

            async def matched() -> bool:
                found = (await api.get("/api/v1/articles")).json()
                return any(a["title"] == articles.SYRIA_AR.title for a in found)

            await until(matched, 60, "the feed's article through the bus to the API", proc)
            feed = (await api.get("/api/v1/feeds/live")).json()
            assert (feed["origin"], feed["health"]) == ("api", "ok")

            assert (await api.patch("/api/v1/feeds/live", json={"active": False})).status_code == 200
            await asyncio.sleep(1.5)  # a reload (0.3 s) and a poll that was already in flight
            paused_at = feeds.count("/live.xml")
            await asyncio.sleep(3)  # three intervals of the feed
            assert feeds.count("/live.xml") == paused_at
            assert (await api.patch("/api/v1/feeds/live", json={"active": True})).status_code == 200
            await until(lambda: feeds.count("/live.xml") > paused_at, 30, "polls after resume", proc)
    finally:
        err = await stop(proc)
    assert proc.returncode == 0, err[-3000:]


def _sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


async def test_a_websub_push_through_the_running_service_is_published(
        tmp_path: Path, host: tuple[FeedHost, str]) -> None:
    feeds, base = host
    feeds.link_hub = base + "/hub"
    feeds.docs["/pushed.xml"] = articles.rss(articles.UNRELATED[:1])
    port, callback_port = _free_port(), _free_port()
    callback = f"http://127.0.0.1:{callback_port}/websub"
    cfg = run_config(tmp_path, port, f'websub_callback = "{callback}"',
                     f'websub_listen = "127.0.0.1:{callback_port}"')
    token = await admin_token(cfg)
    proc = await start("run", "--config", str(cfg))
    try:
        async with api_up(f"http://127.0.0.1:{port}", token) as api:
            r = await api.post("/api/v1/feeds", json={"url": base + "/pushed.xml", "id": "pushed"})
            assert r.status_code == 201, r.text
            await until(lambda: bool(feeds.hub_requests), 30, "a subscription request at the hub", proc)
            form = feeds.hub_requests[0]
            assert (form["hub.mode"], form["hub.topic"], form["hub.callback"]) == (
                "subscribe", base + "/pushed.xml", callback + "/pushed")
            async with httpx.AsyncClient(timeout=10) as hub:
                verify = await hub.get(form["hub.callback"], params={
                    "hub.mode": "subscribe", "hub.topic": form["hub.topic"], "hub.challenge": "ch-1",
                    "hub.lease_seconds": "3600"})
                assert (verify.status_code, verify.text) == (200, "ch-1")
                body = articles.rss([articles.SYRIA_AR, *articles.UNRELATED[:1]])
                forged = await hub.post(form["hub.callback"], content=body,
                                        headers={"X-Hub-Signature": _sign("not-the-secret", body)})
                assert forged.status_code == 202
                pushed = await hub.post(form["hub.callback"], content=body,
                                        headers={"X-Hub-Signature": _sign(form["hub.secret"], body)})
                assert pushed.status_code == 202

            async def matched() -> bool:
                found = (await api.get("/api/v1/articles")).json()
                return any(a["title"] == articles.SYRIA_AR.title for a in found)

            await until(matched, 60, "the pushed article through the bus to the API", proc)
            feed = (await api.get("/api/v1/feeds/pushed")).json()
            assert feed["websub_until"] is not None and "websub_secret" not in feed
    finally:
        err = await stop(proc)
    assert proc.returncode == 0, err[-3000:]


FEEDS = 20
TTL = 4.0


@pytest.mark.postgres
async def test_two_pollers_share_the_feeds_and_one_takes_over_when_the_other_dies(
        tmp_path: Path, host: tuple[FeedHost, str], postgres_url: str) -> None:
    feeds, base = host
    feeds.delay = 0.4  # every fetch is in flight long enough for a second fetch of the feed to overlap it
    for i in range(FEEDS):
        feeds.docs[f"/f{i}.xml"] = articles.rss([articles.Item(f"g{i}", f"Item {i}", "Text.")], lang="en")
    cfg = write_config(tmp_path, [
        "[store]", f'url = "{postgres_url}"',
        "[http]", "allow_private_networks = true", "total_timeout = 3",
        "[poller]", "concurrency = 3", "per_host_concurrency = 16", "per_host_interval = 0", "min_interval = 1",
        "reload_interval = 0.5", f"lease_ttl = {TTL}",
        "[log]", 'level = "warning"',
        *[line for i in range(FEEDS) for line in
          ("[[feeds]]", f'id = "f{i}"', f'url = "{base}/f{i}.xml"', 'interval = "2s"')],
    ])
    code, _, err = await newsmon("db", "upgrade", "--config", str(cfg))
    assert code == 0, err
    a = await start("poller", "--config", str(cfg), env={"NEWSMON_HTTP__USER_AGENT": "poller-a"})
    b = await start("poller", "--config", str(cfg), env={"NEWSMON_HTTP__USER_AGENT": "poller-b"})
    try:
        def both_busy() -> bool:
            agents = [f.agent for f in feeds.fetches]
            return agents.count("poller-a") >= 20 and agents.count("poller-b") >= 20

        await until(both_busy, 60, "both pollers at work", a)
        # Kill A while it holds feeds: they stay leased to it until the lease runs out.
        await until(lambda: any(f.agent == "poller-a" for fl in feeds.in_flight.values() for f in fl), 30,
                    "a fetch by poller A in flight", a)
        a.send_signal(signal.SIGKILL)
        killed_at = time.time()
        await a.wait()
        store = await Store.open(postgres_url, create=False)
        try:
            held = {s.id: s.lease_until or 0 for s in await leases.agenda(store)
                    if s.lease_owner and f":{a.pid}:" in s.lease_owner}
        finally:
            await store.close()
        assert held, "poller A held no lease when it was killed"

        def taken_over() -> bool:
            return all(any(f.path == f"/{fid}.xml" and f.agent == "poller-b" and f.started >= killed_at
                           for f in feeds.fetches) for fid in held)

        await until(taken_over, TTL + 20, "poller B to poll poller A's feeds", b)
        for fid, lease_until in held.items():
            first = min(f.started for f in feeds.fetches
                        if f.path == f"/{fid}.xml" and f.agent == "poller-b" and f.started >= killed_at)
            assert first >= lease_until, f"{fid} fetched by B while A's lease was still valid"
        assert feeds.overlaps == [], [(x.path, x.agent, y.agent) for x, y in feeds.overlaps][:5]
        per_feed = {i: feeds.count(f"/f{i}.xml") for i in range(FEEDS)}
        assert min(per_feed.values()) >= 2, per_feed
    finally:
        if a.returncode is None:
            a.kill()
        await a.wait()
        err_b = await stop(b)
    assert b.returncode == 0, err_b[-3000:]
