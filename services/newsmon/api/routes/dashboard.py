"""The dashboard page and its static assets, served from the package (works offline, no CDN)."""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

ASSETS = Path(__file__).resolve().parent.parent / "dashboard"


async def root(request: Request) -> Response:
    query = request.url.query  # keeps ?token= of a sign-in link
    return RedirectResponse("/dashboard" + (f"?{query}" if query else ""), status_code=307)


async def page(request: Request) -> Response:
    return FileResponse(ASSETS / "index.html", headers={"Cache-Control": "no-cache"})


ROUTES = [
    Route("/", root, methods=["GET"]),
    Route("/dashboard", page, methods=["GET"]),
    Mount("/dashboard/", app=StaticFiles(directory=ASSETS), name="dashboard"),
]
