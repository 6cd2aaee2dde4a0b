"""Politeness per host: at most N requests in flight to one host, and a minimum gap between their starts."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from urllib.parse import urlsplit


@dataclass(slots=True)
class _Host:
    slots: asyncio.Semaphore
    next_start: float = 0.0
    users: int = 0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class HostLimiter:
    """Concurrency and rate limit per host name; idle hosts are forgotten so memory stays bounded."""

    def __init__(self, concurrency: int, interval: float) -> None:
        self._concurrency = concurrency
        self._interval = interval
        self._hosts: dict[str, _Host] = {}

    @asynccontextmanager
    async def slot(self, url: str) -> AsyncIterator[None]:
        """Hold one of the host's slots, started no sooner than `interval` after the previous request."""
        name = (urlsplit(url).hostname or "").lower()
        host = self._hosts.get(name)
        if host is None:
            host = self._hosts[name] = _Host(asyncio.Semaphore(self._concurrency))
        host.users += 1
        try:
            async with host.slots:
                if self._interval > 0:
                    async with host.lock:
                        wait = host.next_start - time.monotonic()
                        if wait > 0:
                            await asyncio.sleep(wait)
                        host.next_start = time.monotonic() + self._interval
                yield
        finally:
            host.users -= 1
            if host.users == 0 and host.next_start <= time.monotonic():
                self._hosts.pop(name, None)
