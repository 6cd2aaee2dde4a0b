"""A webhook receiver that can fail (503) or go down (port closed) for a while, and the ledger of what it got."""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from dataclasses import dataclass, field

from tests.support.receiver import Receiver, Reply, Request

HOOK = "/hook"


class FlakyReceiver(Receiver):
    """`down()` closes the port (connections refused) until `up()`; `failing(True)` answers 503."""

    async def down(self) -> None:
        if self._server is not None:
            self._server.close()
            for w in list(self._writers):
                w.close()
            self._server = None

    async def up(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, self.port)

    def failing(self, on: bool) -> None:
        self._default[HOOK] = Reply(503) if on else Reply(204)

    async def wait_status(self, status: int, count: int, within: float) -> bool:
        """Wait until `count` requests were answered with `status`; False after `within` seconds."""

        def enough() -> bool:
            return sum(1 for r in self.requests if r.status == status) >= count

        try:
            async with asyncio.timeout(within), self._changed:
                await self._changed.wait_for(enough)
        except TimeoutError:
            return False
        return True


@dataclass
class Ledger:
    """Per webhook-id, every attempt the receiver answered: when, with what status, which payload."""

    attempts: dict[str, list[Request]] = field(default_factory=lambda: defaultdict(list))
    bodies: dict[str, dict[str, object]] = field(default_factory=dict)

    @classmethod
    def of(cls, requests: list[Request]) -> Ledger:
        ledger = cls()
        for r in requests:
            if r.path != HOOK or r.status is None:
                continue
            wid = r.headers["webhook-id"]
            ledger.attempts[wid].append(r)
            if 200 <= r.status < 300:
                ledger.bodies[wid] = json.loads(r.body)
        return ledger

    def successes(self, wid: str) -> list[Request]:
        return [r for r in self.attempts[wid] if r.status is not None and 200 <= r.status < 300]

    def delivered_urls(self, kind: str = "new") -> dict[str, str]:
        """Alert URL → webhook-id of every notification of this kind received with success."""
        out = {}
        for wid, body in self.bodies.items():
            data = body["data"]
            assert isinstance(data, dict)
            if data.get("kind") == kind or body.get("type") == f"alert.{kind}":
                out[str(data["url"])] = wid
        return out
