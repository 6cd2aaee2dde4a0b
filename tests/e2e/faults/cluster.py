"""A small supervisor for newsmon worker processes (`newsmon poller|classifier|alerter --config FILE`).

Starts N of each kind, kills one with SIGKILL and starts it again, restarts any that exited on their own (as
systemd or Kubernetes would, and records it), and stops them all with SIGTERM at the end. Each process writes
its output to `<logs>/<kind>-<n>.<generation>.log`.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

KINDS = ("poller", "classifier", "alerter")


def newsmon_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "newsmon.cli", *args]


def run_newsmon(*args: str, timeout: float = 120, stdin: str | None = None) -> str:
    """Run a one-shot newsmon command; its stdout, or AssertionError with its stderr."""
    env = {**os.environ, "NO_COLOR": "1"}
    proc = subprocess.run(newsmon_cmd(*args), capture_output=True, text=True, timeout=timeout, env=env,
                          check=False, input=stdin)
    assert proc.returncode == 0, f"newsmon {' '.join(args)} exited {proc.returncode}:\n{proc.stderr[-3000:]}"
    return proc.stdout


@dataclass
class Worker:
    """One worker slot: its current process and how many times it was started."""

    kind: str
    index: int
    proc: subprocess.Popen[bytes] | None = None
    generation: int = 0
    held: bool = False  # killed on purpose and not started again yet: not the supervisor's to restart

    @property
    def name(self) -> str:
        return f"{self.kind}-{self.index}"


@dataclass
class Cluster:
    """Worker processes sharing one config."""

    config: Path
    logs: Path
    workers: list[Worker] = field(default_factory=list)
    kills: list[tuple[float, str]] = field(default_factory=list)  # (time, worker) of every SIGKILL we sent
    crashes: list[tuple[float, str, int]] = field(default_factory=list)  # (time, worker, exit code) unasked
    reasons: list[str] = field(default_factory=list)  # why each of those exited, from its log

    def start(self, counts: dict[str, int]) -> None:
        self.logs.mkdir(parents=True, exist_ok=True)
        for kind in KINDS:
            for i in range(counts.get(kind, 0)):
                worker = Worker(kind, i)
                self.workers.append(worker)
                self._spawn(worker)

    def _spawn(self, w: Worker) -> None:
        w.generation += 1
        log = open(self.logs / f"{w.name}.{w.generation}.log", "wb")  # the child keeps its own copy
        env = {**os.environ, "NO_COLOR": "1"}
        w.proc = subprocess.Popen(newsmon_cmd(w.kind, "--config", str(self.config)), stdout=log,
                                  stderr=subprocess.STDOUT, env=env)
        log.close()

    def of_kind(self, kind: str) -> list[Worker]:
        return [w for w in self.workers if w.kind == kind]

    def running(self, kind: str) -> list[Worker]:
        return [w for w in self.of_kind(kind) if not w.held and w.proc is not None and w.proc.poll() is None]

    def kill9(self, w: Worker) -> None:
        """SIGKILL the worker's process and wait for it to be gone; it stays down until `respawn`."""
        assert w.proc is not None
        w.held = True
        if w.proc.poll() is None:
            w.proc.send_signal(signal.SIGKILL)
            self.kills.append((time.time(), w.name))
        w.proc.wait(30)

    def respawn(self, w: Worker) -> None:
        if w.held:
            w.held = False
            self._spawn(w)

    def supervise(self) -> list[str]:
        """Restart workers that exited without being asked; their names."""
        restarted = []
        for w in self.workers:
            if not w.held and w.proc is not None and w.proc.poll() is not None:
                self.crashes.append((time.time(), w.name, w.proc.returncode))
                self.reasons.append(f"{w.name}.{w.generation}: {self._reason(w)}")
                self._spawn(w)
                restarted.append(w.name)
        return restarted

    def _reason(self, w: Worker) -> str:
        """The error a worker logged last before exiting (its `error` field), or its last line."""
        lines = (self.logs / f"{w.name}.{w.generation}.log").read_text(errors="replace").splitlines()
        for line in reversed(lines):
            if line.startswith("{") and '"error"' in line and '"level": "error"' in line:
                try:
                    return f"{json.loads(line).get('event')}: {str(json.loads(line)['error'])[:300]}"
                except ValueError:
                    break
        return lines[-1][:300] if lines else "(empty log)"

    def stop(self, timeout: float = 40.0) -> dict[str, int | None]:
        """SIGTERM every worker, wait (SIGKILL after `timeout`); exit codes by worker name."""
        for w in self.workers:
            if w.proc is not None and w.proc.poll() is None:
                w.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        codes: dict[str, int | None] = {}
        for w in self.workers:
            if w.proc is None:
                continue
            try:
                codes[w.name] = w.proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                w.proc.kill()
                w.proc.wait(10)
                codes[w.name] = None
        return codes

    def log_tail(self, chars: int = 3000) -> str:
        """The end of every log, for a failure message."""
        out = []
        for path in sorted(self.logs.glob("*.log")):
            text = path.read_text(errors="replace")
            out.append(f"--- {path.name}\n{text[-chars:]}")
        return "\n".join(out)
