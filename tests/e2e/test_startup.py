"""Start-up before the dependencies: a worker waits for PostgreSQL and Kafka, then works; refusals fail fast.

Real `newsmon classifier` processes, a PostgreSQL cluster of the test's own that starts after the worker, and a
Kafka broker (deploy/kafka/kafka-local) started on the port the worker is already trying.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from newsmon.bus import open_bus
from newsmon.events import ARTICLES_TOPIC, MATCHES_TOPIC, Article, Match
from newsmon.settings import BusSettings
from tests.support.kafka import KAFKA_LOCAL, broker_env, free_ports
from tests.support.postgres import LocalPostgres, _bindir

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.timeout(240)

# Written for these tests, in our own words.
ARTICLE = Article(
    id="a_startup_test_aleppo", revision=1, feed_id="cfg-feed", feed_url="http://127.0.0.1:9/feed.xml",
    source="Wire", url="https://example.org/startup-aleppo", lang="en",
    title="Syrian rebels seize Aleppo as government troops withdraw",
    text="Opposition fighters took control of most of Aleppo after a sweeping offensive, while the Syrian "
         "army pulled back from positions in Idlib and Hama provinces and Russian jets struck rebel columns.",
)


def write_config(tmp_path: Path, *lines: str) -> Path:
    path = tmp_path / "newsmon.toml"
    path.write_text("\n".join([f'data_dir = "{tmp_path / "data"}"', *lines]) + "\n", encoding="utf-8")
    return path


def newsmon(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "newsmon.cli", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=REPO, check=False)


class Worker:
    """A `newsmon <service>` process with its log in a file and its metrics port."""

    def __init__(self, service: str, config: Path, metrics_port: int) -> None:
        self.log_path = config.parent / f"{service}.log"
        self.port = metrics_port
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "newsmon.cli", service, "--config", str(config)],
                                         stdout=log, stderr=subprocess.STDOUT, cwd=REPO)

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def get(self, path: str) -> tuple[int, Any]:
        """(status, body) of GET on the metrics port; (0, None) while nothing listens."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=5) as resp:
                status, raw = resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            status, raw = exc.code, exc.read()
        except OSError:
            return 0, None
        return status, json.loads(raw) if raw.startswith(b"{") else raw.decode()

    def wait_until(self, what: str, check: Any, within: float = 60) -> None:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"the worker exited ({self.proc.returncode}) while {what}:\n{self.log()}"
            if check():
                return
            time.sleep(0.2)
        pytest.fail(f"not within {within}s: {what}\n{self.log()[-4000:]}")

    def waiting_lines(self, dependency: str) -> list[dict[str, Any]]:
        lines = [json.loads(line) for line in self.log().splitlines() if line.startswith("{")]
        return [e for e in lines if e.get("event") == "startup.waiting" and e.get("dependency") == dependency]

    def retries(self, dependency: str) -> float:
        _, text = self.get("/metrics")
        for line in str(text).splitlines():
            if line.startswith(f'newsmon_startup_retries_total{{dependency="{dependency}"}}'):
                return float(line.split()[-1])
        return 0.0

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


async def publish_and_read_match(bus_settings: BusSettings, within: float = 90, publish: bool = True) -> Match:
    """Publish ARTICLE (unless told not to) and return the first match the worker publishes for it."""
    bus = open_bus(bus_settings)
    await bus.start()
    try:
        if publish:
            await bus.publish(ARTICLES_TOPIC, ARTICLE.to_bytes(), key=ARTICLE.id.encode())
        reader = bus.consumer([MATCHES_TOPIC], "startup-test-reader")
        await reader.start()
        try:
            deadline = time.monotonic() + within
            while time.monotonic() < deadline:
                for message in await reader.getmany(timeout=0.5):
                    match = Match.model_validate_json(message.value)
                    if match.article.id == ARTICLE.id:
                        return match
        finally:
            await reader.stop()
    finally:
        await bus.stop()
    pytest.fail(f"no match for the article within {within}s")


def waits_for(worker: Worker, dependency: str, reason: str) -> None:
    """The worker is alive, not ready, says why, logs each attempt and counts it."""
    worker.wait_until(f"two failed attempts to reach the {dependency} are logged",
                      lambda: len(worker.waiting_lines(dependency)) >= 2)
    line = worker.waiting_lines(dependency)[-1]
    assert reason in line["error"] and line["retry_in"] > 0, line
    status, body = worker.get("/readyz")
    assert status == 503 and f"waiting for the {dependency}" in body["reason"], body
    assert worker.get("/healthz") == (200, {"status": "ok"})
    assert worker.retries(dependency) >= 2


