"""Kafka with authentication: newsmon talks to a broker that requires SASL (PLAIN), and says clearly when the
credentials are wrong. The broker is a second kafka-local instance with a SASL listener instead of PLAINTEXT."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from newsmon.bus import open_bus
from newsmon.errors import BusError
from newsmon.settings import BusSettings
from tests.support.kafka import KAFKA_LOCAL, broker_env, free_ports

pytestmark = pytest.mark.kafka
REPO = Path(__file__).resolve().parents[2]

_SASL = """
listeners=SASL_PLAINTEXT://127.0.0.1:@BROKER_PORT@,CONTROLLER://127.0.0.1:@CONTROLLER_PORT@
advertised.listeners=SASL_PLAINTEXT://127.0.0.1:@BROKER_PORT@
inter.broker.listener.name=SASL_PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT
sasl.enabled.mechanisms=PLAIN
sasl.mechanism.inter.broker.protocol=PLAIN
listener.name.sasl_plaintext.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule \
required username="broker" password="broker-pw" user_broker="broker-pw" user_newsmon="s3cret-pw";
"""


@pytest.fixture(scope="module")
def sasl_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if shutil.which("java") is None:
        pytest.skip("no java on PATH")
    home = tmp_path_factory.mktemp("kafka-sasl")
    extra = home / "sasl.properties"
    extra.write_text(_SASL, encoding="utf-8")
    port, controller_port = free_ports(2)
    env = broker_env(port, controller_port, home / "data") | {"KAFKA_EXTRA_PROPERTIES": str(extra)}
    proc = subprocess.run([str(KAFKA_LOCAL), "start"], env=env, capture_output=True, text=True, timeout=600,
                          check=False)
    if proc.returncode != 0:
        pytest.fail(f"kafka-local start (SASL) failed:\n{proc.stderr[-3000:]}")
    try:
        yield proc.stdout.strip().splitlines()[-1]
    finally:
        subprocess.run([str(KAFKA_LOCAL), "stop"], env=env, capture_output=True, timeout=120, check=False)


def _settings(bootstrap: str, password: str) -> BusSettings:
    return BusSettings(url=f"kafka://{bootstrap}", namespace="sasltest", security_protocol="SASL_PLAINTEXT",
                       sasl_username="newsmon", sasl_password=password)


async def test_publish_and_consume_with_sasl_credentials(sasl_bootstrap: str) -> None:
    bus = open_bus(_settings(sasl_bootstrap, "s3cret-pw"))
    await bus.start()
    try:
        await bus.publish("auth.t", "مرحبا من كافكا".encode(), key=b"k")
        consumer = bus.consumer(["auth.t"], "auth-g")
        await consumer.start()
        got = []
        for _ in range(40):
            got += await consumer.getmany(timeout=0.5)
            if got:
                break
        await consumer.commit(got)
        await consumer.stop()
        assert [m.value.decode() for m in got] == ["مرحبا من كافكا"]
        assert await bus.ping()
    finally:
        await bus.stop()


async def test_wrong_password_is_a_clear_bus_error_that_is_not_retried(sasl_bootstrap: str) -> None:
    bus = open_bus(_settings(sasl_bootstrap, "wrong-pw"))
    with pytest.raises(BusError, match=r"(?i)refused.*SaslAuthenticationFailed.*sasl_") as caught:
        await bus.start()
    assert caught.value.retriable is False  # a service does not wait for credentials to become right
    assert "wrong-pw" not in str(caught.value)


async def test_a_plaintext_client_at_a_sasl_listener_is_refused_not_retried(sasl_bootstrap: str) -> None:
    bus = open_bus(BusSettings(url=f"kafka://{sasl_bootstrap}"))  # security_protocol left at PLAINTEXT
    with pytest.raises(BusError, match=r"refused.*closed the connection.*security_protocol PLAINTEXT") as caught:
        await bus.start()
    assert caught.value.retriable is False


async def test_a_broker_that_does_not_answer_is_a_retriable_bus_error() -> None:
    bus = open_bus(BusSettings(url=f"kafka://127.0.0.1:{free_ports(1)[0]}"))
    with pytest.raises(BusError, match="unreachable") as caught:
        await bus.start()
    assert caught.value.retriable is True


def test_a_service_with_wrong_credentials_exits_with_one_line(sasl_bootstrap: str, tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    # A 5-minute start-up wait would outlast the subprocess timeout: a refusal must not be waited for.
    cfg.write_text(f'data_dir = "{tmp_path}"\nstartup_wait = "5m"\n[bus]\nurl = "kafka://{sasl_bootstrap}"\n'
                   'security_protocol = "SASL_PLAINTEXT"\nsasl_username = "newsmon"\nsasl_password = "nope"\n',
                   encoding="utf-8")
    proc = subprocess.run([sys.executable, "-m", "newsmon.cli", "classifier", "--config", str(cfg), "--until-idle"],
                          capture_output=True, text=True, timeout=120, cwd=REPO)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    assert "SaslAuthenticationFailed" in proc.stderr.strip().splitlines()[-1]  # the reason, on the last line
    assert '"startup.waiting"' not in proc.stderr
    assert "sasl_" in proc.stderr + proc.stdout  # and which settings to check
    assert "nope" not in proc.stderr + proc.stdout  # the password never reaches the logs


def test_sasl_without_credentials_is_a_config_error() -> None:
    with pytest.raises(ValueError, match="needs sasl_username and sasl_password"):
        BusSettings(url="kafka://127.0.0.1:9092", security_protocol="SASL_SSL")


def test_missing_tls_files_are_a_config_error_naming_the_setting(tmp_path: Path) -> None:
    from newsmon.errors import ConfigError

    settings = BusSettings(url="kafka://127.0.0.1:9092", security_protocol="SSL",
                           ssl_cafile=tmp_path / "absent-ca.pem")
    with pytest.raises(ConfigError, match=r"bus\.ssl_"):
        open_bus(settings)
