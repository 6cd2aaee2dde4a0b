"""A delivery worker in its own process, for the tests with two alerter processes on one store.

Usage: python -m tests.alerter.delivery_child STORE_URL DATA_DIR URL_A URL_B
Delivers subscriptions "ops" (URL_A) and "desk" (URL_B) until SIGTERM; prints "owner <id>" once running.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

from newsmon import log
from newsmon.alerter.delivery import DeliveryWorker
from newsmon.store import Store
from tests.alerter.conftest import hook, make_settings


async def main(url: str, data_dir: str, url_a: str, url_b: str) -> None:
    log.setup("warning")  # to stderr: stdout carries the "owner" line
    settings = make_settings(Path(data_dir), [hook("ops", url_a), hook("desk", url_b)], delivery={"concurrency": 8})
    store = await Store.open(url)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    worker = DeliveryWorker(settings, store)
    print(f"owner {worker.owner}", flush=True)
    try:
        await worker.run(stop)
    finally:
        await store.close()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:5]))
