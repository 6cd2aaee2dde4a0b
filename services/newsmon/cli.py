"""The `newsmon` command.

Each service owns its subcommands in its `commands.py` (`register(subparsers)`); this module only parses the
global options, dispatches, and turns errors into one-line messages: bad config exits 2, other errors exit 1.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from newsmon import __version__, log
from newsmon.errors import ConfigError, NewsmonError

_COMMAND_MODULES = (
    "newsmon.runtime_commands",
    "newsmon.poller.commands",
    "newsmon.classifier.commands",
    "newsmon.alerter.commands",
    "newsmon.api.commands",
    "newsmon.store.commands",
)


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (every service's subcommands)."""
    import importlib

    parser = argparse.ArgumentParser(prog="newsmon", description="Streaming news monitor and alerting service.")
    parser.add_argument("--version", action="version", version=f"newsmon {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", "-c", metavar="FILE", help="TOML config file (env NEWSMON_* overrides it)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in _COMMAND_MODULES:
        module = importlib.import_module(name)
        module.register(sub, common)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    # Until a command sets up logging its own way, warnings go to stderr: stdout is data for some commands
    # (`newsmon classify`, `fetch`), and structlog's default printer would write log lines into it.
    log.setup("warning")
    try:
        code = int(args.func(args))
    except ConfigError as exc:
        print(f"newsmon: {exc}", file=sys.stderr)
        return 2
    except NewsmonError as exc:
        print(f"newsmon: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
