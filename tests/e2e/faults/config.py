"""The shared config of the worker processes: Kafka with a namespace, PostgreSQL, fast timers."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.faults.corpus import STORY_WINDOW

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def write(path: Path, *, bootstrap: str, namespace: str, store_url: str, feed_urls: list[str], hook_url: str,
          poll_every: float = 2.0, metrics_listen: str = "") -> Path:
    """Write the TOML config and return its path."""
    lines = [
        f'data_dir = "{path.parent / "data"}"',
        "[bus]", f'url = "kafka://{bootstrap}"', f'namespace = "{namespace}"', "partitions = 4",
        "[store]", f'url = "{store_url}"',
        "[http]", "allow_private_networks = true", "connect_timeout = 2", "read_timeout = 5", "total_timeout = 10",
        "[poller]", f"min_interval = {poll_every}", "per_host_concurrency = 8", "per_host_interval = 0",
        "[classifier]", f'story_window = "{STORY_WINDOW}"',
        "[alerting]", "group_wait = 1", "group_interval = 5",
        # enough retries to outlast a receiver that is down for a while; a breaker that closes again quickly
        "[delivery]", "retry_delays = [0.5, 1, 1, 2, 2, 2, 3, 3, 3, 5, 5, 5, 5, 5, 5]", "timeout = 3",
        "breaker_threshold = 5", "breaker_cooldown = 1",
        "[api]", "enabled = false",
        "[log]", 'level = "info"', 'format = "json"',
        "[metrics]", f'listen = "{metrics_listen}"',
    ]
    for n, url in enumerate(feed_urls):
        lines += ["[[feeds]]", f'id = "stream-{n:02d}"', f'url = "{url}"', f'interval = "{poll_every}s"']
    lines += [
        "[[subscriptions]]", 'id = "ops-syria"', 'topics = ["syria-military-shifts"]',
        "[subscriptions.webhook]", f'url = "{hook_url}"', f'secret = "{SECRET}"',
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
