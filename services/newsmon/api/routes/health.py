"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..context import ctx, reply


async def healthz(request: Request) -> Response:
    """Alive: the process serves requests."""
    return reply({"status": "ok"})


async def readyz(request: Request) -> Response:
    """Ready: the store and the bus answer."""
    c = ctx(request)
    store_ok = await c.store.ping()
    bus_ok = await c.bus.ping() if c.bus is not None else True
    ok = store_ok and bus_ok
    body = {"status": "ok" if ok else "unavailable", "store": store_ok, "bus": bus_ok}
    return reply(body, status=200 if ok else 503)


async def metrics(request: Request) -> Response:
    """Every newsmon metric in the Prometheus text format."""
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)


ROUTES = [
    Route("/healthz", healthz, methods=["GET"]),
    Route("/readyz", readyz, methods=["GET"]),
    Route("/metrics", metrics, methods=["GET"]),
]
