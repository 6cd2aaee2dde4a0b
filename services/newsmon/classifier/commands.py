"""CLI subcommands owned by the classifier."""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add this service's subcommands to the parser."""
