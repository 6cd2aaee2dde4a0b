"""A real API on loopback (port 0) over a temporary store and embedded bus, with read and admin tokens."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from newsmon.api.service import ApiService
from newsmon.bus import Bus, open_bus
from newsmon.settings import Settings, load_settings
from newsmon.store import Store, tokens

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def make_settings(data_dir: Path, **overrides: Any) -> Settings:
    """Settings for a test API: loopback port 0, one configured feed and one webhook subscription."""
    base: dict[str, Any] = {
        "data_dir": data_dir,
        "api": {"listen": "127.0.0.1:0"},
        "feeds": [{"url": "http://127.0.0.1:9/feed.xml", "id": "cfg-feed", "name": "Configured"}],
        "subscriptions": [{"id": "ops", "topics": ["syria-military-shifts"],
                           "webhook": {"url": "http://127.0.0.1:9/hook", "secret": SECRET}}],
    }
    return load_settings(None, **(base | overrides))


@dataclass
class Api:
    """A running API and what it runs on."""

    url: str
    settings: Settings
    store: Store
    bus: Bus
    service: ApiService
    read: str
    admin: str

    def client(self, token: str | None = None) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        # a guard against a hung server, not a speed check: a draft-topic preview recompiles every pack (~1 s
        # on a quiet machine) and a busy CI machine has taken over 10 s
        return httpx.AsyncClient(base_url=self.url, headers=headers, timeout=60)


async def start_api(settings: Settings) -> tuple[Api, asyncio.Event, asyncio.Task[None]]:
    """Open a store and bus, start ApiService, wait until it listens."""
    store = await Store.open(settings.store.url)
    bus = open_bus(settings.bus)
    await bus.start()
    service = ApiService(settings, bus, store)
    stop = asyncio.Event()
    task = asyncio.create_task(service.run(stop))
    while not service.server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.02)
    api = Api(f"http://127.0.0.1:{service.port}", settings, store, bus, service,
              await tokens.create(store, "read", "reader"), await tokens.create(store, "admin", "operator"))
    return api, stop, task


async def stop_api(api: Api, stop: asyncio.Event, task: asyncio.Task[None]) -> None:
    stop.set()
    await asyncio.wait_for(task, 15)
    await api.bus.stop()
    await api.store.close()


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    running, stop, task = await start_api(make_settings(tmp_path))
    try:
        yield running
    finally:
        await stop_api(running, stop, task)
