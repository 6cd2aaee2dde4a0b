"""One attempt: the rows of a delivery (one, or an email digest's) through their channel, within the timeout.

    subscription gone / endpoint disabled / channel gone → DeliveryError, not retriable
    webhook → one POST on this endpoint's client       email → one SMTP session
    no answer within `delivery.timeout`                  → DeliveryError, retriable

Each webhook endpoint has its own poster (its own kept-alive connections: endpoints stay apart), closed when the
endpoint is retired (no subscription points at it any more).
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable
from typing import TypeVar

import httpx

from newsmon import log
from newsmon.alerter.channels import email as email_channel
from newsmon.alerter.channels import webhook
from newsmon.alerter.channels.poster import Poster
from newsmon.errors import DeliveryError, NewsmonError
from newsmon.events import Alert
from newsmon.settings import Settings, SubscriptionSettings
from newsmon.store.deliveries import Delivery

_log = log.get(__name__)
T = TypeVar("T")


class Sender:
    """Sends with one client per webhook endpoint."""

    def __init__(self, settings: Settings, connections: int) -> None:
        self.settings, self.timeout, self.connections = settings, settings.delivery.timeout, connections
        self._posters: dict[str, Poster] = {}
        self._ssl: asyncio.Future[ssl.SSLContext] | None = None

    async def send(
        self, rows: list[Delivery], sub: SubscriptionSettings | None, endpoint: str, disabled: str | None
    ) -> int | None:
        """Attempt the delivery of `rows` (one subscription, one channel); the HTTP status when there is one."""
        first = rows[0]
        if sub is None:
            raise DeliveryError("subscription no longer configured", retriable=False)
        if disabled is not None:
            raise DeliveryError(f"endpoint disabled: {disabled}", retriable=False)
        alerts = [Alert.model_validate_json(r.payload) for r in rows]
        if first.channel == "webhook" and sub.webhook is not None:
            poster = await self._poster(endpoint)
            return await self._timed(webhook.send(poster, sub.webhook, sub.id, alerts[0]))
        if first.channel == "email" and sub.email is not None:
            smtp = self.settings.smtp
            await self._timed(email_channel.send(smtp, sub.email, alerts, first.digest, self.timeout))
            return None
        raise DeliveryError(f"subscription has no {first.channel} channel any more", retriable=False)

    async def _timed(self, attempt: Awaitable[T]) -> T:
        try:
            async with asyncio.timeout(self.timeout):
                return await attempt
        except TimeoutError as exc:
            raise DeliveryError(f"timeout after {self.timeout:g}s", retriable=True) from exc

    async def _poster(self, endpoint: str) -> Poster:
        poster = self._posters.get(endpoint)
        if poster is None:
            tls = endpoint.startswith("https:")
            if tls and self._ssl is None:
                # Loading the trust roots takes tens of ms: off the loop, once, before any attempt's clock starts.
                self._ssl = asyncio.ensure_future(asyncio.to_thread(httpx.create_ssl_context))
            context = await asyncio.shield(self._ssl) if tls and self._ssl is not None else None
            http = self.settings.http
            try:
                made = Poster(endpoint, http, context, min(self.timeout, http.connect_timeout), self.connections)
            except NewsmonError as exc:  # a URL we cannot post to
                raise DeliveryError(str(exc), retriable=exc.retriable) from exc
            poster = self._posters.setdefault(endpoint, made)
        return poster

    def retire(self, endpoint: str) -> None:
        """Close the idle connections of an endpoint nothing points at any more."""
        poster = self._posters.pop(endpoint, None)
        if poster is not None:
            poster.close()

    def close(self) -> None:
        for poster in self._posters.values():
            poster.close()
        self._posters.clear()
