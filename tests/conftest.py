"""Test-wide fixtures: a clean environment, paths to shared material, the session Kafka broker."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"

pytest_plugins = ["tests.support.kafka", "tests.support.postgres"]


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No NEWSMON_* or KAFKA_* variable from the developer's shell leaks into a test."""
    for name in list(os.environ):
        if name.startswith("NEWSMON_") or (name.startswith("KAFKA_") and name != "KAFKA_BOOTSTRAP_SERVERS"):
            monkeypatch.delenv(name, raising=False)
    yield


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """`../shared` beside the repo; tests that need it skip when it is absent."""
    if not SHARED.is_dir():
        pytest.skip("../shared is not present")
    return SHARED
