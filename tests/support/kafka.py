"""Pytest plugin: `kafka_bootstrap`, a real Kafka broker for the test session.

Uses KAFKA_BOOTSTRAP_SERVERS when set; otherwise starts a throwaway broker with
`deploy/kafka/kafka-local start` on free ports with a temporary data dir (jars are cached in KAFKA_LOCAL_HOME,
by default ~/.cache/newsmon/kafka), and stops it when the session ends. Tests that use it are marked
`@pytest.mark.kafka`. `kafka_broker` is the same broker with `restart()` (fault tests).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
KAFKA_LOCAL = REPO / "deploy" / "kafka" / "kafka-local"
# Read once at import, before the autouse fixture that clears KAFKA_* from each test's environment.
_BOOTSTRAP = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "").strip()
_LOCAL_HOME = os.environ.get("KAFKA_LOCAL_HOME")


def free_ports(n: int) -> list[int]:
    """`n` distinct ports that were free a moment ago on 127.0.0.1."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def broker_env(port: int, controller_port: int, data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KAFKA_")}
    env.update(KAFKA_PORT=str(port), KAFKA_CONTROLLER_PORT=str(controller_port), KAFKA_DATA_DIR=str(data_dir))
    if _LOCAL_HOME:
        env["KAFKA_LOCAL_HOME"] = _LOCAL_HOME
    return env


class KafkaBroker:
    """The session's broker: `bootstrap`, and `restart()` when this session started it (not an external one)."""

    def __init__(self, bootstrap: str, env: dict[str, str] | None = None) -> None:
        self.bootstrap, self._env = bootstrap, env

    @property
    def restartable(self) -> bool:
        return self._env is not None

    def _run(self, action: str) -> str:
        assert self._env is not None, "an external broker (KAFKA_BOOTSTRAP_SERVERS) is not ours to restart"
        proc = subprocess.run([str(KAFKA_LOCAL), action], env=self._env, capture_output=True, text=True,
                              timeout=600, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"kafka-local {action} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
        return proc.stdout

    def stop(self) -> None:
        """Clean shutdown (SIGTERM; SIGKILL after 30 s); data kept."""
        self._run("stop")

    def start(self) -> None:
        """Start again on the same port and data dir; returns once the broker answers."""
        self._run("start")

    def restart(self) -> None:
        self.stop()
        self.start()


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaBroker]:
    """The Kafka broker that lives for the whole test session (restartable when started here)."""
    if _BOOTSTRAP:
        yield KafkaBroker(_BOOTSTRAP)
        return
    if shutil.which("java") is None:
        pytest.skip("no java on PATH: cannot start deploy/kafka/kafka-local (or set KAFKA_BOOTSTRAP_SERVERS)")
    port, controller_port = free_ports(2)
    env = broker_env(port, controller_port, tmp_path_factory.mktemp("kafka"))
    proc = subprocess.run([str(KAFKA_LOCAL), "start"], env=env, capture_output=True, text=True, timeout=600,
                          check=False)
    if proc.returncode != 0:
        pytest.fail(f"kafka-local start failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    broker = KafkaBroker(proc.stdout.strip().splitlines()[-1], env)
    try:
        yield broker
    finally:
        subprocess.run([str(KAFKA_LOCAL), "stop"], env=env, capture_output=True, timeout=120, check=False)


@pytest.fixture(scope="session")
def kafka_bootstrap(kafka_broker: KafkaBroker) -> str:
    """`host:port` of a Kafka broker that lives for the whole test session."""
    return kafka_broker.bootstrap
