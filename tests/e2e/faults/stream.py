"""The corpus served as live RSS feeds on loopback: each feed lists every item released so far, newest first.

Before `begin()` every feed is an empty (valid) document; afterwards an item appears once its release time has
passed, and stays, so a poller that was down (or backing off) finds it later: what the pipeline loses is its own
doing, never the feed's.
"""

from __future__ import annotations

import bisect
import threading
import time
from email.utils import format_datetime
from xml.sax.saxutils import escape

from tests.e2e.faults.corpus import Corpus, Item
from tests.support.feedserver import FeedServer, Reply, Request


def _item_xml(it: Item) -> str:
    return (f'<item><guid isPermaLink="false">{escape(it.guid)}</guid><title>{escape(it.title)}</title>'
            f"<link>{escape(it.url)}</link><description>{escape(it.text)}</description>"
            f"<pubDate>{format_datetime(it.published)}</pubDate></item>")


class FeedStream:
    """Serves `/feed/<n>.xml` for each feed of the corpus from a FeedServer."""

    def __init__(self, corpus: Corpus, server: FeedServer) -> None:
        self.corpus, self.server = corpus, server
        self.started: float | None = None  # wall-clock time of begin()
        self._feeds = [corpus.of_feed(f) for f in range(corpus.feeds)]
        self._releases = [[it.release for it in items] for items in self._feeds]
        self._xml = [[_item_xml(it) for it in items] for items in self._feeds]
        self._cache: dict[tuple[int, int], bytes] = {}
        self._lock = threading.Lock()
        for f in range(corpus.feeds):
            server.route(self.path(f), handler=self._handler(f))

    @staticmethod
    def path(feed: int) -> str:
        return f"/feed/{feed:02d}.xml"

    def urls(self) -> list[str]:
        return [self.server.url(self.path(f)) for f in range(self.corpus.feeds)]

    def begin(self) -> None:
        """Start releasing items (release times count from now)."""
        self.started = time.time()

    def released_at(self, item: Item) -> float:
        """Wall-clock time the item first became visible."""
        assert self.started is not None
        return self.started + item.release

    def _handler(self, feed: int):  # type: ignore[no-untyped-def]
        def answer(_request: Request) -> Reply:
            elapsed = -1.0 if self.started is None else time.time() - self.started
            count = bisect.bisect_right(self._releases[feed], elapsed)
            return Reply(200, self._document(feed, count), {"Content-Type": "application/rss+xml"})

        return answer

    def _document(self, feed: int, count: int) -> bytes:
        with self._lock:
            doc = self._cache.get((feed, count))
            if doc is None:
                body = "".join(reversed(self._xml[feed][:count]))
                doc = (f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
                       f"<title>stream feed {feed}</title><link>https://news.example.org/</link>"
                       f"<description>fault-test stream</description>{body}</channel></rss>").encode()
                self._cache[(feed, count)] = doc
            return doc
