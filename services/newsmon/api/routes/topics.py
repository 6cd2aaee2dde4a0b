"""Topics: the list, and preview (classify a text, optionally with a draft topic, and explain the matches)."""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from newsmon.errors import ConfigError, QuerySyntaxError

from ..bodies import read_body
from ..context import ctx, reply
from ..models import PreviewIn
from ..problems import Problem


async def list_topics(request: Request) -> Response:
    """Every loaded topic with its query, threshold and severity."""
    engine = await ctx(request).engine()
    return reply([{"id": t.id, "title": t.title, "description": t.description, "languages": list(t.languages),
                   "severity": t.severity, "threshold": t.threshold, "query": t.query, "source": t.source}
                  for t in engine.topics])


async def preview(request: Request) -> Response:
    """Classify a posted text; every topic whose query held, with its score, spans and explanation."""
    body = await read_body(request, PreviewIn)
    if not (body.title or body.text):
        raise Problem(422, "text: give a title or a text to classify",
                      errors=[{"field": "text", "message": "give a title or a text"}])
    engine = await ctx(request).engine()
    try:
        result = await asyncio.to_thread(engine.preview, body.title, body.text, body.lang, body.topic_toml)
    except QuerySyntaxError as exc:
        raise Problem(422, f"topic_toml: {exc}", errors=[{"field": "topic_toml", "message": str(exc),
                                                          "line": exc.line, "column": exc.column}]) from None
    except (ConfigError, ValueError) as exc:
        raise Problem(422, f"topic_toml: {exc}",
                      errors=[{"field": "topic_toml", "message": str(exc)}]) from None
    matched = {m.topic for m in result.matches}
    scores: list[dict[str, Any]] = [m.model_dump(mode="json") | {"over_threshold": m.topic in matched}
                                    for m in sorted(result.scores.values(), key=lambda m: -m.score)]
    return reply({"lang": result.lang, "matches": [m.model_dump(mode="json") for m in result.matches],
                  "scores": scores, "places": [p.model_dump(mode="json") for p in result.places],
                  "actors": [a.model_dump(mode="json") for a in result.actors]})


ROUTES = [
    Route("/api/v1/topics", list_topics, methods=["GET"]),
    Route("/api/v1/topics/preview", preview, methods=["POST"]),
]
