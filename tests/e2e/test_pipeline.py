"""End to end through the CLI: a feed on loopback → `newsmon run` → a Standard Webhooks receiver on loopback.

Runs on the embedded bus and on a real Kafka broker. The receiver verifies signatures with the `standardwebhooks`
package, the reference implementation a subscriber would use.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import standardwebhooks
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from newsmon.demo.servers import LoopbackServer
from tests.e2e import articles

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SEED = Path(__file__).resolve().parents[3] / "shared" / "seed" / "seed-article-ar.txt"


@dataclass
class Receiver:
    """Records every webhook request; `hang_first` makes the first request hang until released."""

    hang_first: bool = False
    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    first_arrived: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: Request) -> Response:
        body = await request.body()
        self.requests.append(({k.lower(): v for k, v in request.headers.items()}, body))
        if self.hang_first and len(self.requests) == 1:
            self.first_arrived.set()
            await self.release.wait()
        return Response(status_code=204)

    def verified(self) -> list[dict[str, Any]]:
        hook = standardwebhooks.Webhook(SECRET)
        return [hook.verify(body, headers) for headers, body in self.requests]


@pytest.fixture
async def feed() -> AsyncIterator[tuple[str, dict[str, bytes]]]:
    docs: dict[str, bytes] = {}

    async def serve(request: Request) -> Response:
        body = docs.get(request.url.path)
        return Response(body, media_type="application/rss+xml") if body else Response(status_code=404)

    server = LoopbackServer(Starlette(routes=[Route("/{p:path}", serve)]))
    await server.start()
    yield server.url, docs
    await server.stop()


async def start_receiver(receiver: Receiver) -> LoopbackServer:
    server = LoopbackServer(Starlette(routes=[Route("/hook", receiver.handle, methods=["POST"])]))
    await server.start()
    return server


def write_config(tmp: Path, bus_url: str, feed_url: str, hook_url: str, **extra: str) -> Path:
    lines = [
        f'data_dir = "{tmp / "data"}"',
        "[bus]", f'url = "{bus_url}"', f'namespace = "{extra.get("namespace", "")}"',
        "[http]", "allow_private_networks = true",
        "[delivery]", f'retry_delays = {extra.get("retry_delays", "[1, 1, 2]")}',
        f'timeout = {extra.get("timeout", "5")}',
        "[api]", "enabled = false",
        "[[feeds]]", f'url = "{feed_url}"', 'interval = "5m"',
        "[[subscriptions]]", 'id = "ops-syria"', 'topics = ["syria-military-shifts"]',
        "[subscriptions.webhook]", f'url = "{hook_url}"', f'secret = "{SECRET}"',
    ]
    path = tmp / "newsmon.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


async def newsmon(*args: str, wait: bool = True) -> asyncio.subprocess.Process:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "newsmon.cli", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env={**os.environ, "NO_COLOR": "1"})
    if wait:
        _, err = await asyncio.wait_for(proc.communicate(), timeout=240)
        assert proc.returncode == 0, f"newsmon {' '.join(args)} exited {proc.returncode}:\n{err.decode()[-4000:]}"
    return proc


@pytest.fixture(params=["sqlite", pytest.param("kafka", marks=pytest.mark.kafka)])
def bus_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'bus.db'}"
    return "kafka://" + str(request.getfixturevalue("kafka_bootstrap"))


async def test_one_signed_alert_for_the_syria_story_and_nothing_else(
        tmp_path: Path, feed: tuple[str, dict[str, bytes]], bus_url: str) -> None:
    base, docs = feed
    items = [articles.SYRIA_AR, *articles.UNRELATED]
    docs["/feed.xml"] = articles.rss(items)
    receiver = Receiver()
    server = await start_receiver(receiver)
    try:
        cfg = write_config(tmp_path, bus_url, base + "/feed.xml", server.url + "/hook",
                           namespace=f"t{uuid.uuid4().hex[:8]}.")
        await newsmon("run", "--config", str(cfg), "--until-idle")
        bodies = receiver.verified()
        assert len(bodies) == 1, [b["data"]["title"] for b in bodies]
        alert = bodies[0]["data"]
        assert bodies[0]["type"] == "alert.new"
        assert alert["topic"] == "syria-military-shifts"
        assert alert["title"] == articles.SYRIA_AR.title
        assert alert["url"] == f"https://news.example.org/{articles.SYRIA_AR.guid}"
        assert alert["terms"] and 0 < alert["score"] <= 1
        assert receiver.requests[0][0]["webhook-id"] == alert["id"]
        # A second run polls the same feed again: nothing new, nothing sent again.
        await newsmon("run", "--config", str(cfg), "--until-idle")
        assert len(receiver.requests) == 1
    finally:
        await server.stop()


@pytest.mark.skipif(not SEED.is_file(), reason="../shared/seed is not present")
async def test_the_seed_article_alerts(tmp_path: Path, feed: tuple[str, dict[str, bytes]]) -> None:
    base, docs = feed
    lines = [ln.strip() for ln in SEED.read_text(encoding="utf-8").splitlines() if ln.strip()]
    seed = articles.Item("seed", "روسيا وإيران تؤكدان دعم الأسد", " ".join(lines))
    docs["/feed.xml"] = articles.rss([seed, *articles.UNRELATED])
    receiver = Receiver()
    server = await start_receiver(receiver)
    try:
        cfg = write_config(tmp_path, f"sqlite:///{tmp_path / 'bus.db'}", base + "/feed.xml", server.url + "/hook")
        await newsmon("run", "--config", str(cfg), "--until-idle")
        bodies = receiver.verified()
        assert [b["data"]["topic"] for b in bodies] == ["syria-military-shifts"]
        names = {p["name_en"] for p in bodies[0]["data"]["places"]}
        assert {"Aleppo", "Idlib", "Hama"} <= names
    finally:
        await server.stop()


async def test_kill_9_before_delivery_then_restart_delivers_with_the_same_webhook_id(
        tmp_path: Path, feed: tuple[str, dict[str, bytes]]) -> None:
    base, docs = feed
    docs["/feed.xml"] = articles.rss([articles.SYRIA_AR, *articles.UNRELATED])
    receiver = Receiver(hang_first=True)
    server = await start_receiver(receiver)
    try:
        cfg = write_config(tmp_path, f"sqlite:///{tmp_path / 'bus.db'}", base + "/feed.xml",
                           server.url + "/hook", timeout="3")
        proc = await newsmon("run", "--config", str(cfg), wait=False)
        await asyncio.wait_for(receiver.first_arrived.wait(), timeout=120)
        proc.send_signal(signal.SIGKILL)  # the alert exists; its delivery is in flight, not acknowledged
        await proc.wait()
        receiver.release.set()
        await newsmon("run", "--config", str(cfg), "--until-idle")
        ids = [headers["webhook-id"] for headers, _ in receiver.requests]
        assert len(ids) == 2 and ids[0] == ids[1], ids
        assert len(receiver.verified()) == 2
    finally:
        receiver.release.set()
        await server.stop()


async def test_sigterm_stops_cleanly(tmp_path: Path, feed: tuple[str, dict[str, bytes]]) -> None:
    base, docs = feed
    docs["/feed.xml"] = articles.rss(articles.UNRELATED)
    receiver = Receiver()
    server = await start_receiver(receiver)
    try:
        cfg = write_config(tmp_path, f"sqlite:///{tmp_path / 'bus.db'}", base + "/feed.xml", server.url + "/hook")
        proc = await newsmon("run", "--config", str(cfg), wait=False)
        await asyncio.sleep(3)
        proc.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(proc.communicate(), timeout=60)
        assert proc.returncode == 0, err.decode()[-3000:]
        assert "newsmon.stop" in err.decode()
    finally:
        await server.stop()


def test_webhook_example_in_schemas_is_valid_json() -> None:
    example = json.loads((Path(__file__).resolve().parents[2] / "schemas" / "webhook-example.json").read_text())
    assert example["type"] == "alert.new" and example["data"]["id"]
