"""deploy/compose/compose.yaml: valid Compose, consistent with the image, the configs and the monitoring."""

from __future__ import annotations

import re
import subprocess
from types import ModuleType
from typing import Any

import pytest

from newsmon.events import TOPICS
from newsmon.settings import Settings, load_settings
from tests.deploy.deployfiles import DEPLOY, WORKERS, listen_port, load_yaml_docs, tool

COMPOSE_DIR = DEPLOY / "compose"
COMPOSE = COMPOSE_DIR / "compose.yaml"


def compose_settings(monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The containers' settings: newsmon.toml with the example secrets/newsmon.env as environment."""
    for line in (COMPOSE_DIR / "secrets.example" / "newsmon.env").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, value = line.partition("=")
            monkeypatch.setenv(key, value)
    return load_settings(COMPOSE_DIR / "newsmon.toml")


@pytest.fixture(scope="module")
def compose(yaml: ModuleType) -> dict[str, Any]:
    docs = load_yaml_docs(yaml, COMPOSE)
    assert len(docs) == 1
    return docs[0]


def newsmon_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        n: s for n, s in compose["services"].items() if str(s.get("image", "")).startswith("${NEWSMON_IMAGE")
    }


def test_matches_the_compose_spec_schema() -> None:
    checker = tool("check-jsonschema")
    if checker is None:
        pytest.skip("check-jsonschema not installed (pip install check-jsonschema)")
    out = subprocess.run(
        [checker, "--builtin-schema", "vendor.compose-spec", str(COMPOSE)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_has_the_whole_stack(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name in ("kafka", "postgres", "prometheus", "grafana", "migrate", "api", *WORKERS):
        assert name in services, f"missing service {name}"
    assert services["kafka"]["image"].startswith("apache/kafka:")
    assert "broker,controller" in services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"], (
        "KRaft combined node"
    )
    for name in ("classifier", "alerter"):
        assert services[name]["deploy"]["replicas"] >= 2, f"{name} must run scaled by consumer group"


def test_several_pollers_only_on_a_shared_store(compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    # Pollers share feeds through leases in the store, which every poller container must reach.
    replicas = compose["services"]["poller"].get("deploy", {}).get("replicas", 1)
    if replicas > 1:
        assert not compose_settings(monkeypatch).store.url.startswith("sqlite"), "several pollers need PostgreSQL"
    assert replicas >= 2


def test_newsmon_services_share_image_config_and_secrets(compose: dict[str, Any]) -> None:
    for name, svc in newsmon_services(compose).items():
        assert svc["build"]["dockerfile"] == "deploy/container/Containerfile"
        assert (COMPOSE_DIR / svc["build"]["context"] / svc["build"]["dockerfile"]).is_file()
        assert "./newsmon.toml:/etc/newsmon/newsmon.toml:ro" in svc["volumes"], name
        assert svc["read_only"] is True and svc["cap_drop"] == ["ALL"], name
        assert [e["path"] for e in svc["env_file"]] == ["./secrets/newsmon.env"], name
        assert "environment" not in svc or not any(
            "PASSWORD" in k or "SECRET" in k for k in svc["environment"]
        )
        if name != "migrate":
            assert svc["depends_on"]["migrate"]["condition"] == "service_completed_successfully", name


def test_every_mounted_file_and_secret_exists(compose: dict[str, Any]) -> None:
    for name, svc in compose["services"].items():
        for volume in svc.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("."):
                assert (COMPOSE_DIR / source).exists(), f"{name}: {source} does not exist"
    for name, secret in compose["secrets"].items():
        example = COMPOSE_DIR / secret["file"].replace("./secrets/", "./secrets.example/")
        assert example.is_file(), f"secret {name}: no example at {example}"
    assert (COMPOSE_DIR / "secrets.example" / "newsmon.env").is_file()
    assert "secrets/" in (COMPOSE_DIR / ".gitignore").read_text(), "real secrets must be git-ignored"


def test_kafka_init_creates_every_topic(compose: dict[str, Any]) -> None:
    script = " ".join(compose["services"]["kafka-init"]["command"])
    created = set(re.search(r"for topic in ([^;]+);", script).group(1).split())  # type: ignore[union-attr]
    assert created == set(TOPICS)


def test_ports_agree_with_config_and_prometheus(
    compose: dict[str, Any], yaml: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = compose_settings(monkeypatch)
    api = compose["services"]["api"]
    assert api["ports"] == [f"127.0.0.1:8080:{listen_port(settings.api.listen)}"]
    # Every long-running newsmon service serves /metrics on [metrics] listen, and Prometheus scrapes each by name.
    assert settings.metrics.listen and settings.api.metrics_public is False
    port = listen_port(settings.metrics.listen)
    prom = load_yaml_docs(yaml, DEPLOY / "prometheus" / "prometheus.yml")[0]
    job = next(j for j in prom["scrape_configs"] if j["job_name"] == "newsmon")
    (sd,) = job["dns_sd_configs"]
    long_running = {n for n in newsmon_services(compose) if n != "migrate"}
    assert set(sd["names"]) == long_running == {*WORKERS, "api"} and sd["port"] == port
    for name in long_running:
        assert str(port) in compose["services"][name]["expose"], f"{name} does not expose the metrics port"
        assert not any(str(port) in p for p in compose["services"][name].get("ports", [])), "metrics published"
    assert set(compose["services"]["prometheus"]["depends_on"]) == long_running
    assert "kafka://kafka:9092" in (COMPOSE_DIR / "newsmon.toml").read_text()
    assert (
        compose["services"]["kafka"]["environment"]["KAFKA_ADVERTISED_LISTENERS"] == "PLAINTEXT://kafka:9092"
    )


def test_grafana_mounts_match_its_provisioning(compose: dict[str, Any], yaml: ModuleType) -> None:
    volumes = compose["services"]["grafana"]["volumes"]
    dashboard_mount = next(v for v in volumes if "newsmon-dashboard.json" in v).split(":")[1]
    provider = load_yaml_docs(yaml, DEPLOY / "grafana" / "provisioning" / "dashboards" / "newsmon.yaml")[0]
    assert dashboard_mount.startswith(provider["providers"][0]["options"]["path"] + "/")
    source = load_yaml_docs(yaml, DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yaml")[0]
    assert source["datasources"][0]["url"] == "http://prometheus:9090"
