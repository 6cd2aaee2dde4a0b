"""/healthz on a worker's metrics port sees a consume loop that is stuck with work in hand, and its recovery.

The classifier's handler is made to hang the way real ones do: on a database lock. The test holds an ACCESS
EXCLUSIVE lock on the stories tables of a real PostgreSQL, so the handler waits on it with the message in hand.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from newsmon.bus import open_bus
from newsmon.events import ARTICLES_TOPIC
from newsmon.settings import load_settings
from newsmon.store.base import async_url
from tests.e2e.test_startup import ARTICLE, Worker, newsmon, publish_and_read_match, write_config
from tests.support.kafka import free_ports

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(180)]


async def test_healthz_fails_while_a_consume_loop_is_stuck_with_work_and_recovers(
    tmp_path: Path, postgres_url: str
) -> None:
    metrics_port = free_ports(1)[0]
    config = write_config(tmp_path, "[store]", f'url = "{postgres_url}"',
                          "[metrics]", f'listen = "127.0.0.1:{metrics_port}"', 'stall_after = "2s"')
    assert newsmon("db", "upgrade", "--config", str(config)).returncode == 0
    worker = Worker("classifier", config, metrics_port)
    engine = create_async_engine(async_url(postgres_url))
    try:
        worker.wait_until("ready", lambda: worker.get("/readyz") == (200, {"status": "ok"}))
        await asyncio.sleep(3)  # idle for longer than stall_after: a loop waiting for messages has no work
        assert worker.get("/healthz") == (200, {"status": "ok"})

        async with engine.connect() as conn:
            await conn.begin()
            await conn.execute(text("LOCK TABLE stories, story_articles IN ACCESS EXCLUSIVE MODE"))
            bus = open_bus(load_settings(config).bus)
            await bus.start()
            await bus.publish(ARTICLES_TOPIC, ARTICLE.to_bytes(), key=ARTICLE.id.encode())
            await bus.stop()
            worker.wait_until("/healthz reports the stuck consumer", lambda: worker.get("/healthz")[0] == 503)
            body = worker.get("/healthz")[1]
            assert body["status"] == "unhealthy"
            assert any("newsmon-classifier" in r and "no progress" in r for r in body["reasons"]), body
            assert worker.get("/readyz") == (200, {"status": "ok"})  # connected all along: only liveness fails
            await conn.rollback()  # the lock goes: the handler carries on

        worker.wait_until("/healthz is ok again", lambda: worker.get("/healthz") == (200, {"status": "ok"}))
        match = await publish_and_read_match(load_settings(config).bus, publish=False)
        assert match.article.id == ARTICLE.id
    finally:
        await engine.dispose()
        code = worker.stop()
    assert code == 0, worker.log()[-3000:]


def _get(port: int, path: str) -> tuple[int, dict[str, object]]:
    worker = Worker.__new__(Worker)  # only its HTTP helper: no process
    worker.port = port
    status, body = worker.get(path)
    return status, body


async def test_healthz_answers_from_its_own_thread_while_the_event_loop_is_blocked() -> None:
    import threading

    from newsmon.health import Health
    from newsmon.metrics_server import serve

    stop = asyncio.Event()
    health = Health(stall_after=1.0, stop=stop)
    ticker = asyncio.create_task(health.tick())
    port = free_ports(1)[0]
    close = serve(f"127.0.0.1:{port}", health)
    try:
        assert (await asyncio.to_thread(_get, port, "/readyz"))[0] == 503  # not connected yet
        health.ready()
        assert await asyncio.to_thread(_get, port, "/healthz") == (200, {"status": "ok"})
        seen: list[tuple[int, dict[str, object]]] = []

        def ask() -> None:
            time.sleep(1.8)
            seen.append(_get(port, "/healthz"))

        asker = threading.Thread(target=ask)
        asker.start()
        time.sleep(2.5)  # noqa: ASYNC251  (a blocking call on the event loop, on purpose)
        asker.join()  # still blocking: the answer was given while the loop could not run
        status, body = seen[0]
        assert status == 503 and "event loop blocked" in str(body["reasons"]), body
        await asyncio.sleep(1.5)  # the loop runs again, its tick beats
        assert await asyncio.to_thread(_get, port, "/healthz") == (200, {"status": "ok"})

        health.died("service poller failed")
        status, body = await asyncio.to_thread(_get, port, "/healthz")
        assert status == 503 and body["reasons"] == ["service poller failed"]
        stop.set()
        assert await asyncio.to_thread(_get, port, "/readyz") == (503, {"status": "unavailable",
                                                                         "reason": "stopping"})
        status, text = await asyncio.to_thread(_get, port, "/metrics")
        assert status == 200 and "newsmon_startup_retries_total" in str(text)
    finally:
        close()
        ticker.cancel()
