"""CLI subcommands owned by the store (`newsmon db upgrade|current`), and `with_store` for every one-shot command.

`with_store(config, work)` is how a CLI command that needs the database runs: load the settings, open the store,
await `work(store)`, close the store whatever happens. One-shot commands do not wait for an unreachable store (a
person is watching): they fail at once with the one-line reason.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from newsmon.store import Store

T = TypeVar("T")


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add `db upgrade` and `db current`."""
    p = sub.add_parser("db", help="database schema: apply migrations, show the revision")
    dbsub = p.add_subparsers(dest="db_command", metavar="ACTION")
    dbsub.required = True
    up = dbsub.add_parser("upgrade", parents=[common], help="apply every pending migration (idempotent)")
    up.set_defaults(func=_upgrade)
    cur = dbsub.add_parser("current", parents=[common], help="print the schema revision and the code's head")
    cur.set_defaults(func=_current)


async def with_store(config: str | None, work: Callable[[Store], Awaitable[T]], *, create: bool = True) -> T:
    """Open the configured store (applying migrations when `create`), return `await work(store)`, close it."""
    from newsmon.settings import load_settings
    from newsmon.store import Store

    store = await Store.open(load_settings(config).store.url, create=create)
    try:
        return await work(store)
    finally:
        await store.close()


def _revision(args: argparse.Namespace, upgrade: bool) -> int:
    from newsmon.settings import load_settings
    from newsmon.store.base import safe_url
    from newsmon.store.migrate import current, head

    url = load_settings(args.config).store.url  # checked first: a bad config is reported before connecting

    async def show(store: Store) -> None:
        print(f"store: {safe_url(url)}  revision: {await current(store.engine)}  code head: {head()}")

    asyncio.run(with_store(args.config, show, create=upgrade))
    return 0


def _upgrade(args: argparse.Namespace) -> int:
    return _revision(args, upgrade=True)


def _current(args: argparse.Namespace) -> int:
    return _revision(args, upgrade=False)
