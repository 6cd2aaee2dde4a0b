"""Fixtures for the offline checks of deploy/: the YAML parser and newsmon's real CLI parser."""

from __future__ import annotations

import argparse
from types import ModuleType

import pytest


@pytest.fixture(scope="session")
def yaml() -> ModuleType:
    """PyYAML (a dev dependency of the deploy checks)."""
    module: ModuleType = pytest.importorskip(
        "yaml", reason="PyYAML checks deploy/*.yaml (pip install pyyaml)"
    )
    return module


@pytest.fixture(scope="session")
def cli_parser() -> argparse.ArgumentParser:
    """newsmon's real argument parser."""
    from newsmon.cli import build_parser

    return build_parser()
