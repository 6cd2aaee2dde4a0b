"""`create_app`: the whole HTTP surface in one screen — routes, middleware (outermost first), lifespan."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from newsmon.bus import Bus
from newsmon.settings import Settings
from newsmon.store import Store

from . import openapi, sse
from .auth import AuthMiddleware
from .context import Context
from .limits import LimitMiddleware
from .live import Hub
from .problems import HANDLERS
from .routes import alerting, dashboard, feeds, health, news, topics


async def openapi_json(request: Request) -> Response:
    return JSONResponse(openapi.document())


def create_app(settings: Settings, store: Store, bus: Bus | None = None, hub: Hub | None = None) -> Starlette:
    """The API app; the hub (live tails) runs for the app's lifetime unless the caller runs it."""
    own_hub = hub is None
    context = Context(settings=settings, store=store, bus=bus, hub=hub or Hub(bus, store))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        stop = asyncio.Event()
        task = asyncio.create_task(context.hub.run(stop)) if own_hub else None
        try:
            yield
        finally:
            stop.set()
            context.hub.close()
            if task is not None:
                await task

    routes = [*health.ROUTES, Route("/api/v1/openapi.json", openapi_json, methods=["GET"]), *topics.ROUTES,
              *feeds.ROUTES, *news.ROUTES, *alerting.ROUTES, *sse.ROUTES, *dashboard.ROUTES]
    middleware = [
        Middleware(LimitMiddleware),  # outermost: caps bodies before anything reads them
        Middleware(AuthMiddleware, store=store, metrics_public=settings.api.metrics_public),
    ]
    app = Starlette(routes=routes, middleware=middleware, exception_handlers=HANDLERS,
                    lifespan=lifespan)
    app.state.ctx = context
    return app
