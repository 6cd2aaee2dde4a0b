"""CLI subcommands owned by the alerter: `newsmon deliveries list|replay`.

`replay_deliveries` is the public entry point the API calls for the same operation.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from newsmon.errors import ConfigError

if TYPE_CHECKING:
    from newsmon.store import Store


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add this service's subcommands to the parser."""
    p = sub.add_parser("deliveries", help="inspect and replay alert deliveries")
    verbs = p.add_subparsers(dest="verb", metavar="VERB")
    verbs.required = True
    ls = verbs.add_parser("list", parents=[common], help="list deliveries, newest first")
    ls.add_argument("--status", choices=["pending", "delivered", "dead", "suppressed"])
    ls.add_argument("--subscription", metavar="ID")
    ls.add_argument("--limit", type=int, default=50)
    ls.set_defaults(func=_list)
    rp = verbs.add_parser("replay", parents=[common], help="send dead-lettered deliveries again")
    which = rp.add_mutually_exclusive_group(required=True)
    which.add_argument("--all", action="store_true", help="every dead delivery")
    which.add_argument("--subscription", metavar="ID")
    which.add_argument("--since", metavar="TIME", help="ISO time (UTC if no zone) or unix seconds")
    which.add_argument("--id", metavar="DELIVERY_ID")
    rp.set_defaults(func=_replay)


def parse_since(value: str) -> float:
    """Unix seconds from '1767225600' or an ISO 8601 time (UTC when no zone is given)."""
    try:
        return float(value)
    except ValueError:
        pass
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise ConfigError(f"--since = {value!r}: expected an ISO time or unix seconds") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


async def replay_deliveries(store: Store, *, delivery: str | None = None, subscription: str | None = None,
                            since: float | None = None, everything: bool = False) -> int:
    """Queue dead deliveries again (same `webhook-id`); the running worker sends them. Returns how many."""
    from newsmon.store import deliveries

    return await deliveries.replay(store, time.time(), delivery=delivery, subscription=subscription,
                                   since=since, everything=everything)


async def _with_store(config: str | None, work: Any) -> Any:
    from newsmon.settings import load_settings
    from newsmon.store import Store

    settings = load_settings(config)
    store = await Store.open(settings.store.url)
    try:
        return await work(store)
    finally:
        await store.close()


def _when(ts: float | None) -> str:
    return datetime.fromtimestamp(ts).astimezone().strftime("%Y-%m-%d %H:%M:%S") if ts else "-"


def _list(args: argparse.Namespace) -> int:
    from newsmon.store import deliveries

    async def work(store: Store) -> list[deliveries.Delivery]:
        return await deliveries.list_deliveries(store, status=args.status, subscription=args.subscription,
                                                limit=args.limit)

    rows = asyncio.run(_with_store(args.config, work))
    print(f"{'ID':<58} {'STATUS':<10} {'ATT':>3} {'NEXT/DONE':<19} LAST")
    for r in rows:
        stamp = r.delivered_at if r.status == "delivered" else r.next_attempt_at
        last = r.last_error or (str(r.last_status) if r.last_status else "")
        print(f"{r.id:<58} {r.status:<10} {r.attempts:>3} {_when(stamp):<19} {last}")
    return 0


def _replay(args: argparse.Namespace) -> int:
    since = parse_since(args.since) if args.since else None

    async def work(store: Store) -> int:
        return await replay_deliveries(store, delivery=args.id, subscription=args.subscription, since=since,
                                       everything=args.all)

    count = asyncio.run(_with_store(args.config, work))
    print(f"replayed {count} dead deliver{'y' if count == 1 else 'ies'}")
    return 0
