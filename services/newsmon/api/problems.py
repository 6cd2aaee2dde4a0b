"""RFC 9457 problem details: every error the API returns is `application/problem+json`.

Routes raise `Problem`; the handlers here turn it, Starlette's HTTPException, a pydantic ValidationError and
anything unexpected into one JSON shape, so a client parses errors one way.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from newsmon import log
from newsmon.errors import NewsmonError

from .metrics import API_ERRORS

_log = log.get(__name__)

TITLES = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
          405: "Method Not Allowed", 409: "Conflict", 413: "Content Too Large", 415: "Unsupported Media Type",
          422: "Unprocessable Content", 500: "Internal Server Error", 503: "Service Unavailable"}


class Problem(Exception):
    """An error response: status, a readable detail, optional field errors."""

    def __init__(self, status: int, detail: str, *, errors: list[dict[str, Any]] | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.errors = errors or []
        self.headers = headers or {}


def problem_response(request: Request | None, status: int, detail: str,
                     errors: list[dict[str, Any]] | None = None,
                     headers: dict[str, str] | None = None) -> Response:
    """A problem+json response."""
    body: dict[str, Any] = {"type": "about:blank", "title": TITLES.get(status, "Error"), "status": status,
                            "detail": detail}
    if request is not None:
        body["instance"] = request.url.path
    if errors:
        body["errors"] = errors
    API_ERRORS.labels(str(status)).inc()
    return JSONResponse(body, status_code=status, headers=headers, media_type="application/problem+json")


def field_errors(exc: ValidationError, prefix: str = "") -> list[dict[str, Any]]:
    """pydantic errors as [{field, message}], the field as a dotted path."""
    out = []
    for e in exc.errors(include_url=False, include_input=False):
        path = ".".join(str(p) for p in e["loc"])
        out.append({"field": f"{prefix}{path}" if path else prefix.rstrip(".") or "(body)",
                    "message": e["msg"].removeprefix("Value error, ")})
    return out


def validation_problem(exc: ValidationError, prefix: str = "") -> Problem:
    """A 422 naming the first bad field in its detail and all of them in `errors`."""
    errors = field_errors(exc, prefix)
    first = errors[0]
    return Problem(422, f"{first['field']}: {first['message']}", errors=errors)


async def on_problem(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Problem)
    return problem_response(request, exc.status, exc.detail, exc.errors, exc.headers)


async def on_http(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return problem_response(request, exc.status_code, exc.detail or TITLES.get(exc.status_code, "Error"),
                            headers=dict(exc.headers or {}))


async def on_error(request: Request, exc: Exception) -> Response:
    # Store or bus trouble is ours, not the client's: 503 so callers retry; anything else is a bug (500).
    if isinstance(exc, NewsmonError) and exc.retriable:
        _log.warning("api.unavailable", path=request.url.path, error=str(exc))
        return problem_response(request, 503, "a backend is unavailable; retry later",
                                headers={"Retry-After": "5"})
    _log.error("api.internal_error", path=request.url.path, error=repr(exc), exc_info=exc)
    return problem_response(request, 500, "internal error (logged)")


HANDLERS = {Problem: on_problem, HTTPException: on_http, Exception: on_error}
