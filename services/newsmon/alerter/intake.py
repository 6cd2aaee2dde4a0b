"""The alerter's two bus handlers and its outbox, each one store transaction per batch.

  matches → lifecycle (alert state + decided notifications, one transaction) → outbox → ALERTS_TOPIC
  alerts  → routing → silences, rate limits → delivery rows (one per notification × subscription × channel)

A redelivered match finds its article already in the story and decides nothing; a redelivered alert finds its
delivery rows already stored. So duplicates may appear on the bus, never at a subscriber.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection

from newsmon import log, metrics
from newsmon.alerter import lifecycle, routing
from newsmon.bus.base import Bus, Message
from newsmon.errors import StoreError
from newsmon.events import ALERTS_TOPIC, Alert, Match
from newsmon.settings import Settings, SubscriptionSettings
from newsmon.store import Store
from newsmon.store import alerts as alerts_db
from newsmon.store import deliveries as deliveries_db

_log = log.get(__name__)
FETCHED_AT_HEADER = "newsmon-fetched-at"  # carries the trigger article's fetch time for the end-to-end metric


@asynccontextmanager
async def _tx(store: Store) -> AsyncIterator[AsyncConnection]:
    """One store transaction; SQLAlchemy errors become StoreError (retriable) here."""
    try:
        async with store.engine.begin() as conn:
            yield conn
    except SQLAlchemyError as exc:
        raise StoreError(f"{exc.__class__.__name__}: {exc}") from exc


def _parse(model: type[Match] | type[Alert], msgs: Sequence[Message], group: str) -> list[Any]:
    out = []
    for msg in msgs:
        try:
            out.append(model.model_validate_json(msg.value))
        except ValidationError as exc:  # a poison message must not block the partition
            metrics.BUS_ERRORS.labels(group, "invalid").inc()
            _log.error("alerter.invalid_message", topic=msg.topic, offset=msg.offset, error=str(exc)[:300])
    return out


async def take_matches(settings: Settings, store: Store, msgs: Sequence[Message]) -> list[Alert]:
    """Fold matches into their alerts; returns the notifications decided now (already in the outbox)."""
    now = time.time()
    decided: list[Alert] = []
    async with _tx(store) as conn:
        for m in _parse(Match, msgs, "newsmon-alerter"):
            alert = await lifecycle.observe(store, conn, m, now, settings.alerting)
            if alert is not None:
                decided.append(alert)
    _count(decided)
    return decided


async def flush_due(store: Store) -> list[Alert]:
    """Decide the notifications whose group wait or group interval has passed."""
    async with _tx(store) as conn:
        decided = await lifecycle.flush(store, conn, time.time())
    _count(decided)
    return decided


def _count(decided: list[Alert]) -> None:
    for a in decided:
        metrics.ALERTS.labels(a.topic, a.kind).inc()
        _log.info(
            "alert.decided",
            alert_id=a.alert_id,
            notification_id=a.id,
            kind=a.kind,
            story_id=a.story_id,
            sources=a.source_count,
            changes=a.changes,
        )


async def publish_outbox(store: Store, bus: Bus) -> int:
    """Publish notifications not yet on the bus (keyed by story id), then mark them; returns how many."""
    rows = await alerts_db.unpublished(store)
    for _nid, payload, fetched_at in rows:
        alert = Alert.model_validate_json(payload)
        headers = [(FETCHED_AT_HEADER, repr(fetched_at).encode())] if fetched_at is not None else []
        await bus.publish(ALERTS_TOPIC, payload.encode(), key=alert.story_id.encode(), headers=headers)
    await alerts_db.mark_published(store, [r[0] for r in rows])
    return len(rows)


def _fetched_at(msg: Message) -> float | None:
    for name, value in msg.headers:
        if name == FETCHED_AT_HEADER:
            try:
                return float(value.decode())
            except ValueError:
                return None
    return None


async def take_alerts(
    settings: Settings, subscriptions: Sequence[SubscriptionSettings], store: Store, msgs: Sequence[Message]
) -> int:
    """Turn alerts into delivery rows (pending or suppressed) for `subscriptions`; returns how many are pending."""
    now = time.time()
    subs = {s.id: s for s in subscriptions}
    smtp = f"smtp://{settings.smtp.host}:{settings.smtp.port}"
    silences = await alerts_db.active_silences(store, now)
    rows: list[dict[str, Any]] = []
    async with _tx(store) as conn:
        for msg in msgs:
            for alert in _parse(Alert, [msg], "newsmon-delivery"):
                routes = routing.route(subscriptions, alert, now, smtp)
                ids = [deliveries_db.delivery_id(alert.id, r.subscription, r.channel) for r in routes]
                have = await deliveries_db.exists(conn, ids) | {r["id"] for r in rows}
                verdicts: dict[str, str | None] = {}
                for r, did in zip(routes, ids, strict=True):
                    if did in have:
                        continue
                    if r.subscription not in verdicts:
                        verdicts[r.subscription] = await _suppressed(
                            conn, subs[r.subscription], alert, silences, now
                        )
                    why = verdicts[r.subscription]
                    rows.append(
                        {
                            "id": did,
                            "notification_id": alert.id,
                            "alert_id": alert.alert_id,
                            "subscription_id": r.subscription,
                            "channel": r.channel,
                            "endpoint": r.endpoint,
                            "status": "suppressed" if why else "pending",
                            "digest": r.digest,
                            "attempts": 0,
                            "next_attempt_at": r.due,
                            "created_at": now,
                            "updated_at": now,
                            "fetched_at": _fetched_at(msg),
                            "last_error": why,
                            "payload": alert.model_dump_json(),
                        }
                    )
        await deliveries_db.add(store, conn, rows)
    return sum(1 for r in rows if r["status"] == "pending")


async def _suppressed(
    conn: AsyncConnection,
    sub: SubscriptionSettings,
    alert: Alert,
    silences: list[alerts_db.Silence],
    now: float,
) -> str | None:
    silence = routing.silenced_by(alert, sub.id, silences)
    if silence is not None:
        metrics.SUPPRESSED.labels("silence").inc()
        _log.info("alert.silenced", notification_id=alert.id, subscription=sub.id, silence=silence.id)
        return f"silenced by {silence.id}: {silence.reason}"
    limit = routing.rate(sub.rate_limit)
    if limit is not None:
        count, period = limit
        if not await alerts_db.take_rate(conn, sub.id, now - now % period, count):
            metrics.SUPPRESSED.labels("rate_limit").inc()
            _log.info(
                "alert.rate_limited", notification_id=alert.id, subscription=sub.id, limit=sub.rate_limit
            )
            return f"rate limit {sub.rate_limit} reached"
    return None
