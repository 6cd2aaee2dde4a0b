"""Session fixture for a real PostgreSQL server: a throwaway cluster on a free loopback port.

Uses POSTGRES_TEST_URL when set (e.g. a CI service); otherwise finds Debian's PostgreSQL binaries, runs initdb in
a temp dir (as the `postgres` user when we are root: the server refuses to run as root) and starts it.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest


def _bindir() -> Path | None:
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(candidates[-1]).parent if candidates else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LocalPostgres:
    """One PostgreSQL cluster in a directory; start/stop/restart for fault tests."""

    def __init__(self, bindir: Path, root: Path) -> None:
        self.bindir, self.root, self.port = bindir, root, _free_port()
        self.data = root / "data"
        self._as_user: list[str] = []
        if os.geteuid() == 0:
            self._as_user = ["runuser", "-u", "postgres", "--"]
            shutil.chown(root, "postgres", "postgres")

    def _run(self, *args: str) -> None:
        result = subprocess.run([*self._as_user, *args], capture_output=True, text=True, timeout=120, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"{args[0]} failed: {result.stderr[-2000:]}")

    def init(self) -> None:
        self._run(str(self.bindir / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "newsmon",
                  "-E", "UTF8", "--locale=C.UTF-8")

    def start(self) -> None:
        opts = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-o", opts, "-l", str(self.root / "log"),
                  "-w", "-t", "60", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def createdb(self, name: str) -> str:
        self._run(str(self.bindir / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "newsmon", name)
        return f"postgresql://newsmon@127.0.0.1:{self.port}/{name}"


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[LocalPostgres]:
    """A running local PostgreSQL cluster for the whole session."""
    bindir = _bindir()
    if bindir is None:
        pytest.skip("PostgreSQL server binaries not found (deploy/dev/setup installs them as root)")
    # Not under pytest's tmp dir: that one is private to root, and the server runs as `postgres`.
    root = Path(tempfile.mkdtemp(prefix="newsmon-pg-"))
    server = LocalPostgres(bindir, root)
    try:
        server.init()
        server.start()
        yield server
        server.stop("immediate")
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def postgres_url(request: pytest.FixtureRequest) -> str:
    """A fresh, empty database per test: postgresql://... ."""
    env = os.environ.get("POSTGRES_TEST_URL")
    if env:
        return env
    server: LocalPostgres = request.getfixturevalue("postgres_server")
    name = "t_" + request.node.name.lower().translate(str.maketrans("[]-.:/ ", "_______"))[:50]
    return server.createdb(f"{name}_{os.getpid()}")
