"""WebSub subscriber: subscribe to a feed's hub, answer verification, accept signed pushes, renew leases.

    subscribe  POST hub.mode=subscribe, hub.topic, hub.callback=<base>/<id>, hub.secret, hub.lease_seconds
    GET  <base>/<id>?hub.mode=subscribe&hub.topic=..&hub.challenge=..&hub.lease_seconds=..  → challenge
    POST <base>/<id>  body = the feed document, X-Hub-Signature: sha256=<HMAC(secret, body)>
         → parsed and published like a poll (same ids, de-duplication, edits); a bad signature is ignored
           (2xx anyway, as the spec asks, so an attacker learns nothing)

Polling continues as a slower safety net while a lease is active (see `refresh`). Feeds are read from the store
when needed (the table changes under a running poller; several pollers may serve one callback URL), and the
secret is set once in the store, so pollers that subscribe the same feed agree on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import secrets
import socket
import time
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Mount, Route

from newsmon import log, metrics
from newsmon.errors import FetchError, HTTPStatusError, ParseError, StoreError
from newsmon.poller import parser
from newsmon.poller.refresh import Context, publish_articles
from newsmon.store import feeds as feed_store
from newsmon.store.feeds import FeedState

_log = log.get(__name__)
LEASE = 7 * 86400.0  # seconds we ask for; hubs may grant less
_RENEW_BEFORE = 0.1  # renew when less than this fraction of the lease is left
_ASK_AGAIN = 600.0  # seconds before asking a hub again for a subscription it has not verified
_HASHES = {"sha1": hashlib.sha1, "sha256": hashlib.sha256, "sha384": hashlib.sha384, "sha512": hashlib.sha512}


def signature_ok(secret: str, body: bytes, header: str | None) -> bool:
    """True when `X-Hub-Signature` is a valid HMAC of the body under our secret."""
    method, _, digest = (header or "").partition("=")
    algorithm = _HASHES.get(method.strip().lower())
    if algorithm is None or not digest:
        return False
    expected = hmac.new(secret.encode(), body, algorithm).hexdigest()
    return hmac.compare_digest(expected, digest.strip().lower())


class WebSub:
    """The subscriber side for every feed that advertises a hub."""

    def __init__(self, ctx: Context, callback_base: str) -> None:
        self.ctx = ctx
        self.callback_base = callback_base.rstrip("/")
        self._asked: dict[str, float] = {}  # feed id -> when we last asked its hub

    def callback(self, state: FeedState) -> str:
        """Our callback URL for one feed."""
        return f"{self.callback_base}/{state.id}"

    async def subscribe(self, state: FeedState, mode: str = "subscribe") -> bool:
        """Ask the feed's hub for (or to end) a subscription; verification comes later on the callback."""
        if not state.hub:
            return False
        state.websub_secret = await feed_store.websub_secret(self.ctx.store, state.id, secrets.token_hex(24))
        if state.websub_secret is None:  # removed meanwhile
            return False
        form = {
            "hub.mode": mode,
            "hub.topic": state.url,
            "hub.callback": self.callback(state),
            "hub.secret": state.websub_secret,
            "hub.lease_seconds": str(int(LEASE)),
        }
        try:
            response = await self.ctx.client.post(state.hub, data=form)
            await response.aclose()
            if response.status_code >= 300:
                raise HTTPStatusError(response.status_code, f"hub answered HTTP {response.status_code}")
        except FetchError as exc:
            metrics.FEED_ERRORS.labels("WebSubSubscribe").inc()
            _log.warning("websub.subscribe_failed", feed_id=state.id, hub=state.hub, error=str(exc))
            return False
        _log.info("websub.subscribe_requested", feed_id=state.id, hub=state.hub, mode=mode)
        return True

    async def renew(self, now: float | None = None) -> int:
        """Subscribe feeds with a hub and no lease, or a lease close to its end; how many were asked.

        A feed asked for recently is not asked again before `_ASK_AGAIN` (its hub may still be verifying).
        """
        now = time.time() if now is None else now
        asked = 0
        for state in await feed_store.websub_due(self.ctx.store, now + LEASE * _RENEW_BEFORE):
            if now - self._asked.get(state.id, -_ASK_AGAIN) >= _ASK_AGAIN:
                self._asked[state.id] = now
                asked += await self.subscribe(state)
        return asked

    async def run(self, listen: str, stop: asyncio.Event, renew_every: float = 60.0) -> None:
        """Serve the callback endpoint on `listen` (HOST:PORT); subscribe and renew every `renew_every` until `stop`.

        Feeds whose first poll discovered a hub are subscribed at the next round.
        """
        import uvicorn

        host, _, port = listen.rpartition(":")
        sock = socket.create_server((host, int(port)))
        prefix = urlsplit(self.callback_base).path.rstrip("/")
        app = Starlette(routes=[Mount(prefix, app=self.app())]) if prefix else self.app()
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
        serving = asyncio.create_task(server.serve(sockets=[sock]), name="websub-callback")
        _log.info("websub.listening", listen=listen, callback=self.callback_base)
        try:
            while not stop.is_set():
                try:
                    await self.renew()
                except StoreError as exc:  # the next round tries again
                    metrics.FEED_ERRORS.labels("StoreError").inc()
                    _log.error("websub.renew_failed", error=str(exc))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), renew_every)
        finally:
            server.should_exit = True
            await serving
            sock.close()

    def app(self) -> Starlette:
        """The callback endpoint (mount it where `callback_base` points)."""
        return Starlette(
            routes=[
                Route("/{feed_id}", self._verify, methods=["GET"]),
                Route("/{feed_id}", self._push, methods=["POST"]),
            ]
        )

    async def _verify(self, request: Request) -> Response:
        state = await feed_store.get_feed(self.ctx.store, request.path_params["feed_id"])
        q = request.query_params
        mode, topic, challenge = q.get("hub.mode", ""), q.get("hub.topic", ""), q.get("hub.challenge", "")
        if state is None or topic not in (state.url, state.config_url):
            return PlainTextResponse("unknown subscription", status_code=404)
        if mode == "denied":
            _log.warning("websub.denied", feed_id=state.id, reason=q.get("hub.reason", ""))
            await feed_store.websub_verified(self.ctx.store, state.id, None)
            return PlainTextResponse("ok")
        if mode != "subscribe" or not challenge or not state.websub_secret:
            return PlainTextResponse("not expected", status_code=404)
        lease = q.get("hub.lease_seconds", "")
        until = time.time() + (float(lease) if lease.isdigit() else LEASE)
        await feed_store.websub_verified(self.ctx.store, state.id, until)
        _log.info("websub.verified", feed_id=state.id, lease=lease)
        return PlainTextResponse(challenge)

    async def _push(self, request: Request) -> Response:
        state = await feed_store.get_feed(self.ctx.store, request.path_params["feed_id"])
        if state is None or not state.active or not state.websub_secret:
            return PlainTextResponse("unknown subscription", status_code=410)
        body = await _read_capped(request, self.ctx.settings.http.max_body_bytes)
        if body is None:
            return PlainTextResponse("too large", status_code=413)
        if not signature_ok(state.websub_secret, body, request.headers.get("x-hub-signature")):
            metrics.FEED_ERRORS.labels("WebSubSignature").inc()
            _log.warning("websub.bad_signature", feed_id=state.id)
            return PlainTextResponse("ok", status_code=202)
        try:
            feed = parser.parse(body, url=state.url, content_type=request.headers.get("content-type", ""))
        except ParseError as exc:
            metrics.FEED_ERRORS.labels("WebSubParse").inc()
            _log.warning("websub.unreadable_push", feed_id=state.id, error=str(exc))
            return PlainTextResponse("ok", status_code=202)
        published = await publish_articles(self.ctx, state, feed, time.time())
        await feed_store.save_statistics(self.ctx.store, state)  # the rate and gaps the push observed
        metrics.POLLS.labels("pushed").inc()
        _log.info("websub.pushed", feed_id=state.id, entries=len(feed.entries), published=published)
        return PlainTextResponse("ok", status_code=202)


async def _read_capped(request: Request, cap: int) -> bytes | None:
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > cap:
            return None
    return bytes(body)
