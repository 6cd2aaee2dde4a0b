"""What the deploy checks share: where the files are, how to read them, which newsmon commands they start."""

from __future__ import annotations

import argparse
import re
import shlex
import shutil
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
VENV_BIN = Path(sys.executable).parent

# Every `newsmon` subcommand the deploy files may start.
KNOWN_COMMANDS = {"run", "poller", "classifier", "alerter", "api", "db"}
WORKERS = ("poller", "classifier", "alerter")


def listen_port(listen: str) -> int:
    """The port of a HOST:PORT setting."""
    return int(listen.rpartition(":")[2])


def tool(name: str) -> str | None:
    """Path of a command-line tool from the venv or PATH, or None."""
    local = VENV_BIN / name
    return str(local) if local.is_file() else shutil.which(name)


def load_yaml_docs(yaml: ModuleType, path: Path) -> list[dict[str, Any]]:
    """Every non-empty document of a YAML file, each a mapping."""
    docs = [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d is not None]
    for doc in docs:
        assert isinstance(doc, dict), f"{path}: a document is not a mapping"
    return docs


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """The parser's subcommands by name."""
    for action in parser._actions:  # argparse has no public accessor for subparsers
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def k8s_docs(yaml: ModuleType) -> list[tuple[Path, dict[str, Any]]]:
    """Every Kubernetes object in deploy/k8s (kustomization.yaml aside), with its file."""
    return [
        (path, doc)
        for path in sorted((DEPLOY / "k8s").glob("*.yaml"))
        if path.name != "kustomization.yaml"
        for doc in load_yaml_docs(yaml, path)
    ]


def pod_specs(yaml: ModuleType) -> list[tuple[str, dict[str, Any]]]:
    """(kind/name, pod spec) of every workload in deploy/k8s."""
    return [
        (f"{doc['kind']}/{doc['metadata']['name']}", doc["spec"]["template"]["spec"])
        for _, doc in k8s_docs(yaml)
        if doc["kind"] in ("Deployment", "Job")
    ]


def used_command_lines(yaml: ModuleType) -> dict[str, list[str]]:
    """Every newsmon argv (after `newsmon`) the deploy files start, by where it is written."""
    found: dict[str, list[str]] = {}
    compose = load_yaml_docs(yaml, DEPLOY / "compose" / "compose.yaml")[0]
    for name, svc in compose["services"].items():
        if str(svc.get("image", "")).startswith("${NEWSMON_IMAGE"):
            found[f"compose:{name}"] = list(svc["command"])
    for where, spec in pod_specs(yaml):
        for container in spec["containers"]:
            if container["image"].startswith("newsmon"):
                found[f"k8s:{where}/{container['name']}"] = list(container["args"])
    for unit in ("newsmon.service", "newsmon@.service"):
        text = (DEPLOY / "systemd" / unit).read_text(encoding="utf-8")
        argv = shlex.split(re.search(r"^ExecStart=\S*/newsmon (.*)$", text, re.M).group(1))  # type: ignore[union-attr]
        for instance in (*WORKERS, "api") if "%i" in argv else ("",):
            found["systemd:" + unit.replace("@.", f"@{instance}.")] = [
                a.replace("%i", instance) for a in argv
            ]
    cmd = re.search(r"^CMD (\[.*\])$", (DEPLOY / "container" / "Containerfile").read_text(), re.M)
    assert cmd, "Containerfile has no exec-form CMD"
    found["container:CMD"] = yaml.safe_load(cmd.group(1))
    return found
