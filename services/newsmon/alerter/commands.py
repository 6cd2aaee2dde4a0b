"""CLI subcommands owned by the alerter: `newsmon deliveries list|replay` and `newsmon silences list|add|expire`.

`replay_deliveries` is the public entry point the API calls for the same operation; silences go through the same
store queries as the API's (`newsmon.store.alerts`). Bad input is one line on stderr and exit 2.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from newsmon.errors import ConfigError
from newsmon.store.commands import with_store

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
    _register_silences(sub, common)


def _register_silences(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("silences", help="suppress matching alerts for a while; list and expire silences")
    verbs = p.add_subparsers(dest="verb", metavar="VERB")
    verbs.required = True
    ls = verbs.add_parser("list", parents=[common], help="active silences, oldest first")
    ls.set_defaults(func=_silences_list)
    add = verbs.add_parser("add", parents=[common], help="add a silence and print its id",
                           description="Suppress notifications matching every given field (at least one).")
    add.add_argument("--topic", metavar="TOPIC_ID")
    add.add_argument("--place", metavar="PLACE", help="a place name (English or Arabic), gazetteer id or circle")
    add.add_argument("--text", metavar="TEXT", help="words in the alert's title, summary or sources' titles")
    add.add_argument("--subscription", metavar="ID", help="only this subscription's notifications")
    add.add_argument("--duration", metavar="DURATION", help="how long: seconds or '30m', '2h', '1d' (≤ 90 days)")
    add.add_argument("--reason", metavar="TEXT", help="why (shown in listings and suppressed deliveries)")
    add.set_defaults(func=_silences_add)
    ex = verbs.add_parser("expire", parents=[common], help="end a silence now")
    ex.add_argument("id", metavar="SILENCE_ID")
    ex.set_defaults(func=_silences_expire)


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


def _when(ts: float | None) -> str:
    return datetime.fromtimestamp(ts).astimezone().strftime("%Y-%m-%d %H:%M:%S") if ts else "-"


def _list(args: argparse.Namespace) -> int:
    from newsmon.store import deliveries

    async def work(store: Store) -> list[deliveries.Delivery]:
        return await deliveries.list_deliveries(store, status=args.status, subscription=args.subscription,
                                                limit=args.limit)

    rows = asyncio.run(with_store(args.config, work))
    print(f"{'ID':<58} {'STATUS':<10} {'ATT':>3} {'NEXT/DONE':<19} LAST")
    for r in rows:
        stamp = r.delivered_at if r.status == "delivered" else r.next_attempt_at
        last = r.last_error or (str(r.last_status) if r.last_status else "")
        if r.lease_owner and r.status == "pending":
            last = f"{last} [held by {r.lease_owner}]".strip()
        print(f"{r.id:<58} {r.status:<10} {r.attempts:>3} {_when(stamp):<19} {last}")
    return 0


def _replay(args: argparse.Namespace) -> int:
    since = parse_since(args.since) if args.since else None

    async def work(store: Store) -> int:
        return await replay_deliveries(store, delivery=args.id, subscription=args.subscription, since=since,
                                       everything=args.all)

    count = asyncio.run(with_store(args.config, work))
    print(f"replayed {count} dead deliver{'y' if count == 1 else 'ies'}")
    return 0


def _silences_list(args: argparse.Namespace) -> int:
    from newsmon.store import alerts

    rows = asyncio.run(with_store(args.config, lambda store: alerts.active_silences(store, time.time())))
    print(f"{'ID':<22} {'EXPIRES':<19} {'BY':<12} {'MATCHING':<40} REASON")
    for s in rows:
        scope = " ".join(f"{k}={v}" for k in ("topic", "place", "text", "subscription") if (v := getattr(s, k)))
        print(f"{s.id:<22} {_when(s.expires_at):<19} {s.created_by:<12} {scope:<40} {s.reason}")
    return 0


def _silences_add(args: argparse.Namespace) -> int:
    from newsmon.settings import parse_duration
    from newsmon.store import alerts

    if args.duration is None or args.reason is None:
        raise ConfigError("silences add: --duration and --reason are required")
    try:
        duration = parse_duration(args.duration)
    except ValueError:
        raise ConfigError(f"--duration = {args.duration!r}: expected seconds or a unit, e.g. '2h'") from None
    try:
        silence = alerts.new_silence(reason=args.reason, duration=duration, now=time.time(), created_by="cli",
                                     topic=args.topic, place=args.place, text=args.text,
                                     subscription=args.subscription)
    except ValueError as exc:
        raise ConfigError(f"silences add: {exc}") from None
    saved = asyncio.run(with_store(args.config, lambda store: alerts.add_silence(store, silence)))
    print(saved.id)
    return 0


def _silences_expire(args: argparse.Namespace) -> int:
    from newsmon.store import alerts

    if not asyncio.run(with_store(args.config, lambda store: alerts.expire_silence(store, args.id, time.time()))):
        raise ConfigError(f"silences expire: no active silence with id {args.id!r}")
    print(f"expired {args.id}")
    return 0
