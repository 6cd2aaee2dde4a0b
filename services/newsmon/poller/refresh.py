"""Refresh one feed: fetch → (skip if unchanged) → parse → process → publish → remember → schedule.

Reads top-down as the pipeline itself. A document's new and edited articles are published as one batch
(`publish_many`) before they are remembered (at-least-once: a refused batch, or a crash between the two,
re-publishes them all on the next poll, possibly duplicating some on the bus; the classifier is idempotent),
and the feed's validators and body hash are saved last, so a crash anywhere makes the next poll redo the work
instead of skipping it.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx

from newsmon import log, metrics
from newsmon.bus.base import Bus, Outgoing
from newsmon.errors import FetchError, HTTPStatusError, NewsmonError, ParseError
from newsmon.events import ARTICLES_TOPIC
from newsmon.poller import parser, processor, schedule
from newsmon.poller.fetcher import Fetched, fetch
from newsmon.poller.saver import StateSaver
from newsmon.settings import Settings
from newsmon.store import Store, seen
from newsmon.store.feeds import FeedState
from newsmon.store.seen import SeenRow

_log = log.get(__name__)
# Kafka's default message limit is 1 MiB (the embedded bus applies the same); leave room for key and headers.
MAX_ARTICLE_BYTES = 1_000_000
_PARSE_IN_THREAD = 256 * 1024  # big documents are parsed off the event loop so other feeds keep moving
_RETRY_INFRA = 30.0  # at most this many seconds before retrying a feed whose poll failed on our side (bus, store)


@dataclass(slots=True)
class Context:
    """What every refresh needs."""

    settings: Settings
    bus: Bus
    store: Store
    client: httpx.AsyncClient
    rng: random.Random
    saver: StateSaver


async def refresh(ctx: Context, state: FeedState) -> str:
    """Poll one feed and update `state` (saved to the store); the outcome label."""
    started = time.time()
    state.last_poll, state.polls = started, state.polls + 1
    try:
        fetched = await fetch(
            ctx.client, state.url, ctx.settings.http, etag=state.etag, last_modified=state.last_modified
        )
    except FetchError as exc:
        return await _failed(ctx, state, exc)
    finally:
        metrics.POLL_SECONDS.observe(time.time() - started)
    _follow_move(state, fetched)
    if fetched.outcome == "not_modified":
        return await _unchanged(ctx, state, fetched, "not_modified")
    body_hash = hashlib.sha256(fetched.body).hexdigest()
    if body_hash == state.body_hash:
        return await _unchanged(ctx, state, fetched, "identical")
    try:
        feed = await _parse(fetched)
    except ParseError as exc:
        return await _failed(ctx, state, exc)
    published = await publish_articles(ctx, state, feed, started)
    state.etag, state.last_modified, state.body_hash = fetched.etag, fetched.last_modified, body_hash
    state.title, state.hub = feed.title or state.title, fetched.hub or feed.hub or state.hub
    state.max_items = max(state.max_items, len(feed.entries))
    _succeeded(ctx, state, hint=_hint(fetched.fresh_for, feed.ttl))
    ctx.saver.save(state)
    metrics.POLLS.labels("changed").inc()
    _log.debug(
        "feed.polled", feed_id=state.id, outcome="changed", entries=len(feed.entries), published=published
    )
    return "changed"


async def _parse(fetched: Fetched) -> parser.Feed:
    started = time.perf_counter()
    try:
        if len(fetched.body) > _PARSE_IN_THREAD:
            return await asyncio.to_thread(
                parser.parse, fetched.body, url=fetched.url, content_type=fetched.content_type
            )
        return parser.parse(fetched.body, url=fetched.url, content_type=fetched.content_type)
    finally:
        metrics.PARSE_SECONDS.observe(time.perf_counter() - started)


async def publish_articles(ctx: Context, state: FeedState, feed: parser.Feed, now: float) -> int:
    """Publish a document's new and edited articles, then remember them; the number published."""
    drafts = processor.process(
        feed,
        feed_id=state.id,
        feed_url=state.url,
        source=state.name,
        lang=state.lang,
        fetched_at=datetime.fromtimestamp(now, UTC),
    )
    rows = await seen.load_seen(
        ctx.store, state.id, [d.article.id for d in drafts], [d.link_key for d in drafts if d.link_key]
    )
    known = processor.Known(
        items={r.id: processor.Seen(r.content_hash, r.revision) for r in rows},
        by_link={r.link_key: r.id for r in rows if r.link_key},
    )
    items = processor.resolve(drafts, known)
    gap = processor.is_gap(items, state.max_items > 0, state.max_items)
    fresh = [i for i in items if i.action != "same"]
    sendable = [(i, o) for i in fresh if (o := _outgoing(state, i)) is not None]
    if sendable:  # one batch, in document order; a refusal means none counts as published (the poll is retried)
        await ctx.bus.publish_many(ARTICLES_TOPIC, [o for _, o in sendable])
        for action, count in Counter(i.action for i, _ in sendable).items():
            metrics.ARTICLES.labels(action).inc(count)
    new = [_row(i) for i in fresh if i.action == "new"]
    edited = [_row(i) for i in fresh if i.action == "edit"]
    # Pruning counts rows; rows only grow by inserts, so every 10th inserting poll keeps the memory bounded.
    cap = min(ctx.settings.poller.seen_ids_max, max(1000, 10 * max(state.max_items, len(items))))
    prune = cap if new and state.polls % 10 == 1 else None
    same = [i.article.id for i in items if i.action == "same"]
    await seen.remember(ctx.store, state.id, new, edited, same, now, prune)
    _observe_rate(state, items, len(new), now)
    if gap:
        _record_gap(ctx, state, len(items), now)
    return len(fresh)


