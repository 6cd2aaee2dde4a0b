"""Prometheus config, alerting rules and the Grafana dashboard use only metrics and labels newsmon exports."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest
from prometheus_client.metrics import MetricWrapperBase

import newsmon.metrics
from tests.deploy.deployfiles import DEPLOY, load_yaml_docs, tool

PROM = DEPLOY / "prometheus"
DASHBOARD = DEPLOY / "grafana" / "newsmon-dashboard.json"
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}
# Labels Prometheus adds to every series, and the histogram bucket label.
TARGET_LABELS = {"job", "instance", "le", "service"}


def exported() -> dict[str, tuple[str, ...]]:
    """Every series name newsmon.metrics exports, with the metric's label names."""
    names: dict[str, tuple[str, ...]] = {}
    for metric in vars(newsmon.metrics).values():
        if isinstance(metric, MetricWrapperBase):
            # _name/_type/_labelnames: prometheus_client has no public accessor for an unlabelled parent.
            for suffix in SUFFIXES[str(metric._type)]:
                names[metric._name + suffix] = tuple(metric._labelnames)
    return names


def check_promql(expr: str, where: str) -> None:
    """Fail when expr names a series or groups/selects by a label that newsmon does not export."""
    known = exported()
    used = set(re.findall(r"\bnewsmon_[a-z0-9_]+", expr))
    unknown = used - set(known)
    assert not unknown, f"{where}: unknown metrics {sorted(unknown)} in {expr!r}"
    for name, selector in re.findall(r"\b(newsmon_[a-z0-9_]+)\{([^}]*)\}", expr):
        for label in re.findall(r"(\w+)\s*(?:=~|!~|!=|=)", selector):
            assert label in known[name] or label in TARGET_LABELS, f"{where}: {name} has no label {label}"
    for group in re.findall(r"\b(?:by|without)\s*\(([^)]*)\)", expr):
        for label in filter(None, (g.strip() for g in group.split(","))):
            for name in used:
                assert label in known[name] or label in TARGET_LABELS, f"{where}: {name} has no label {label}"


def test_the_promql_check_catches_wrong_names_and_labels() -> None:
    check_promql('sum by (outcome) (rate(newsmon_polls_total{outcome="ok"}[5m]))', "good")
    for bad in (
        "rate(newsmon_polls[5m])",
        'newsmon_bus_lag{topic="x"}',
        "sum by (feed) (newsmon_polls_total)",
    ):
        with pytest.raises(AssertionError):
            check_promql(bad, "bad")


def rules(yaml: ModuleType) -> Iterator[dict[str, Any]]:
    for path in sorted((PROM / "rules").glob("*.yml")):
        for doc in load_yaml_docs(yaml, path):
            for group in doc["groups"]:
                yield from group["rules"]


def test_alerting_rules_use_exported_metrics(yaml: ModuleType) -> None:
    names = set()
    for rule in rules(yaml):
        check_promql(rule["expr"], rule["alert"])
        assert rule["labels"]["severity"] in ("critical", "warning", "info"), rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]
        names.add(rule["alert"])
    for required in (
        "NewsmonFeedErrorStreak",
        "NewsmonDeadLetters",
        "NewsmonBusLagGrowing",
        "NewsmonDeliveryFailures",
    ):
        assert required in names


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    binary = tool("promtool")
    if binary is None:
        pytest.skip("promtool not installed (Debian package: prometheus)")
    return subprocess.run([binary, *args], capture_output=True, text=True, timeout=120, check=False, cwd=PROM)


def test_promtool_accepts_the_config() -> None:
    out = promtool("check", "config", "--syntax-only", "prometheus.yml")
    assert out.returncode == 0, out.stdout + out.stderr


def test_promtool_accepts_the_rules() -> None:
    out = promtool(
        "check", "rules", *sorted(str(p.relative_to(PROM)) for p in (PROM / "rules").glob("*.yml"))
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_rules_fire_on_their_unit_tests() -> None:
    out = promtool("test", "rules", "rules.test.yml")
    assert out.returncode == 0, out.stdout + out.stderr


def test_prometheus_loads_the_rules_compose_mounts(yaml: ModuleType) -> None:
    config = load_yaml_docs(yaml, PROM / "prometheus.yml")[0]
    assert config["rule_files"] == ["/etc/prometheus/rules/*.yml"]
    compose = load_yaml_docs(yaml, DEPLOY / "compose" / "compose.yaml")[0]
    assert "../prometheus/rules:/etc/prometheus/rules:ro" in compose["services"]["prometheus"]["volumes"]


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    data = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def test_dashboard_queries_use_exported_metrics(dashboard: dict[str, Any]) -> None:
    exprs = [(p["title"], t["expr"]) for p in dashboard["panels"] for t in p.get("targets", [])]
    assert len(exprs) >= 15
    for title, expr in exprs:
        check_promql(expr, f"panel {title!r}")
    used = {n for _, e in exprs for n in re.findall(r"\bnewsmon_[a-z0-9_]+", e)}
    bases = {re.sub(r"_(total|bucket|sum|count)$", "", n) for n in used}
    every = {m._name for m in vars(newsmon.metrics).values() if isinstance(m, MetricWrapperBase)}
    # Every metric in metrics.py has a panel, so a new metric is not forgotten on the dashboard.
    assert every <= bases, f"metrics without a panel: {sorted(every - bases)}"


def test_dashboard_is_well_formed(dashboard: dict[str, Any]) -> None:
    assert dashboard["uid"] and dashboard["title"] and dashboard["schemaVersion"] >= 36
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["query"] == "prometheus"
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    cells: set[tuple[int, int]] = set()
    for panel in dashboard["panels"]:
        pos = panel["gridPos"]
        assert 0 <= pos["x"] and pos["x"] + pos["w"] <= 24, panel["title"]
        mine = {
            (x, y) for x in range(pos["x"], pos["x"] + pos["w"]) for y in range(pos["y"], pos["y"] + pos["h"])
        }
        assert not mine & cells, f"panel {panel['title']!r} overlaps another"
        cells |= mine
        for target in panel.get("targets", []):
            assert target["datasource"]["uid"] == "${datasource}" and target["refId"], panel["title"]
