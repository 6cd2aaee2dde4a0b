"""Subscriptions (config, read-only, secrets redacted), silences, deliveries, dead letters, replay."""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import Any

from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from newsmon.settings import SubscriptionSettings
from newsmon.store import alerts as alert_store
from newsmon.store import deliveries as delivery_store

from ..bodies import epoch, read_body, read_query
from ..context import ctx, reply
from ..models import DeliveryQuery, ReplayIn, SilenceIn
from ..problems import Problem


def _subscription(s: SubscriptionSettings) -> dict[str, Any]:
    # mode="json" renders SecretStr as '**********', so secrets never leave the process
    return s.model_dump(mode="json") | {"origin": "config"}


async def list_subscriptions(request: Request) -> Response:
    """Subscriptions (defined in the config file; read-only here)."""
    return reply([_subscription(s) for s in ctx(request).settings.subscriptions])


async def get_subscription(request: Request) -> Response:
    sid = request.path_params["subscription_id"]
    for s in ctx(request).settings.subscriptions:
        if s.id == sid:
            return reply(_subscription(s))
    raise Problem(404, f"no subscription with id {sid!r}")


async def list_silences(request: Request) -> Response:
    """Active silences."""
    return reply([asdict(s) for s in await alert_store.active_silences(ctx(request).store, time.time())])


async def create_silence(request: Request) -> Response:
    body = await read_body(request, SilenceIn)
    now = time.time()
    token = request.scope.get("state", {}).get("token")
    silence = alert_store.Silence(id="", reason=body.reason, expires_at=now + body.duration, topic=body.topic,
                                  place=body.place, text=body.text, subscription=body.subscription,
                                  created_by=getattr(token, "name", "") or "api", created_at=now)
    saved = await alert_store.add_silence(ctx(request).store, silence)
    return reply(asdict(saved), status=201, headers={"Location": f"/api/v1/silences/{saved.id}"})


async def expire_silence(request: Request) -> Response:
    """End a silence now."""
    sid = request.path_params["silence_id"]
    if not await alert_store.expire_silence(ctx(request).store, sid, time.time()):
        raise Problem(404, f"no active silence with id {sid!r}")
    return Response(status_code=204)


def _delivery(d: delivery_store.Delivery) -> dict[str, Any]:
    return {k: v for k, v in asdict(d).items() if k != "payload"}


async def list_deliveries(request: Request) -> Response:
    """Deliveries, most recent first, by status and subscription; with counts per status."""
    q = read_query(request, DeliveryQuery)
    store = ctx(request).store
    rows = await delivery_store.list_deliveries(store, status=q.status, subscription=q.subscription,
                                                limit=q.limit)
    return reply({"counts": await delivery_store.counts(store),
                  "disabled_endpoints": await delivery_store.disabled_endpoints(store),
                  "items": [_delivery(d) for d in rows]})


async def dead_letters(request: Request) -> Response:
    """Deliveries that gave up (replayable)."""
    q = read_query(request, DeliveryQuery)
    rows = await delivery_store.list_deliveries(ctx(request).store, status="dead",
                                                subscription=q.subscription, limit=q.limit)
    return reply([_delivery(d) for d in rows])


async def get_delivery(request: Request) -> Response:
    """One delivery with every attempt."""
    did = request.path_params["delivery_id"]
    store = ctx(request).store
    table = delivery_store.deliveries
    async with store.engine.connect() as conn:
        row = (await conn.execute(select(table).where(table.c.id == did))).first()
    if row is None:
        raise Problem(404, f"no delivery with id {did!r}")
    out = {k: v for k, v in row._mapping.items() if k != "payload"}
    return reply(out | {"attempts_log": await delivery_store.attempt_log(store, did)})


async def replay(request: Request) -> Response:
    """Queue dead deliveries again (same notification id, so receivers de-duplicate)."""
    body = await read_body(request, ReplayIn)
    if not (body.delivery or body.subscription or body.since or body.everything):
        raise Problem(422, "(body): give delivery, subscription, since, or everything=true",
                      errors=[{"field": "(body)", "message": "needs a filter or everything=true"}])
    if body.delivery:
        await _must_exist(request, body.delivery)
    count = await delivery_store.replay(ctx(request).store, time.time(), delivery=body.delivery,
                                        subscription=body.subscription, since=epoch(body.since),
                                        everything=body.everything)
    return reply({"replayed": count})


async def _must_exist(request: Request, did: str) -> None:
    table = delivery_store.deliveries
    async with ctx(request).store.engine.connect() as conn:
        if (await conn.execute(select(table.c.id).where(table.c.id == did))).first() is None:
            raise Problem(404, f"no delivery with id {did!r}")


ROUTES = [
    Route("/api/v1/subscriptions", list_subscriptions, methods=["GET"]),
    Route("/api/v1/subscriptions/{subscription_id}", get_subscription, methods=["GET"]),
    Route("/api/v1/silences", list_silences, methods=["GET"]),
    Route("/api/v1/silences", create_silence, methods=["POST"]),
    Route("/api/v1/silences/{silence_id}", expire_silence, methods=["DELETE"]),
    Route("/api/v1/deliveries", list_deliveries, methods=["GET"]),
    Route("/api/v1/deliveries/dead", dead_letters, methods=["GET"]),
    Route("/api/v1/deliveries/replay", replay, methods=["POST"]),
    Route("/api/v1/deliveries/{delivery_id}", get_delivery, methods=["GET"]),
]