def _outgoing(state: FeedState, item: processor.Item) -> Outgoing | None:
    """The bus message for an article; None (logged, counted) when it is larger than a bus message may be: such
    an article would make every poll of its feed fail. It is still remembered, so it is reported once."""
    value = item.article.to_bytes()
    if len(value) <= MAX_ARTICLE_BYTES:
        return Outgoing(value, item.article.id.encode())
    metrics.FEED_ERRORS.labels("article_too_large").inc()
    _log.error("article.too_large", feed_id=state.id, article_id=item.article.id, url=(item.article.url or "")[:200],
               size=len(value), limit=MAX_ARTICLE_BYTES, detail="not published; the feed's other articles are")
    return None


def _row(item: processor.Item) -> SeenRow:
    a = item.article
    return SeenRow(a.id, item.link_key, a.content_hash, a.revision)


def _observe_rate(state: FeedState, items: list[processor.Item], new: int, now: float) -> None:
    if state.last_success is None:
        times = [(i.article.published or i.article.updated) for i in items]
        state.items_per_day = schedule.document_rate([t.timestamp() for t in times if t is not None])
    else:
        state.items_per_day = schedule.observed_rate(state.items_per_day, new, now - state.last_success)


def _record_gap(ctx: Context, state: FeedState, entries: int, now: float) -> None:
    state.gaps, state.last_gap_at = state.gaps + 1, now
    state.current_interval = schedule.after_gap(state.current_interval, state.interval, ctx.settings.poller)
    metrics.GAPS.inc()
    _log.warning(
        "feed.possible_missed_items",
        feed_id=state.id,
        url=state.url,
        entries=entries,
        new_interval=round(state.current_interval, 1),
    )


def _follow_move(state: FeedState, fetched: Fetched) -> None:
    if fetched.moved_to and fetched.moved_to != state.url:
        _log.info("feed.moved_permanently", feed_id=state.id, old_url=state.url, new_url=fetched.moved_to)
        state.url = fetched.moved_to


def _hint(fresh_for: float | None, ttl: float | None) -> float | None:
    hints = [h for h in (fresh_for, ttl) if h]
    return max(hints) if hints else None


def _succeeded(ctx: Context, state: FeedState, hint: float | None) -> None:
    cfg = ctx.settings.poller
    if (
        state.websub_until and state.websub_until > time.time()
    ):  # pushes bring news; polling is the safety net
        state.current_interval = schedule.bounds(state.interval, cfg).high
    elif state.last_gap_at != state.last_poll:  # a gap just shortened the interval; keep it for this round
        state.current_interval = schedule.healthy_interval(state.interval, state.items_per_day, hint, cfg)
    state.error_streak, state.last_success = 0, state.last_poll
    state.next_poll = (state.last_poll or time.time()) + schedule.jittered(
        state.current_interval, cfg, ctx.rng
    )


async def _unchanged(ctx: Context, state: FeedState, fetched: Fetched, outcome: str) -> str:
    if fetched.outcome == "ok":  # identical body: keep the new validators anyway
        state.etag, state.last_modified = (
            fetched.etag or state.etag,
            fetched.last_modified or state.last_modified,
        )
    hint = fetched.fresh_for
    if state.last_success is not None and state.items_per_day is not None:
        state.items_per_day = schedule.observed_rate(state.items_per_day, 0, time.time() - state.last_success)
    _succeeded(ctx, state, hint)
    ctx.saver.save(state)
    metrics.POLLS.labels(outcome).inc()
    return outcome


async def _failed(ctx: Context, state: FeedState, exc: NewsmonError) -> str:
    cfg = ctx.settings.poller
    retry_after = exc.retry_after if isinstance(exc, HTTPStatusError) else None
    state.error_streak += 1
    state.last_error, state.last_error_at = f"{exc.__class__.__name__}: {exc}"[:1000], state.last_poll
    delay = schedule.backoff(state.current_interval, state.error_streak, retry_after, cfg)
    state.next_poll = (state.last_poll or time.time()) + schedule.jittered(delay, cfg, ctx.rng)
    ctx.saver.save(state)
    metrics.POLLS.labels("error").inc()
    metrics.FEED_ERRORS.labels(exc.__class__.__name__).inc()
    _log.warning(
        "feed.poll_failed",
        feed_id=state.id,
        url=state.url,
        error=str(exc),
        streak=state.error_streak,
        retry_in=round(state.next_poll - time.time(), 1),
    )
    return "error"


def internal_error(ctx: Context, state: FeedState, exc: NewsmonError, streak: int) -> str:
    """A poll that failed on our side (bus, store), `streak` in a row: retry the feed soon."""
    # 1 s after a blip, doubling (across all feeds) up to 30 s while the bus or store stays down, so a broker
    # restart delays articles by seconds, and a long outage does not hammer the publishers
    delay = min(_RETRY_INFRA, 2.0 ** min(streak, 8))
    state.next_poll = time.time() + schedule.jittered(delay, ctx.settings.poller, ctx.rng)
    ctx.saver.save(state)  # also releases the lease
    metrics.FEED_ERRORS.labels(exc.__class__.__name__).inc()
    _log.error("feed.poll_internal_error", feed_id=state.id, error=f"{exc.__class__.__name__}: {exc}")
    return "internal_error"


def crashed(ctx: Context, state: FeedState, exc: Exception) -> str:
    """A bug met on one feed's input: logged with its traceback, the feed backs off, the others go on."""
    state.next_poll = time.time() + schedule.backoff(state.current_interval, 3, None, ctx.settings.poller)
    ctx.saver.save(state)
    metrics.FEED_ERRORS.labels("unexpected").inc()
    _log.exception("feed.poll_crashed", feed_id=state.id, error=repr(exc))
    return "bug"
