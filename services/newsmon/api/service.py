"""ApiService: serves the API with uvicorn beside the other services (`newsmon run`) or alone."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
from collections.abc import Iterator

import uvicorn

from newsmon import log
from newsmon.bus import Bus
from newsmon.errors import StoreError
from newsmon.settings import Settings
from newsmon.store import Store, tokens

from .app import create_app
from .live import Hub

_log = log.get(__name__)


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: the runtime owns SIGTERM/SIGINT and sets `stop`."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class ApiService:
    """The HTTP API, the live stream and the dashboard on `settings.api.listen`."""

    def __init__(self, settings: Settings, bus: Bus, store: Store) -> None:
        self.settings = settings
        self.store = store
        self.hub = Hub(bus, store)
        self.app = create_app(settings, store, bus, hub=self.hub)
        host, _, port = settings.api.listen.rpartition(":")
        config = uvicorn.Config(self.app, host=host.strip("[]"), port=int(port), log_config=None,
                                access_log=False, lifespan="on", timeout_graceful_shutdown=5)
        self.server = _Server(config)

    @property
    def port(self) -> int | None:
        """The bound port once started (useful with port 0)."""
        for server in getattr(self.server, "servers", []):
            for sock in server.sockets:
                return int(sock.getsockname()[1])
        return None

    async def _first_token(self) -> None:
        """With no token stored yet, make the dashboard reachable: on loopback create an admin token and print its
        sign-in URL once (only local users can reach it); elsewhere say how to create one."""
        host, _, port = self.settings.api.listen.rpartition(":")
        try:
            loopback = host == "localhost" or ipaddress.ip_address(host.strip("[]")).is_loopback
        except ValueError:  # a host name
            loopback = False
        try:
            if await tokens.list_tokens(self.store):
                return
            if not loopback:
                _log.warning("api.no_tokens", hint="create one: newsmon tokens create --scope admin --config FILE")
                return
            token = await tokens.create(self.store, "admin", "first-run")
        except StoreError as exc:
            _log.warning("api.first_token_failed", error=str(exc))
            return
        _log.warning("api.first_token", dashboard=f"http://{host}:{self.port or port}/dashboard?token={token}",
                     note="admin token 'first-run', made because none existed; shown only now")

    async def run(self, stop: asyncio.Event, until_idle: bool = False) -> None:
        """Serve until `stop` (an API has no backlog: with `until_idle` it returns at once)."""
        if until_idle:
            return
        _log.info("api.start", listen=self.settings.api.listen, metrics_open=self.settings.api.metrics_public)
        serving = asyncio.create_task(self.server.serve(), name="uvicorn")
        while not self.server.started and not serving.done():  # noqa: ASYNC110 (uvicorn has no "started" event)
            await asyncio.sleep(0.02)
        if self.server.started:
            await self._first_token()
        tailing = asyncio.create_task(self.hub.run(stop), name="api-live")
        stopper = asyncio.create_task(stop.wait())
        await asyncio.wait([serving, stopper], return_when=asyncio.FIRST_COMPLETED)
        self.hub.close()  # ends the SSE streams, so the graceful shutdown does not wait for them
        self.server.should_exit = True
        stopper.cancel()
        await asyncio.gather(serving, tailing, return_exceptions=True)
        with contextlib.suppress(asyncio.CancelledError):
            await stopper
        if serving.exception() is not None:
            _log.error("api.failed", error=repr(serving.exception()))
            raise serving.exception()  # type: ignore[misc]
        _log.info("api.stopped")
