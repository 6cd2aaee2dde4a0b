"""deploy/k8s: valid objects with probes, resources, restricted security, PDBs; kustomize renders them."""

from __future__ import annotations

import os
import subprocess
import tomllib
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from newsmon.settings import Settings, load_settings
from tests.deploy.deployfiles import DEPLOY, WORKERS, k8s_docs, listen_port, load_yaml_docs, pod_specs, tool

K8S = DEPLOY / "k8s"
SECRET_FILES = K8S / "secret-files"


def k8s_settings(monkeypatch: pytest.MonkeyPatch, yaml: ModuleType) -> Settings:
    """The pods' settings: the ConfigMap's newsmon.toml with the example Secret as environment."""
    for key, value in load_yaml_docs(yaml, K8S / "secret.example.yaml")[0]["stringData"].items():
        monkeypatch.setenv(key, value)
    return load_settings(K8S / "newsmon.toml")


@pytest.fixture(scope="module")
def objects(yaml: ModuleType) -> list[tuple[Path, dict[str, Any]]]:
    return k8s_docs(yaml)


def by_kind(objects: list[tuple[Path, dict[str, Any]]], kind: str) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for _, doc in objects if doc["kind"] == kind}


def test_every_object_has_the_required_fields(objects: list[tuple[Path, dict[str, Any]]]) -> None:
    assert objects
    for path, doc in objects:
        for field in ("apiVersion", "kind", "metadata"):
            assert field in doc, f"{path}: object without {field}"
        assert doc["metadata"].get("name"), f"{path}: {doc['kind']} without metadata.name"


def test_one_deployment_and_pdb_per_service(objects: list[tuple[Path, dict[str, Any]]]) -> None:
    deployments, pdbs = by_kind(objects, "Deployment"), by_kind(objects, "PodDisruptionBudget")
    expected = {f"newsmon-{name}" for name in (*WORKERS, "api")}
    assert set(deployments) == expected and set(pdbs) == expected
    for name, pdb in pdbs.items():
        selector = deployments[name]["spec"]["selector"]["matchLabels"]
        assert pdb["spec"]["selector"]["matchLabels"] == selector, name
        assert deployments[name]["spec"]["template"]["metadata"]["labels"].items() >= selector.items(), name
        if deployments[name]["spec"]["replicas"] == 1:
            assert "maxUnavailable" in pdb["spec"], f"{name}: minAvailable on one replica blocks node drains"
        if "minAvailable" in pdb["spec"]:
            assert pdb["spec"]["minAvailable"] < deployments[name]["spec"]["replicas"], f"{name}: drains blocked"
    for name in ("newsmon-classifier", "newsmon-alerter"):
        assert deployments[name]["spec"]["replicas"] >= 2


def test_several_pollers_only_on_a_shared_store(
    objects: list[tuple[Path, dict[str, Any]]], yaml: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Pollers share feeds through leases in the store: several replicas (and overlapping rollouts) need a store
    # that every pod reaches, i.e. not SQLite on a pod's own volume.
    poller = by_kind(objects, "Deployment")["newsmon-poller"]["spec"]
    store_url = k8s_settings(monkeypatch, yaml).store.url
    if poller["replicas"] > 1 or poller["strategy"]["type"] != "Recreate":
        assert not store_url.startswith("sqlite"), "several pollers need PostgreSQL, not SQLite"
    assert poller["replicas"] >= 2 and poller["strategy"]["type"] == "RollingUpdate"
    pdb = by_kind(objects, "PodDisruptionBudget")["newsmon-poller"]["spec"]
    assert pdb.get("maxUnavailable", 0) < poller["replicas"], "a drain must leave a poller running"


def test_containers_have_probes_resources_and_restricted_security(yaml: ModuleType) -> None:
    specs = pod_specs(yaml)
    assert len(specs) == 5
    for where, spec in specs:
        assert spec["securityContext"]["runAsNonRoot"] is True, where
        assert spec["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", where
        assert spec["automountServiceAccountToken"] is False, where
        for c in spec["containers"]:
            res = c["resources"]
            assert {"cpu", "memory"} <= res["requests"].keys() and "memory" in res["limits"], where
            sc = c["securityContext"]
            assert sc["allowPrivilegeEscalation"] is False and sc["readOnlyRootFilesystem"] is True, where
            assert sc["capabilities"]["drop"] == ["ALL"], where
            if where.startswith("Deployment/"):
                assert "livenessProbe" in c, f"{where}: no liveness probe"


def test_api_probes_health_and_readiness_over_http(objects: list[tuple[Path, dict[str, Any]]]) -> None:
    container = by_kind(objects, "Deployment")["newsmon-api"]["spec"]["template"]["spec"]["containers"][0]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports["http"] == 8080
    service = by_kind(objects, "Service")["newsmon-api"]
    assert service["spec"]["ports"][0]["targetPort"] == "http"
    assert (
        service["spec"]["selector"]
        == by_kind(objects, "Deployment")["newsmon-api"]["spec"]["selector"]["matchLabels"]
    )


def test_worker_probes_ask_the_metrics_port(objects: list[tuple[Path, dict[str, Any]]]) -> None:
    listen = tomllib.loads((DEPLOY / "k8s" / "newsmon.toml").read_text(encoding="utf-8"))["metrics"]["listen"]
    for name in WORKERS:
        c = by_kind(objects, "Deployment")[f"newsmon-{name}"]["spec"]["template"]["spec"]["containers"][0]
        ports = {p["name"]: p["containerPort"] for p in c["ports"]}
        assert listen.endswith(f":{ports['metrics']}"), name
        assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}, name
        assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}, name
    # the image's HEALTHCHECK (Docker, Compose) still runs the script, which asks the same port
    assert (
        "COPY deploy/container/healthcheck.py /opt/newsmon/healthcheck.py"
        in (DEPLOY / "container" / "Containerfile").read_text()
    )


