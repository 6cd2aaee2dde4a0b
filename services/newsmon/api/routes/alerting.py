"""Subscriptions (config ones read-only, API ones stored; secrets never returned), silences, deliveries, dead
letters, replay."""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from newsmon.settings import SubscriptionSettings
from newsmon.store import alerts as alert_store
from newsmon.store import deliveries as delivery_store
from newsmon.store import subscriptions as sub_store

from ..bodies import epoch, read_body, read_query
from ..context import ctx, reply
from ..models import DeliveryQuery, ReplayIn, SilenceIn, SubscriptionIn, SubscriptionPatch
from ..problems import Problem, validation_problem


def _who(request: Request) -> str:
    token = request.scope.get("state", {}).get("token")
    return getattr(token, "name", "") or "api"


def _config_view(s: SubscriptionSettings) -> dict[str, Any]:
    # mode="json" renders SecretStr as '**********', so secrets never leave the process
    return s.model_dump(mode="json") | {"origin": "config"}


def _stored_view(row: sub_store.Stored | sub_store.Invalid, config_ids: set[str]) -> dict[str, Any]:
    meta = {"origin": "api", "created_by": row.created_by, "created_at": row.created_at,
            "updated_at": row.updated_at}
    if isinstance(row, sub_store.Invalid):
        return {"id": row.id, "error": f"ignored: the stored spec does not validate: {row.error}"} | meta
    out = row.spec.model_dump(mode="json") | meta
    if row.spec.id in config_ids:
        out["error"] = "ignored: the config file defines a subscription with this id"
    return out


def _config(request: Request) -> dict[str, SubscriptionSettings]:
    return {s.id: s for s in ctx(request).settings.subscriptions}


async def list_subscriptions(request: Request) -> Response:
    """Subscriptions from the config file and from the API (secrets redacted)."""
    config = _config(request)
    stored = await sub_store.list_all(ctx(request).store)
    return reply([_config_view(s) for s in config.values()] + [_stored_view(r, set(config)) for r in stored])


async def get_subscription(request: Request) -> Response:
    sid = request.path_params["subscription_id"]
    config = _config(request)
    if sid in config:
        return reply(_config_view(config[sid]))
    return reply(_stored_view(await _stored(request, sid), set(config)))


async def _stored(request: Request, sid: str) -> sub_store.Stored | sub_store.Invalid:
    """The stored subscription `sid` that the API may change: 409 for a config one, 404 when unknown."""
    if sid in _config(request):
        raise Problem(409, f"subscription {sid!r} is defined in the config file; change it there")
    row = await sub_store.get(ctx(request).store, sid)
    if row is None:
        raise Problem(404, f"no subscription with id {sid!r}")
    return row


async def _checked(request: Request, data: dict[str, Any]) -> SubscriptionIn:
    """Validate a subscription as the config would, plus: topics must be loaded ones."""
    try:
        sub = SubscriptionIn.model_validate(data)
    except ValidationError as exc:
        raise validation_problem(exc) from None
    known = {t.id for t in (await ctx(request).engine()).topics}
    for i, topic in enumerate(sub.topics):
        if topic not in known:
            msg = f"unknown topic {topic!r} (GET /api/v1/topics lists them)"
            raise Problem(422, f"topics.{i}: {msg}", errors=[{"field": f"topics.{i}", "message": msg}])
    return sub


async def create_subscription(request: Request) -> Response:
    """Store a new subscription; the running alerter picks it up within `alerting.subscriptions_reload`."""
    body = await read_body(request, SubscriptionPatch)
    sub = await _checked(request, body.model_extra or {})
    if sub.id in _config(request):
        raise Problem(409, f"subscription {sub.id!r} is defined in the config file")
    saved = await sub_store.create(ctx(request).store, sub, _who(request), time.time())
    if saved is None:
        raise Problem(409, f"a subscription with id {sub.id!r} exists")
    return reply(_stored_view(saved, set()), status=201, headers={"Location": f"/api/v1/subscriptions/{sub.id}"})


def _merge(target: Any, patch: Any) -> Any:
    """RFC 7396 JSON merge patch."""
    if not isinstance(patch, dict):
        return patch
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = _merge(out.get(key), value)
    return out


async def update_subscription(request: Request) -> Response:
    """PUT replaces a stored subscription whole; PATCH merges a JSON merge patch into it (secrets kept)."""
    sid = request.path_params["subscription_id"]
    row = await _stored(request, sid)
    data = (await read_body(request, SubscriptionPatch)).model_extra or {}
    if data.get("id") not in (None, sid):
        raise Problem(422, "id: must be the id in the path (delete and create to rename)",
                      errors=[{"field": "id", "message": "must be the id in the path"}])
    if request.method == "PATCH" and isinstance(row, sub_store.Stored):
        data = _merge(json.loads(sub_store.dump_spec(row.spec)), data)
    sub = await _checked(request, data | {"id": sid})
    now = time.time()
    if not await sub_store.replace(ctx(request).store, sub, now):
        raise Problem(404, f"no subscription with id {sid!r}")
    return reply(_stored_view(sub_store.Stored(sub, row.created_by, row.created_at, now), set()))


async def delete_subscription(request: Request) -> Response:
    """Delete a stored subscription: no new notifications for it (deliveries already queued still go out)."""
    sid = request.path_params["subscription_id"]
    await _stored(request, sid)
    if not await sub_store.remove(ctx(request).store, sid):
        raise Problem(404, f"no subscription with id {sid!r}")
    return Response(status_code=204)


async def list_silences(request: Request) -> Response:
    """Active silences."""
    return reply([asdict(s) for s in await alert_store.active_silences(ctx(request).store, time.time())])


async def create_silence(request: Request) -> Response:
    body = await read_body(request, SilenceIn)
    try:
        silence = alert_store.new_silence(reason=body.reason, duration=body.duration, now=time.time(),
                                          created_by=_who(request), topic=body.topic, place=body.place,
                                          text=body.text, subscription=body.subscription)
    except ValueError as exc:
        field, _, msg = str(exc).rpartition(": ")
        raise Problem(422, str(exc), errors=[{"field": field or "(body)", "message": msg}]) from None
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
    Route("/api/v1/subscriptions", create_subscription, methods=["POST"]),
    Route("/api/v1/subscriptions/{subscription_id}", get_subscription, methods=["GET"]),
    Route("/api/v1/subscriptions/{subscription_id}", update_subscription, methods=["PUT", "PATCH"]),
    Route("/api/v1/subscriptions/{subscription_id}", delete_subscription, methods=["DELETE"]),
    Route("/api/v1/silences", list_silences, methods=["GET"]),
    Route("/api/v1/silences", create_silence, methods=["POST"]),
    Route("/api/v1/silences/{silence_id}", expire_silence, methods=["DELETE"]),
    Route("/api/v1/deliveries", list_deliveries, methods=["GET"]),
    Route("/api/v1/deliveries/dead", dead_letters, methods=["GET"]),
    Route("/api/v1/deliveries/replay", replay, methods=["POST"]),
    Route("/api/v1/deliveries/{delivery_id}", get_delivery, methods=["GET"]),
]