@pytest.fixture
def stopped_postgres() -> Iterator[LocalPostgres]:
    """A PostgreSQL cluster of this test's own, initialised but not started."""
    bindir = _bindir()
    if bindir is None:
        pytest.skip("PostgreSQL server binaries not found")
    root = Path(tempfile.mkdtemp(prefix="newsmon-pg-startup-"))
    server = LocalPostgres(bindir, root)
    try:
        server.init()
        yield server
        try:
            server.stop("immediate")
        except RuntimeError:
            pass  # never started (the test failed before)
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.postgres
def test_a_classifier_started_before_postgresql_waits_for_it_and_its_schema_then_works(
    tmp_path: Path, stopped_postgres: LocalPostgres
) -> None:
    metrics_port = free_ports(1)[0]
    config = write_config(tmp_path, 'startup_wait = "3m"',
                          "[store]", f'url = "postgresql://newsmon@127.0.0.1:{stopped_postgres.port}/postgres"',
                          "[metrics]", f'listen = "127.0.0.1:{metrics_port}"')
    worker = Worker("classifier", config, metrics_port)
    try:
        waits_for(worker, "store", "unreachable")
        stopped_postgres.start()
        # Reachable now, but nobody has run the migrations yet: that is worth waiting for too (a deploy job).
        worker.wait_until("it waits for the schema", lambda: "newsmon db upgrade" in str(worker.get("/readyz")[1]))
        upgrade = newsmon("db", "upgrade", "--config", str(config))
        assert upgrade.returncode == 0, upgrade.stderr
        worker.wait_until("ready", lambda: worker.get("/readyz") == (200, {"status": "ok"}))
        from newsmon.settings import load_settings

        match = asyncio.run(publish_and_read_match(load_settings(config).bus))
        assert match.match.topic == "syria-military-shifts"
    finally:
        code = worker.stop()
    assert code == 0, worker.log()[-3000:]


@pytest.mark.kafka
def test_a_classifier_started_before_kafka_waits_for_it_then_works(tmp_path: Path) -> None:
    if shutil.which("java") is None:
        pytest.skip("no java on PATH: cannot start deploy/kafka/kafka-local")
    port, controller_port, metrics_port = free_ports(3)
    env = broker_env(port, controller_port, tmp_path / "kafka")
    config = write_config(tmp_path, 'startup_wait = "3m"', "[bus]", f'url = "kafka://127.0.0.1:{port}"',
                          'namespace = "startup"', "[metrics]", f'listen = "127.0.0.1:{metrics_port}"')
    worker = Worker("classifier", config, metrics_port)
    started = False
    try:
        waits_for(worker, "bus", "unreachable")
        started = True
        broker = subprocess.run([str(KAFKA_LOCAL), "start"], env=env, capture_output=True, text=True, timeout=180,
                                check=False)
        assert broker.returncode == 0, broker.stderr[-3000:]
        worker.wait_until("ready", lambda: worker.get("/readyz") == (200, {"status": "ok"}), within=90)
        from newsmon.settings import load_settings

        match = asyncio.run(publish_and_read_match(load_settings(config).bus))
        assert match.match.topic == "syria-military-shifts"
    finally:
        code = worker.stop()
        if started:
            subprocess.run([str(KAFKA_LOCAL), "stop"], env=env, capture_output=True, timeout=120, check=False)
    assert code == 0, worker.log()[-3000:]


def _closed_port_store(tmp_path: Path, wait: str) -> Path:
    return write_config(tmp_path, f"startup_wait = {wait}", "[store]",
                        f'url = "postgresql://newsmon:pw-not-shown@127.0.0.1:{free_ports(1)[0]}/newsmon"')


def test_startup_wait_0_exits_at_once_with_one_line_naming_the_reason(tmp_path: Path) -> None:
    proc = newsmon("classifier", "--config", str(_closed_port_store(tmp_path, "0")), timeout=60)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("newsmon: error: store postgresql://newsmon:***@127.0.0.1:") and "unreachable" in last
    assert "startup_wait = 0" in last
    assert "pw-not-shown" not in proc.stderr + proc.stdout


def test_after_the_wait_it_gives_up_with_one_line(tmp_path: Path) -> None:
    proc = newsmon("classifier", "--config", str(_closed_port_store(tmp_path, '"2s"')), timeout=60)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("newsmon: error: gave up waiting for the store after 2s"), last
    assert "unreachable" in last
    waited = [json.loads(line) for line in proc.stderr.splitlines() if '"startup.waiting"' in line]
    assert len(waited) >= 2 and [w["attempt"] for w in waited] == list(range(1, len(waited) + 1))


@pytest.mark.postgres
def test_refused_credentials_are_not_waited_for(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    if os.environ.get("POSTGRES_TEST_URL"):
        pytest.skip("needs the local server (a role that does not exist on it)")
    server: LocalPostgres = request.getfixturevalue("postgres_server")
    config = write_config(tmp_path, 'startup_wait = "5m"', "[store]",
                          f'url = "postgresql://nobody:sekrit@127.0.0.1:{server.port}/postgres"')
    proc = newsmon("alerter", "--config", str(config), timeout=60)  # waiting 5 minutes would time out here
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert "refused" in last and 'role "nobody" does not exist' in last, last
    assert "sekrit" not in proc.stderr + proc.stdout
    assert '"startup.waiting"' not in proc.stderr


def test_a_malformed_store_url_is_a_config_error(tmp_path: Path) -> None:
    config = write_config(tmp_path, "[store]", 'url = "postgresql://newsmon@127.0.0.1:notaport/newsmon"')
    proc = newsmon("classifier", "--config", str(config), timeout=60)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("newsmon: store.url = ")
