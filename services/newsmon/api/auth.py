"""Bearer-token authentication and scopes as ASGI middleware (pure ASGI, so SSE streams are not buffered).

GET/HEAD (and preview, which changes nothing) need the `read` scope (an admin token has it too); every other
method needs `admin`. Health checks,
the dashboard's static files and the OpenAPI document are open; `/metrics` is open when
`api.metrics_public`. EventSource cannot send headers, so `?token=` is accepted as well.
"""

from __future__ import annotations

from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from newsmon.store import Store, tokens

from .metrics import API_AUTH_FAILURES
from .problems import problem_response

OPEN_PATHS = {"/healthz", "/readyz", "/", "/dashboard", "/api/v1/openapi.json", "/favicon.ico"}
OPEN_PREFIXES = ("/dashboard/",)
READ_ONLY_POSTS = {"/api/v1/topics/preview"}  # computes an answer, changes nothing: analysts with read tokens


def _presented(scope: Scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            kind, _, token = value.decode("latin-1").partition(" ")
            return token.strip() if kind.lower() == "bearer" and token.strip() else None
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    found = query.get("token")
    return found[0] if found else None


def _read_only(method: str, path: str) -> bool:
    return method in ("GET", "HEAD") or (method == "POST" and path in READ_ONLY_POSTS)


class AuthMiddleware:
    """Refuses requests without a valid token of the needed scope (401/403 problem details)."""

    def __init__(self, app: ASGIApp, store: Store, metrics_public: bool) -> None:
        self.app = app
        self.store = store
        self.open = OPEN_PATHS | ({"/metrics"} if metrics_public else set())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or path in self.open or path.startswith(OPEN_PREFIXES):
            await self.app(scope, receive, send)
            return
        token = _presented(scope)
        found = await tokens.lookup(self.store, token) if token else None
        refusal = None
        if found is None:
            reason = "missing" if not token else "invalid"
            refusal = problem_response(Request(scope), 401, f"a valid API token is required ({reason} token)",
                                       headers={"WWW-Authenticate": 'Bearer realm="newsmon"'})
        elif found.scope != "admin" and not _read_only(scope["method"], path):
            reason = "scope"
            refusal = problem_response(Request(scope), 403, "this action needs a token with the admin scope")
        if refusal is not None:
            API_AUTH_FAILURES.labels(reason).inc()
            await refusal(scope, receive, send)
            return
        scope.setdefault("state", {})["token"] = found
        await self.app(scope, receive, send)
