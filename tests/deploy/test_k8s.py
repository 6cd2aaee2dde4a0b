"""deploy/k8s: valid objects with probes, resources, restricted security, PDBs; kustomize renders them."""

from __future__ import annotations

import subprocess
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.deploy.deployfiles import DEPLOY, WORKERS, k8s_docs, load_yaml_docs, pod_specs, tool

K8S = DEPLOY / "k8s"


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
    for name in ("newsmon-classifier", "newsmon-alerter"):
        assert deployments[name]["spec"]["replicas"] >= 2


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
    assert ports == {"http": 8080}
    service = by_kind(objects, "Service")["newsmon-api"]
    assert service["spec"]["ports"][0]["targetPort"] == "http"
    assert (
        service["spec"]["selector"]
        == by_kind(objects, "Deployment")["newsmon-api"]["spec"]["selector"]["matchLabels"]
    )


def test_worker_probes_run_the_image_healthcheck(objects: list[tuple[Path, dict[str, Any]]]) -> None:
    for name in WORKERS:
        c = by_kind(objects, "Deployment")[f"newsmon-{name}"]["spec"]["template"]["spec"]["containers"][0]
        assert c["livenessProbe"]["exec"]["command"][-1] == "/opt/newsmon/healthcheck.py"
    assert (
        "COPY deploy/container/healthcheck.py /opt/newsmon/healthcheck.py"
        in (DEPLOY / "container" / "Containerfile").read_text()
    )


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
    from newsmon.settings import load_settings

    for key, value in load_yaml_docs(yaml, K8S / "secret.example.yaml")[0]["stringData"].items():
        monkeypatch.setenv(key, value)
    settings = load_settings(K8S / "newsmon.toml")
    assert settings.subscriptions[0].webhook is not None
    assert settings.smtp.password is not None and settings.store.url.startswith("postgresql://newsmon:")


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
    out = subprocess.run(
        [kubectl, "kustomize", str(K8S)], capture_output=True, text=True, timeout=120, check=False
    )
    assert out.returncode == 0, out.stderr
    return [d for d in yaml.safe_load_all(out.stdout) if d]


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
    rendered: list[dict[str, Any]], yaml: ModuleType
) -> None:
    validator = pytest.importorskip("kubernetes_validate", reason="pip install kubernetes-validate")
    secret = load_yaml_docs(yaml, K8S / "secret.example.yaml")
    for doc in [*rendered, *secret]:
        try:
            validator.validate(doc, validator.latest_version(), strict=True)
        except validator.ValidationError as exc:
            pytest.fail(f"{doc['kind']}/{doc['metadata']['name']}: {exc}")
