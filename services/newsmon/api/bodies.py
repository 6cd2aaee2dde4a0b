"""Request bodies and query parameters → validated models, or a 4xx problem naming the field."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from starlette.requests import Request

from .problems import Problem, validation_problem

M = TypeVar("M", bound=BaseModel)


async def read_body(request: Request, model: type[M]) -> M:
    """The JSON body validated as `model`."""
    ctype = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
    if ctype != "application/json" and not ctype.endswith("+json"):
        raise Problem(415, "the body must be application/json")
    raw = await request.body()
    try:
        data = json.loads(raw or b"null")
    except (ValueError, UnicodeDecodeError) as exc:
        raise Problem(400, f"the body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise Problem(422, "(body): expected a JSON object",
                      errors=[{"field": "(body)", "message": "expected a JSON object"}])
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise validation_problem(exc) from None


def read_query(request: Request, model: type[M]) -> M:
    """Query parameters validated as `model` (repeated keys keep their last value; unknown keys refused)."""
    params: dict[str, Any] = {k: v for k, v in request.query_params.items() if k != "token"}
    try:
        return model.model_validate(params)
    except ValidationError as exc:
        raise validation_problem(exc) from None


def epoch(value: datetime | None) -> float | None:
    """A datetime as unix seconds (naive means UTC)."""
    if value is None:
        return None
    if value.tzinfo is None:
        from datetime import UTC

        value = value.replace(tzinfo=UTC)
    return value.timestamp()
