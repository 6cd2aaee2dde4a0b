"""Runs the demo: sample feeds → poller → classifier → alerter → a local webhook receiver that prints alerts."""

from __future__ import annotations

import asyncio
import base64
import secrets
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from newsmon.demo import samples
from newsmon.demo.servers import feed_host, webhook_receiver

_AR, _EN = "/arabic-desk.xml", "/english-wire.xml"


def _print_alert(body: dict[str, Any], verified: bool) -> None:
    alert = body["data"]
    mark = "NEW   " if alert["kind"] == "new" else "UPDATE"
    sig = "signature ok" if verified else "BAD SIGNATURE"
    print(f"\n[{datetime.now(UTC):%H:%M:%S}] {mark} {alert['topic']}  score {alert['score']:.2f}  "
          f"sources {alert['source_count']}  ({sig}, webhook-id {alert['id']})")
    print(f"  {alert['title']}")
    if alert.get("explanation"):
        why = alert["explanation"]
        print(f"  why: {why[:220] + ' …' if len(why) > 220 else why}")
    places = ", ".join(f"{p['name_en']} / {p['name_ar']}" for p in alert.get("places", []))
    if places:
        print(f"  places: {places}")
    for src in alert.get("sources", []):
        print(f"  - [{src.get('lang') or '?'}] {src.get('source') or src['feed_id']}: {src['title']}")
    if alert.get("changes"):
        print(f"  changed: {'; '.join(alert['changes'])}")


def _settings(data_dir: Path, feeds_url: str, hook_url: str, secret: str, config: str | None) -> Any:
    from newsmon.settings import load_settings

    return load_settings(config, **{
        "data_dir": data_dir,
        "http": {"allow_private_networks": True},
        "alerting": {"group_wait": 1, "group_interval": 2},
        "delivery": {"retry_delays": [1, 5, 30]},
        "api": {"enabled": False},
        "feeds": [{"url": feeds_url + _AR, "interval": 3, "id": "demo-arabic-desk", "name": "Arabic desk (demo)"},
                  {"url": feeds_url + _EN, "interval": 3, "id": "demo-english-wire", "name": "English wire (demo)"}],
        "subscriptions": [{"id": "demo-ops", "topics": ["syria-military-shifts"],
                           "webhook": {"url": hook_url, "secret": secret}}],
    })


async def run_demo(duration: float | None, data_dir: str | None, config: str | None) -> int:
    """Serve the feeds, run every service, add a late English report, print what the receiver gets."""
    from newsmon import log
    from newsmon.runtime import run_services

    log.setup("warning", "console")
    now = datetime.now(UTC)
    feeds = {_AR: samples.render_rss("Arabic desk (demo)", "http://demo.invalid/ar", "ar",
                                     samples.ARABIC_DESK, now),
             _EN: samples.render_rss("English wire (demo)", "http://demo.invalid/en", "en",
                                     samples.ENGLISH_WIRE, now)}
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
    host, receiver = feed_host(feeds), webhook_receiver(secret, _print_alert)
    await host.start()
    await receiver.start()
    tmp = None if data_dir else tempfile.TemporaryDirectory(prefix="newsmon-demo-")
    state = Path(data_dir or (tmp.name if tmp else "."))
    settings = _settings(state, host.url, receiver.url + "/hook", secret, config)
    print(f"newsmon demo: feeds at {host.url}{_AR} and {host.url}{_EN}; webhook receiver at {receiver.url}/hook")
    print("Subscribed to syria-military-shifts. Football, finance and aid items must stay silent.")
    stop = asyncio.Event()
    pipeline = asyncio.create_task(run_services(settings, ["poller", "classifier", "alerter"], stop=stop))

    async def late_report() -> None:
        await asyncio.sleep(8)
        items = [*samples.ENGLISH_WIRE, samples.ENGLISH_LATE]
        feeds[_EN] = samples.render_rss("English wire (demo)", "http://demo.invalid/en", "en", items,
                                        datetime.now(UTC))
        print("\n(the English wire now reports the same story: expect an UPDATE, not a second alert)")

    extra = asyncio.create_task(late_report())
    try:
        if duration is not None:
            await asyncio.wait([pipeline], timeout=duration)
        else:
            await pipeline
    finally:
        stop.set()
        extra.cancel()
        await asyncio.gather(pipeline, extra, return_exceptions=True)
        await receiver.stop()
        await host.stop()
        if tmp is not None:
            tmp.cleanup()
    print("\nnewsmon demo: done")
    return 0
