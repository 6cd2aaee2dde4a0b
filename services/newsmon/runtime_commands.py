"""CLI subcommands that run services: `run`, one per service, `demo`, `schemas`."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

# Kept here (not imported from runtime) so `newsmon classify` and friends start without the runtime's imports.
SERVICE_NAMES = ("poller", "classifier", "alerter", "api")


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add `run`, `poller`, `classifier`, `alerter`, `demo` and `schemas`."""
    p = sub.add_parser("run", parents=[common], help="run every service in one process (the embedded default)")
    p.add_argument("--until-idle", action="store_true",
                   help="poll each feed once, process everything, deliver (retries included), then exit")
    p.add_argument("--no-api", action="store_true", help="do not serve the HTTP API")
    p.set_defaults(func=_run_all)
    for name in SERVICE_NAMES[:3]:
        p = sub.add_parser(name, parents=[common], help=f"run only the {name} (scale it on its own)")
        p.add_argument("--until-idle", action="store_true", help="exit when there is no more work")
        p.set_defaults(func=_run_one, service=name)
    p = sub.add_parser("demo", parents=[common],
                       help="serve sample feeds locally, run the pipeline, print the alerts a webhook receives")
    p.add_argument("--duration", type=float, default=None, metavar="SECONDS", help="stop after this long")
    p.add_argument("--data-dir", default=None, help="keep demo state here (default: a temporary directory)")
    p.set_defaults(func=_demo)
    p = sub.add_parser("schemas", help="write (or --check) the JSON Schemas and AsyncAPI document in schemas/")
    p.add_argument("--out", default="schemas", help="directory (default: schemas)")
    p.add_argument("--check", action="store_true", help="exit 1 if the files differ from the models")
    p.set_defaults(func=_schemas)


def _settings(args: argparse.Namespace) -> Any:
    from newsmon import log
    from newsmon.settings import load_settings

    settings = load_settings(args.config)
    log.setup(settings.log.level, settings.log.format)
    return settings


def _run_all(args: argparse.Namespace) -> int:
    from newsmon.runtime import run_services

    settings = _settings(args)
    names = [n for n in SERVICE_NAMES if n != "api" or (settings.api.enabled and not args.no_api)]
    asyncio.run(run_services(settings, names, until_idle=args.until_idle))
    return 0


def _run_one(args: argparse.Namespace) -> int:
    from newsmon.runtime import run_services

    asyncio.run(run_services(_settings(args), [args.service], until_idle=args.until_idle))
    return 0


def _demo(args: argparse.Namespace) -> int:
    from newsmon.demo.runner import run_demo

    return asyncio.run(run_demo(duration=args.duration, data_dir=args.data_dir, config=args.config))


def _schemas(args: argparse.Namespace) -> int:
    from pathlib import Path

    from newsmon.schemagen import check, write

    out = Path(args.out)
    if args.check:
        stale = check(out)
        for name in stale:
            print(f"stale: {out / name}")
        return 1 if stale else 0
    for name in write(out):
        print(out / name)
    return 0
