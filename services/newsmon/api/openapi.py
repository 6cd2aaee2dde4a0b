"""The OpenAPI 3.1 document, built from the route table and the request/event models so it cannot drift."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from newsmon import __version__
from newsmon.events import Alert, Match

from .models import (
    ActivityQuery,
    DeliveryQuery,
    FeedIn,
    FeedPatch,
    ListQuery,
    PreviewIn,
    ReplayIn,
    SilenceIn,
    StoryQuery,
    SubscriptionIn,
    SubscriptionPatch,
)

# (method, path) → (summary, query model, body model, success status, response schema ref or None)
Op = tuple[str, type[BaseModel] | None, type[BaseModel] | None, int, str | None]
OPERATIONS: dict[tuple[str, str], Op] = {
    ("get", "/healthz"): ("Liveness", None, None, 200, None),
    ("get", "/readyz"): ("Readiness: store and bus reachable (503 when not)", None, None, 200, None),
    ("get", "/metrics"): ("Prometheus metrics (text format)", None, None, 200, None),
    ("get", "/api/v1/topics"): ("Loaded topics", None, None, 200, None),
    ("post", "/api/v1/topics/preview"): ("Classify a text (optionally with a draft topic)", None, PreviewIn,
                                         200, None),
    ("get", "/api/v1/feeds"): ("Feeds with health", None, None, 200, None),
    ("post", "/api/v1/feeds"): ("Add a feed", None, FeedIn, 201, None),
    ("get", "/api/v1/feeds/{feed_id}"): ("One feed", None, None, 200, None),
    ("patch", "/api/v1/feeds/{feed_id}"): ("Pause or resume a feed", None, FeedPatch, 200, None),
    ("delete", "/api/v1/feeds/{feed_id}"): ("Remove a feed added through the API", None, None, 204, None),
    ("get", "/api/v1/alerts"): ("Recent alert notifications", ListQuery, None, 200, "AlertList"),
    ("get", "/api/v1/alerts/{alert_id}"): ("One alert and its history", None, None, 200, None),
    ("get", "/api/v1/stories"): ("Recent stories", StoryQuery, None, 200, None),
    ("get", "/api/v1/stories/{story_id}"): ("One story: sources, alerts, timeline", None, None, 200, None),
    ("get", "/api/v1/matches"): ("Recent topic matches", ListQuery, None, 200, "MatchList"),
    ("get", "/api/v1/articles"): ("Recent matched articles", ListQuery, None, 200, None),
    ("get", "/api/v1/articles/{article_id}"): ("One recent matched article", None, None, 200, None),
    ("get", "/api/v1/activity"): ("Alerts per topic per hour", ActivityQuery, None, 200, None),
    ("get", "/api/v1/subscriptions"): ("Subscriptions from the config and the API (secrets redacted)", None, None,
                                       200, None),
    ("post", "/api/v1/subscriptions"): ("Create a subscription (the running alerter picks it up)", None,
                                        SubscriptionIn, 201, None),
    ("get", "/api/v1/subscriptions/{subscription_id}"): ("One subscription", None, None, 200, None),
    ("put", "/api/v1/subscriptions/{subscription_id}"): ("Replace a subscription made through the API", None,
                                                         SubscriptionIn, 200, None),
    ("patch", "/api/v1/subscriptions/{subscription_id}"): ("Change a subscription made through the API "
                                                           "(JSON merge patch)", None, SubscriptionPatch, 200, None),
    ("delete", "/api/v1/subscriptions/{subscription_id}"): ("Delete a subscription made through the API", None,
                                                            None, 204, None),
    ("get", "/api/v1/silences"): ("Active silences", None, None, 200, None),
    ("post", "/api/v1/silences"): ("Create a silence", None, SilenceIn, 201, None),
    ("delete", "/api/v1/silences/{silence_id}"): ("Expire a silence now", None, None, 204, None),
    ("get", "/api/v1/deliveries"): ("Deliveries by status, with counts", DeliveryQuery, None, 200, None),
    ("get", "/api/v1/deliveries/dead"): ("Dead-lettered deliveries", DeliveryQuery, None, 200, None),
    ("post", "/api/v1/deliveries/replay"): ("Replay dead deliveries", None, ReplayIn, 200, None),
    ("get", "/api/v1/deliveries/{delivery_id}"): ("One delivery with its attempts", None, None, 200, None),
    ("get", "/api/v1/stream"): ("Live stream (SSE): events 'alert' and 'match'", None, None, 200, None),
}
OPEN = {"/healthz", "/readyz"}
PROBLEM = {"type": "object", "required": ["type", "title", "status", "detail"], "properties": {
    "type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"},
    "detail": {"type": "string"}, "instance": {"type": "string"},
    "errors": {"type": "array", "items": {"type": "object", "properties": {
        "field": {"type": "string"}, "message": {"type": "string"}}}}}}


def _no_null(schema: dict[str, Any]) -> dict[str, Any]:
    options = [s for s in schema.get("anyOf", []) if s.get("type") != "null"]
    base = {k: v for k, v in schema.items() if k != "anyOf"}
    return base | options[0] if len(options) == 1 else schema


def _parameters(path: str, query: type[BaseModel] | None) -> list[dict[str, Any]]:
    text = {"type": "string", "minLength": 1}
    params = [{"name": seg[1:-1], "in": "path", "required": True, "schema": text}
              for seg in path.split("/") if seg.startswith("{")]
    if query is not None:
        for name, prop in query.model_json_schema()["properties"].items():
            params.append({"name": name, "in": "query", "required": False, "schema": _no_null(prop)})
    return params


def _operation(method: str, path: str, op: Op, schemas: dict[str, Any]) -> dict[str, Any]:
    summary, query, body, status, ref = op
    content: dict[str, Any] = {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}
                                                    if ref else {}}}
    if path == "/metrics":
        content = {"text/plain": {"schema": {"type": "string"}}}
    elif path == "/api/v1/stream":
        content = {"text/event-stream": {"schema": {"type": "string"}}}
    ok: dict[str, Any] = {"description": "OK"} | ({"content": content} if status != 204 else {})
    out: dict[str, Any] = {"summary": summary, "operationId": f"{method}_{path}".replace("/", "_"),
                           "parameters": _parameters(path, query),
                           "responses": {str(status): ok, "default": {
                               "description": "Problem details (RFC 9457)",
                               "content": {"application/problem+json": {"schema": {
                                   "$ref": "#/components/schemas/Problem"}}}}}}
    if body is not None:
        schema = body.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(schema.pop("$defs", {}))  # nested models become components of their own
        schemas[body.__name__] = schema
        out["requestBody"] = {"required": True, "content": {"application/json": {"schema": {
            "$ref": f"#/components/schemas/{body.__name__}"}}}}
    if path in OPEN:
        out["security"] = []
    return out


def document() -> dict[str, Any]:
    """The whole OpenAPI document."""
    _, defs = models_json_schema([(Alert, "serialization"), (Match, "serialization")],
                                 ref_template="#/components/schemas/{model}")
    schemas: dict[str, Any] = dict(defs.get("$defs", {})) | {
        "Problem": PROBLEM,
        "AlertList": {"type": "array", "items": {"$ref": "#/components/schemas/Alert"}},
        "MatchList": {"type": "array", "items": {"$ref": "#/components/schemas/Match"}},
    }
    paths: dict[str, dict[str, Any]] = {}
    for (method, path), op in OPERATIONS.items():
        paths.setdefault(path, {})[method] = _operation(method, path, op, schemas)
    return {"openapi": "3.1.0",
            "info": {"title": "newsmon API", "version": __version__,
                     "description": "Read scope for GET, admin for changes. Errors are problem details."},
            "servers": [{"url": "/"}], "paths": paths,
            "components": {"schemas": schemas,
                           "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
            "security": [{"bearer": []}]}