def test_every_pod_exposes_the_metrics_port_it_serves(
    objects: list[tuple[Path, dict[str, Any]]], yaml: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = k8s_settings(monkeypatch, yaml)
    assert settings.metrics.listen, "[metrics] listen is off: the workers' metrics are not scraped"
    port = listen_port(settings.metrics.listen)
    assert port != listen_port(settings.api.listen)
    # The metrics port serves /metrics without a token, so the API's own /metrics can ask for one.
    assert settings.api.metrics_public is False
    for name in (*WORKERS, "api"):
        template = by_kind(objects, "Deployment")[f"newsmon-{name}"]["spec"]["template"]
        ports = {p["name"]: p["containerPort"] for p in template["spec"]["containers"][0]["ports"]}
        assert ports.get("metrics") == port, f"{name}: no containerPort 'metrics' = {port}"
        annotations = template["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true", name
        assert annotations["prometheus.io/port"] == str(port) and annotations["prometheus.io/path"] == "/metrics"
    service = by_kind(objects, "Service")["newsmon-api"]
    assert [p["targetPort"] for p in service["spec"]["ports"]] == ["http"], "the Service publishes only the API"


def test_secret_references_are_satisfied_by_the_example(
    objects: list[tuple[Path, dict[str, Any]]], yaml: ModuleType
) -> None:
    secret = load_yaml_docs(yaml, K8S / "secret.example.yaml")[0]
    keys = set(secret["stringData"])
    for where, spec in pod_specs(yaml):
        for c in spec["containers"]:
            for env in c.get("env", []):
                ref = env.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    assert ref["name"] == secret["metadata"]["name"] and ref["key"] in keys, where
            for source in c.get("envFrom", []):
                assert source["secretRef"]["name"] == secret["metadata"]["name"], where
    kustomization = load_yaml_docs(yaml, K8S / "kustomization.yaml")[0]
    assert "secret.example.yaml" not in kustomization["resources"], "placeholders must not be applied"


def test_example_secret_values_load_as_settings(yaml: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = k8s_settings(monkeypatch, yaml)
    assert settings.smtp.password is not None and settings.store.url.startswith("postgresql://newsmon:")
    assert not settings.subscriptions, "subscriptions are made through the API, not shipped in the Secret"


def test_secret_files_example_loads_as_settings(
    yaml: ModuleType, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # What the secret-files component mounts: each key of the Secret a file in NEWSMON_SECRETS_DIR.
    secret = load_yaml_docs(yaml, SECRET_FILES / "secret.example.yaml")[0]
    for key, value in secret["stringData"].items():
        (tmp_path / key).write_text(value + "\n", encoding="utf-8")
    monkeypatch.setenv("NEWSMON_SECRETS_DIR", str(tmp_path))
    settings = load_settings(K8S / "newsmon.toml")
    assert settings.store.url == secret["stringData"]["store__url"]
    assert settings.smtp.password is not None
    assert settings.smtp.password.get_secret_value() == secret["stringData"]["smtp__password"]
    assert settings.bus.sasl_password is not None


def kustomize(kubectl: str, directory: Path) -> str:
    out = subprocess.run(
        [kubectl, "kustomize", str(directory)], capture_output=True, text=True, timeout=120, check=False
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_kustomization_lists_every_manifest(yaml: ModuleType) -> None:
    kustomization = load_yaml_docs(yaml, K8S / "kustomization.yaml")[0]
    manifests = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml", "secret.example.yaml"}
    assert set(kustomization["resources"]) == manifests
    assert kustomization["configMapGenerator"][0]["files"] == ["newsmon.toml"]


@pytest.fixture(scope="module")
def rendered(yaml: ModuleType) -> list[dict[str, Any]]:
    kubectl = tool("kubectl")
    if kubectl is None:
        pytest.skip("kubectl not installed: kustomize rendering not checked")
    return [d for d in yaml.safe_load_all(kustomize(kubectl, K8S)) if d]


@pytest.fixture(scope="module")
def rendered_with_secret_files(yaml: ModuleType, tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    kubectl = tool("kubectl")
    if kubectl is None:
        pytest.skip("kubectl not installed: kustomize rendering not checked")
    # An overlay the way the component's header says to use it (kustomize wants relative paths).
    overlay = tmp_path_factory.mktemp("overlay")
    (overlay / "kustomization.yaml").write_text(
        f"resources: [{os.path.relpath(K8S, overlay)}]\ncomponents: [{os.path.relpath(SECRET_FILES, overlay)}]\n",
        encoding="utf-8",
    )
    return [d for d in yaml.safe_load_all(kustomize(kubectl, overlay)) if d]


def test_secret_files_component_mounts_the_secret_instead_of_env(
    rendered_with_secret_files: list[dict[str, Any]], yaml: ModuleType
) -> None:
    secret = load_yaml_docs(yaml, SECRET_FILES / "secret.example.yaml")[0]
    workloads = [d for d in rendered_with_secret_files if d["kind"] in ("Deployment", "Job")]
    assert len(workloads) == 5
    for doc in workloads:
        where = f"{doc['kind']}/{doc['metadata']['name']}"
        spec = doc["spec"]["template"]["spec"]
        volume = next(v for v in spec["volumes"] if "secret" in v)
        assert volume["secret"]["secretName"] == secret["metadata"]["name"], where
        assert spec["securityContext"]["fsGroup"] == 10001, f"{where}: the files would not be readable"
        container = spec["containers"][0]
        assert "envFrom" not in container, where
        env = {e["name"]: e for e in container["env"]}
        assert not any("valueFrom" in e for e in env.values()), f"{where}: a credential still in the environment"
        mount = next(m for m in container["volumeMounts"] if m["name"] == volume["name"])
        assert mount["readOnly"] is True and env["NEWSMON_SECRETS_DIR"]["value"] == mount["mountPath"], where


def test_kustomize_renders_into_the_namespace_with_the_config(rendered: list[dict[str, Any]]) -> None:
    configmaps = [d for d in rendered if d["kind"] == "ConfigMap"]
    assert len(configmaps) == 1 and configmaps[0]["metadata"]["name"].startswith("newsmon-config-")
    assert configmaps[0]["data"]["newsmon.toml"] == (K8S / "newsmon.toml").read_text()
    for doc in rendered:
        if doc["kind"] != "Namespace":
            assert doc["metadata"]["namespace"] == "newsmon", doc["metadata"]["name"]
        if doc["kind"] in ("Deployment", "Job"):
            volume = next(v for v in doc["spec"]["template"]["spec"]["volumes"] if v["name"] == "config")
            assert volume["configMap"]["name"] == configmaps[0]["metadata"]["name"]


def test_rendered_objects_match_the_kubernetes_schemas(
    rendered: list[dict[str, Any]], rendered_with_secret_files: list[dict[str, Any]], yaml: ModuleType
) -> None:
    validator = pytest.importorskip("kubernetes_validate", reason="pip install kubernetes-validate")
    secrets = [
        *load_yaml_docs(yaml, K8S / "secret.example.yaml"),
        *load_yaml_docs(yaml, SECRET_FILES / "secret.example.yaml"),
    ]
    for doc in [*rendered, *rendered_with_secret_files, *secrets]:
        try:
            validator.validate(doc, validator.latest_version(), strict=True)
        except validator.ValidationError as exc:
            pytest.fail(f"{doc['kind']}/{doc['metadata']['name']}: {exc}")
