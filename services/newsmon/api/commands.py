"""CLI subcommands owned by the api: `newsmon api` and `newsmon tokens create|list`."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add `api` and `tokens`."""
    p = sub.add_parser("api", parents=[common], help="serve the HTTP API, live stream and dashboard")
    p.add_argument("--until-idle", action="store_true", help=argparse.SUPPRESS)
    p.set_defaults(func=_api)
    p = sub.add_parser("tokens", help="API tokens: create one (printed once), list them")
    tsub = p.add_subparsers(dest="tokens_command", metavar="ACTION")
    tsub.required = True
    create = tsub.add_parser("create", parents=[common],
                             help="create a token and print it (only its hash is kept)")
    create.add_argument("--scope", choices=["read", "admin"], required=True)
    create.add_argument("--name", default="", help="who or what uses it (shown in listings and silences)")
    create.set_defaults(func=_create)
    listing = tsub.add_parser("list", parents=[common], help="list tokens (names, scopes; never the secrets)")
    listing.set_defaults(func=_list)


def _api(args: argparse.Namespace) -> int:
    from newsmon import log
    from newsmon.runtime import run_services
    from newsmon.settings import load_settings

    settings = load_settings(args.config)
    log.setup(settings.log.level, settings.log.format)
    asyncio.run(run_services(settings, ["api"], until_idle=False))
    return 0


def _create(args: argparse.Namespace) -> int:
    from newsmon.store import tokens
    from newsmon.store.commands import with_store

    token = asyncio.run(with_store(args.config, lambda s: tokens.create(s, args.scope, args.name)))
    print(token)
    return 0


def _list(args: argparse.Namespace) -> int:
    import datetime as dt

    from newsmon.store import tokens
    from newsmon.store.commands import with_store

    for t in asyncio.run(with_store(args.config, tokens.list_tokens)):
        when = dt.datetime.fromtimestamp(t.created_at, dt.UTC).strftime("%Y-%m-%d %H:%M")
        print(f"{t.hash[:12]}  {t.scope:<5}  {when}  {t.name}")
    return 0
