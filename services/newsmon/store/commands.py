"""CLI subcommands owned by the store: `newsmon db upgrade|current`."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add `db upgrade` and `db current`."""
    p = sub.add_parser("db", help="database schema: apply migrations, show the revision")
    dbsub = p.add_subparsers(dest="db_command", metavar="ACTION")
    dbsub.required = True
    up = dbsub.add_parser("upgrade", parents=[common], help="apply every pending migration (idempotent)")
    up.set_defaults(func=_upgrade)
    cur = dbsub.add_parser("current", parents=[common], help="print the schema revision and the code's head")
    cur.set_defaults(func=_current)


async def _with_store(args: argparse.Namespace, upgrade: bool) -> int:
    from newsmon.settings import load_settings
    from newsmon.store import Store
    from newsmon.store.migrate import current, head

    settings = load_settings(args.config)
    store = await Store.open(settings.store.url, create=upgrade)
    try:
        print(f"store: {settings.store.url.split('@')[-1]}  revision: {await current(store.engine)}  "
              f"code head: {head()}")
    finally:
        await store.close()
    return 0


def _upgrade(args: argparse.Namespace) -> int:
    return asyncio.run(_with_store(args, upgrade=True))


def _current(args: argparse.Namespace) -> int:
    return asyncio.run(_with_store(args, upgrade=False))
