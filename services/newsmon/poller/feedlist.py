"""The configured feeds as feed states: ids from the config (or a stable hash of the URL)."""

from __future__ import annotations

import hashlib

from newsmon.settings import FeedSettings, Settings
from newsmon.store.feeds import FeedState


def feed_id(feed: FeedSettings) -> str:
    """The configured id, else a stable hash of the URL."""
    return feed.id or "f_" + hashlib.sha256(str(feed.url).encode()).hexdigest()[:16]


def configured_feeds(settings: Settings) -> list[FeedState]:
    """The config's feeds as fresh states (the store keeps what it knows about them)."""
    by_id = {feed_id(f): f for f in settings.feeds}
    return [FeedState(id=fid, url=str(f.url), config_url=str(f.url), interval=f.interval,
                      current_interval=f.interval, name=f.name, lang=f.lang) for fid, f in by_id.items()]
