"""What every route needs: settings, store, bus, the live hub and the classifier engine (lazy)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from newsmon.bus import Bus
from newsmon.settings import Settings
from newsmon.store import Store

from .live import Hub

if TYPE_CHECKING:
    from newsmon.classifier.engine import Engine


@dataclass
class Context:
    """Shared by the routes through `app.state.ctx`."""

    settings: Settings
    store: Store
    bus: Bus | None
    hub: Hub
    _engine: Engine | None = None
    _engine_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def engine(self) -> Engine:
        """The classifier engine, built once (in a thread: compiling the automaton takes a moment)."""
        async with self._engine_lock:
            if self._engine is None:
                from newsmon.classifier.engine import load_engine

                self._engine = await asyncio.to_thread(load_engine, self.settings)
            return self._engine


def ctx(request: Request) -> Context:
    """The app's context."""
    context: Context = request.app.state.ctx
    return context


def reply(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> JSONResponse:
    """A JSON response of already JSON-ready data."""
    return JSONResponse(data, status_code=status, headers=headers)
