"""The classifier worker: articles in, one Match per matched topic out (keyed by story id), at least once.

Redelivery is harmless: the same article gets the same story (store/stories.py keys by article id) and the
same Match ids, so the alerter de-duplicates.
"""

from __future__ import annotations

import asyncio
import time

from newsmon import log, metrics
from newsmon.bus.base import Bus, Message
from newsmon.bus.loop import consume
from newsmon.classifier.engine import Engine, load_engine
from newsmon.classifier.stories import StoryAssigner
from newsmon.errors import ParseError
from newsmon.events import ARTICLES_TOPIC, MATCHES_TOPIC, Article, Match
from newsmon.settings import Settings
from newsmon.store.base import Store

GROUP = "newsmon-classifier"
_log = log.get(__name__)


class ClassifierService:
    """Consumes ARTICLES_TOPIC in group newsmon-classifier and publishes to MATCHES_TOPIC."""

    def __init__(self, settings: Settings, bus: Bus, store: Store, engine: Engine | None = None) -> None:
        self.settings, self.bus, self.store = settings, bus, store
        self.engine = engine or load_engine(settings)
        self.stories = StoryAssigner(store, settings.classifier.story_window)

    async def run(self, stop: asyncio.Event, until_idle: bool = False) -> None:
        """Classify until `stop` (or until the topic is drained, with `until_idle`)."""
        consumer = self.bus.consumer([ARTICLES_TOPIC], GROUP)
        await consumer.start()
        try:
            await consume(self.bus, consumer, self.handle, group=GROUP, stop=stop, until_idle=until_idle)
        finally:
            await consumer.stop()

    async def handle(self, msg: Message) -> None:
        """Classify one article message and publish its matches (errors go to the consume loop's policy)."""
        try:
            article = Article.model_validate_json(msg.value)
        except ValueError as exc:
            raise ParseError(f"not an Article: {str(exc)[:500]}") from None
        started = time.perf_counter()
        c = self.engine.classify(article.title, article.text, article.lang)
        metrics.CLASSIFY_SECONDS.observe(time.perf_counter() - started)
        metrics.CLASSIFIED.labels(lang=c.lang or "und").inc()
        if not c.matches:
            return
        story_id = await self.stories.assign(article, c)
        for m in c.matches:
            match = Match(id=f"{article.id}:{article.revision}:{m.topic}", article=article, lang=c.lang,
                          match=m, places=c.places, actors=c.actors, focus=sorted(c.focus),
                          story_id=story_id)
            await self.bus.publish(MATCHES_TOPIC, match.to_bytes(), key=story_id.encode())
            metrics.MATCHES.labels(topic=m.topic).inc()
        _log.debug("classified", article_id=article.id, story_id=story_id,
                   topics=[m.topic for m in c.matches])

