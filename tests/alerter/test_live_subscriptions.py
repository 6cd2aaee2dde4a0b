"""A running `newsmon run` (API on), fed by a loopback feed, delivering to a loopback receiver:

- a subscription created through the API gets signed alerts without a restart; once deleted, it gets no more;
- a silence added with the CLI suppresses (and counts) an alert; once expired, the next alert is delivered.

The tests wait for the alerter to have re-read the subscriptions through its `newsmon_alerter_subscriptions`
gauge on /metrics, and for routing through the deliveries API, never for the clock.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import standardwebhooks

from tests.e2e.articles import Item, rss
from tests.support.feedserver import FeedServer
from tests.support.receiver import Receiver

T = TypeVar("T")
TOPIC = "syria-military-shifts"
CONFIG_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
API_SECRET = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"

# Four separate events (different places, different words), written for these tests: four stories.
ALEPPO = Item("live-aleppo", "Rebel factions take control of army bases north of Aleppo",
              "Armed opposition factions seized several army bases north of Aleppo on Monday after heavy clashes, "
              "and government troops withdrew toward the city, local sources said.")
DEIR = Item("live-deir", "Government forces withdraw from Deir ez-Zor positions as fighters advance",
            "Syrian government forces pulled out of positions around Deir ez-Zor after an offensive by armed "
            "fighters, who took control of the airport road and two villages on the Euphrates.")
DARAA = Item("live-daraa", "Army loses checkpoints in Daraa countryside to armed groups",
             "Armed groups overran army checkpoints in the Daraa countryside in southern Syria, and the army "
             "withdrew its units to the provincial capital after a night of fighting.")
LATAKIA = Item("live-latakia", "Syrian army redeploys troops near Latakia after frontline collapse",
               "The Syrian army moved reinforcements to the Latakia countryside after rebels captured hills "
               "overlooking the coastal road, military sources said, as troops withdrew from forward posts.")


async def eventually(probe: Callable[[], Awaitable[T | None]], within: float = 90.0) -> T:
    """Poll `probe` until it returns something truthy (a deadline, not a timing assertion)."""
    async with asyncio.timeout(within):
        while not (found := await probe()):  # noqa: ASYNC110 (state of another process)
            await asyncio.sleep(0.1)
        return found


@dataclass
class Live:
    """A running `newsmon run` and what surrounds it."""

    config: Path
    api: httpx.AsyncClient
    feed: FeedServer
    receiver: Receiver
    items: list[Item] = field(default_factory=list)

    def publish(self, item: Item) -> None:
        """Add a story to the feed (the poller fetches it within about a second)."""
        self.items.append(item)
        self.feed.route("/feed.xml", rss(self.items, lang="en"))

    async def metric(self, line: str) -> float | None:
        """The value of one /metrics sample, e.g. 'newsmon_alerter_subscriptions{origin="api"}'."""
        text = (await self.api.get("/metrics")).text
        for row in text.splitlines():
            if row.startswith(line + " "):
                return float(row.rsplit(" ", 1)[1])
        return None

    async def api_subscriptions_routed(self, count: int) -> None:
        """Wait until the running alerter routes to `count` API subscriptions."""
        await eventually(lambda: self._metric_is('newsmon_alerter_subscriptions{origin="api"}', count))

    async def _metric_is(self, line: str, value: float) -> bool:
        return await self.metric(line) == value

    async def deliveries(self, **params: str) -> list[dict[str, Any]]:
        r = await self.api.get("/api/v1/deliveries", params=params)
        assert r.status_code == 200, r.text
        items: list[dict[str, Any]] = r.json()["items"]
        return items

    async def cli(self, *args: str) -> tuple[int, str, str]:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "newsmon.cli", *args, "--config", str(self.config),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=_env())
        out, err = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode is not None
        return proc.returncode, out.decode(), err.decode()


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("NEWSMON_")} | {"NO_COLOR": "1"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _write_config(tmp: Path, port: int, feed_url: str, hook_url: str) -> Path:
    lines = [
        f'data_dir = "{tmp / "data"}"',
        "[http]", "allow_private_networks = true",
        "[alerting]", 'subscriptions_reload = "0.5s"',
        "[delivery]", "retry_delays = [1, 1]", "timeout = 5",
        "[api]", f'listen = "127.0.0.1:{port}"',
        "[[feeds]]", f'url = "{feed_url}"', 'interval = "1s"',
        "[[subscriptions]]", 'id = "ops"', f'topics = ["{TOPIC}"]',
        "[subscriptions.webhook]", f'url = "{hook_url}"', f'secret = "{CONFIG_SECRET}"',
    ]
    path = tmp / "newsmon.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
async def live(tmp_path: Path) -> AsyncIterator[Live]:
    port = _free_port()
    with FeedServer() as feed:
        feed.route("/feed.xml", rss([], lang="en"))
        async with Receiver() as receiver:
            config = _write_config(tmp_path, port, feed.url("/feed.xml"), receiver.url("/ops"))
            client = httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10)
            state = Live(config, client, feed, receiver)
            code, token, err = await state.cli("tokens", "create", "--scope", "admin", "--name", "tester")
            assert code == 0, err
            client.headers["Authorization"] = f"Bearer {token.strip()}"
            log = (tmp_path / "newsmon.log").open("wb")
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "newsmon.cli", "run", "--config", str(config),
                stdout=log, stderr=log, env=_env())
            try:
                await eventually(lambda: _ready(client, proc))
                yield state
            finally:
                if proc.returncode is None:
                    proc.send_signal(signal.SIGTERM)
                    try:
                        await asyncio.wait_for(proc.wait(), 60)
                    except TimeoutError:
                        proc.kill()
                        await proc.wait()
                log.close()
                await client.aclose()
            assert proc.returncode == 0, (tmp_path / "newsmon.log").read_text(errors="replace")[-4000:]


async def _ready(client: httpx.AsyncClient, proc: asyncio.subprocess.Process) -> bool:
    assert proc.returncode is None, "newsmon run exited early"
    try:
        return (await client.get("/readyz")).status_code == 200
    except httpx.TransportError:
        return False


def _verified(receiver: Receiver, path: str, secret: str) -> list[dict[str, Any]]:
    hook = standardwebhooks.Webhook(secret)
    return [hook.verify(r.body, r.headers) for r in receiver.requests_to(path)]


@pytest.mark.slow
@pytest.mark.timeout(240)
async def test_an_api_subscription_gets_alerts_without_a_restart_until_deleted(live: Live) -> None:
    desk = {"id": "desk", "topics": [TOPIC],
            "webhook": {"url": live.receiver.url("/desk"), "secret": API_SECRET}}
    r = await live.api.post("/api/v1/subscriptions", json=desk)
    assert r.status_code == 201, r.text
    await live.api_subscriptions_routed(1)

    live.publish(ALEPPO)
    await live.receiver.wait_for(1, "/desk", within=90)
    [signed] = _verified(live.receiver, "/desk", API_SECRET)
    assert signed["type"] == "alert.new" and signed["data"]["title"] == ALEPPO.title
    assert signed["data"]["topic"] == TOPIC
    with pytest.raises(standardwebhooks.WebhookVerificationError):  # signed with its own secret, not the config's
        _verified(live.receiver, "/desk", CONFIG_SECRET)

    assert (await live.api.delete("/api/v1/subscriptions/desk")).status_code == 204
    await live.api_subscriptions_routed(0)
    live.publish(DEIR)
    await live.receiver.wait_for(2, "/ops", within=90)  # the config subscription gets the second story...
    assert [b["data"]["title"] for b in _verified(live.receiver, "/ops", CONFIG_SECRET)] == [ALEPPO.title,
                                                                                           DEIR.title]
    # ...which was routed without the deleted one: nothing queued for it, nothing sent.
    assert [d["status"] for d in await live.deliveries(subscription="desk")] == ["delivered"]
    assert len(live.receiver.requests_to("/desk")) == 1


@pytest.mark.slow
@pytest.mark.timeout(240)
async def test_a_cli_silence_suppresses_alerts_until_expired(live: Live) -> None:
    code, out, err = await live.cli("silences", "add", "--topic", TOPIC, "--duration", "1h", "--reason", "drill")
    assert code == 0, err
    silence_id = out.strip()
    assert silence_id.startswith("sil_") and "\n" not in silence_id
    code, out, _ = await live.cli("silences", "list")
    assert code == 0 and silence_id in out and "drill" in out

    live.publish(DARAA)
    [suppressed] = await eventually(lambda: live.deliveries(status="suppressed"))
    assert suppressed["subscription_id"] == "ops" and silence_id in suppressed["last_error"]
    assert await live.metric('newsmon_alerts_suppressed_total{reason="silence"}') == 1.0
    assert live.receiver.requests_to("/ops") == []

    code, out, _ = await live.cli("silences", "expire", silence_id)
    assert code == 0 and silence_id in out
    code, out, _ = await live.cli("silences", "list")
    assert code == 0 and silence_id not in out
    live.publish(LATAKIA)
    await live.receiver.wait_for(1, "/ops", within=90)
    assert [b["data"]["title"] for b in _verified(live.receiver, "/ops", CONFIG_SECRET)] == [LATAKIA.title]
    assert await live.metric('newsmon_alerts_suppressed_total{reason="silence"}') == 1.0
