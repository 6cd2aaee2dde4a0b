"""deploy/systemd units: accepted by `systemd-analyze verify`, hardened, secrets from an EnvironmentFile."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.deploy.deployfiles import DEPLOY, WORKERS, tool

UNITS = DEPLOY / "systemd"
INSTALLED_BINARY = "/opt/newsmon/venv/bin/newsmon"
HARDENING = {
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "PrivateDevices": "yes",
    "DynamicUser": "yes",
    "CapabilityBoundingSet": "",
    "RestrictNamespaces": "yes",
    "SystemCallArchitectures": "native",
    "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
    "ProtectKernelTunables": "yes",
    "ProtectKernelModules": "yes",
    "ProtectControlGroups": "yes",
}


def directives(path: Path) -> dict[str, list[str]]:
    """Key → values of a unit file (comments and section headers aside)."""
    found: dict[str, list[str]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        match = re.match(r"^(\w+)=(.*)$", line)
        if match:
            found.setdefault(match.group(1), []).append(match.group(2))
    return found


@pytest.mark.parametrize("unit", ["newsmon.service", "newsmon@.service"])
def test_unit_is_hardened_and_reads_secrets_from_a_file(unit: str) -> None:
    d = directives(UNITS / unit)
    for key, value in HARDENING.items():
        assert value in d.get(key, []), f"{unit}: {key}={value} missing"
    assert any(v.startswith("-/etc/newsmon/newsmon.env") for v in d["EnvironmentFile"])
    assert d["ExecStart"][0].startswith(INSTALLED_BINARY + " ")
    assert d["KillSignal"] == ["SIGTERM"] and d["RestartPreventExitStatus"] == ["2"]
    assert not any("PASSWORD" in v or "whsec_" in v for v in d.get("Environment", [])), "secret in the unit"


@pytest.mark.parametrize("unit", ["newsmon.service", *(f"newsmon@{w}.service" for w in (*WORKERS, "api"))])
def test_systemd_analyze_verify_accepts_unit(unit: str, tmp_path: Path) -> None:
    analyze = tool("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze not installed")
    source = UNITS / ("newsmon@.service" if "@" in unit else unit)
    # verify insists that ExecStart's binary exists: point it at this venv's newsmon.
    text = source.read_text(encoding="utf-8").replace(
        INSTALLED_BINARY, str(Path(sys.executable).parent / "newsmon")
    )
    (tmp_path / unit).write_text(text, encoding="utf-8")
    out = subprocess.run(
        [analyze, "verify", "--man=no", str(tmp_path / unit)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    # Unknown keys and bad values are only warnings (exit 0): any line about our unit is a failure.
    ours = [line for line in (out.stdout + out.stderr).splitlines() if unit in line or str(tmp_path) in line]
    assert out.returncode == 0 and not ours, out.stdout + out.stderr


def test_each_instance_has_its_own_metrics_port_which_prometheus_scrapes() -> None:
    # Instances of newsmon@.service on one host cannot share a port: the unit documents one per instance in
    # /etc/newsmon/SERVICE.env, and prometheus.yml's systemd example scrapes those ports.
    unit = (UNITS / "newsmon@.service").read_text(encoding="utf-8")
    ports = {
        name: int(port)
        for name, port in re.findall(r"^#\s+(\w+)\.env\s+NEWSMON_METRICS__LISTEN=[\d.]+:(\d+)", unit, re.M)
    }
    assert set(ports) == {*WORKERS, "api"} and len(set(ports.values())) == len(ports), ports
    prom = (DEPLOY / "prometheus" / "prometheus.yml").read_text(encoding="utf-8")
    scraped = {
        service: {int(p) for p in re.findall(r":(\d+)\"", targets)}
        for targets, service in re.findall(r"targets: \[([^\]]*)\]\n\s*#\s+labels: \{service: (\w+)\}", prom)
    }
    assert scraped == {name: {port} for name, port in ports.items()}
