"""WebSub on loopback: hub discovery by polling, subscribe, verification, signed and forged pushes."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import random
import socket
from pathlib import Path
from urllib.parse import parse_qs

import httpx

from newsmon import net
from newsmon.poller.refresh import Context
from newsmon.poller.saver import StateSaver
from newsmon.poller.websub import WebSub, signature_ok
from newsmon.store import Store
from newsmon.store import feeds as feed_store
from tests.poller.conftest import MemoryBus, make_settings, poll_once, rss
from tests.support.feedserver import FeedServer, Reply, Request

ITEMS = [
    ("w1", "http://news.example/w/1", "Checkpoint reopened"),
    ("w2", "http://news.example/w/2", "Talks resume in the capital"),
    ("w3", "http://news.example/w/3", "Harbour closed by the storm"),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def test_signature_check() -> None:
    body = b"<rss/>"
    assert signature_ok("s3cret", body, _sign("s3cret", body))
    assert signature_ok("s3cret", body, "sha1=" + hmac.new(b"s3cret", body, hashlib.sha1).hexdigest())
    assert not signature_ok("s3cret", body, _sign("other", body))
    assert not signature_ok("s3cret", body, "md5=abc")
    assert not signature_ok("s3cret", body, None)


async def test_subscribe_verify_and_push(
    tmp_path: Path, feedserver: FeedServer, bus: MemoryBus, store: Store
) -> None:
    hub_calls: list[Request] = []

    def hub(request: Request) -> Reply:
        hub_calls.append(request)
        return Reply(202)

    feedserver.route("/hub", handler=hub)
    feedserver.route("/rss", rss(ITEMS[:1]), headers={"Link": f'<{feedserver.url("/hub")}>; rel="hub"'})
    settings = make_settings(tmp_path, [{"url": feedserver.url("/rss"), "id": "w"}])
    await poll_once(settings, bus, store)
    [state] = await feed_store.list_feeds(store)
    assert state.hub == feedserver.url("/hub") and len(bus.articles()) == 1

    port = _free_port()
    async with net.create_client(settings.http) as client:
        ctx = Context(settings, bus, store, client, random.Random(), StateSaver(store))
        websub = WebSub(ctx, f"http://127.0.0.1:{port}/websub")
        stop = asyncio.Event()
        task = asyncio.create_task(websub.run(f"127.0.0.1:{port}", stop))
        for _ in range(200):
            if hub_calls:
                break
            await asyncio.sleep(0.02)
        form = {k: v[0] for k, v in parse_qs(hub_calls[0].body.decode()).items()}
        assert (form["hub.mode"], form["hub.topic"]) == ("subscribe", feedserver.url("/rss"))
        callback, secret = form["hub.callback"], form["hub.secret"]
        assert callback == f"http://127.0.0.1:{port}/websub/w"

        async with httpx.AsyncClient() as hub_client:
            wrong = await hub_client.get(
                callback, params={"hub.mode": "subscribe", "hub.topic": "http://x/", "hub.challenge": "c1"}
            )
            ok = await hub_client.get(
                callback,
                params={
                    "hub.mode": "subscribe",
                    "hub.topic": form["hub.topic"],
                    "hub.challenge": "c2",
                    "hub.lease_seconds": "600",
                },
            )
            assert (wrong.status_code, ok.status_code, ok.text) == (404, 200, "c2")
            assert (await feed_store.list_feeds(store))[0].websub_until is not None

            pushed = rss(ITEMS)
            good = await hub_client.post(
                callback, content=pushed, headers={"X-Hub-Signature": _sign(secret, pushed)}
            )
            assert good.status_code == 202 and len(bus.articles()) == 3
            pushed_state = await feed_store.get_feed(store, "w")
            assert pushed_state is not None and (pushed_state.items_per_day or 0) > 0  # the push's rate is kept
            forged = rss([*ITEMS, ("w4", "http://news.example/w/4", "Forged item")])
            bad = await hub_client.post(
                callback, content=forged, headers={"X-Hub-Signature": _sign("guess", forged)}
            )
            assert bad.status_code == 202 and len(bus.articles()) == 3
            rotated = [(f"r{i}", f"http://news.example/r/{i}", f"Rotated item {i}") for i in range(3)]
            full = rss(rotated)  # a full document sharing nothing with what was seen: a possible gap
            gap = await hub_client.post(callback, content=full, headers={"X-Hub-Signature": _sign(secret, full)})
            after_gap = await feed_store.get_feed(store, "w")
            assert gap.status_code == 202 and after_gap is not None and after_gap.gaps == 1
            assert after_gap.last_gap_at is not None
        stop.set()
        await asyncio.wait_for(task, 10)
    assert [a.title for a in bus.articles()] == [t for _, _, t in ITEMS] + [f"Rotated item {i}" for i in range(3)]
