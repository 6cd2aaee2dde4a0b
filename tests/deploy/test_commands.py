"""The deploy files start only real `newsmon` subcommands, and the image's entrypoint runs."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

from tests.deploy.deployfiles import (
    DEPLOY,
    KNOWN_COMMANDS,
    WORKERS,
    subcommands,
    used_command_lines,
)


def test_deploy_files_start_every_service(yaml: ModuleType) -> None:
    used = used_command_lines(yaml)
    for prefix in ("compose:", "k8s:", "systemd:newsmon@"):
        started = {argv[0] for where, argv in used.items() if where.startswith(prefix)}
        assert set(WORKERS) | {"api"} <= started, f"{prefix} does not start every service: {sorted(started)}"
    assert used["systemd:newsmon.service"][0] == "run"
    assert used["container:CMD"][0] == "run"


def test_deploy_files_use_known_commands_with_a_config(yaml: ModuleType) -> None:
    for where, argv in used_command_lines(yaml).items():
        assert argv[0] in KNOWN_COMMANDS, f"{where}: unknown newsmon command {argv}"
        assert "--config" in argv, f"{where}: {argv} without --config"
        assert Path(argv[argv.index("--config") + 1]).is_absolute(), f"{where}: relative config path"


def test_cli_accepts_every_deploy_command_line(yaml: ModuleType, cli_parser: argparse.ArgumentParser) -> None:
    registered = subcommands(cli_parser)
    rejected = []
    for where, argv in used_command_lines(yaml).items():
        line = f"{where}: newsmon {' '.join(argv)}"
        if argv[0] not in registered:
            rejected.append(line)
        else:
            args = cli_parser.parse_args(argv)  # exits (fails the test) on options the command does not take
            assert callable(getattr(args, "func", None)), f"{line}: selects no command function"
    assert not rejected, f"commands not in newsmon's CLI (has {sorted(registered)}): " + "; ".join(rejected)


def test_entrypoint_runs(cli_parser: argparse.ArgumentParser) -> None:
    # The image's ENTRYPOINT is the `newsmon` console script: run it the way the container does.
    script = Path(sys.executable).parent / "newsmon"
    out = subprocess.run([str(script), "--version"], capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("newsmon ")


def test_image_default_command_runs_to_idle(yaml: ModuleType, tmp_path: Path) -> None:
    # The image's CMD with its baked-in config, run directly; only data_dir moves (no /var/lib/newsmon here).
    cmd = used_command_lines(yaml)["container:CMD"]
    config = DEPLOY / "container" / "newsmon.toml"
    argv = [a if a != "/etc/newsmon/newsmon.toml" else str(config) for a in cmd]
    env = {**os.environ, "NEWSMON_DATA_DIR": str(tmp_path / "data")}
    out = subprocess.run(
        [str(Path(sys.executable).parent / "newsmon"), *argv, "--until-idle", "--no-api"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=tmp_path,
        env=env,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert (tmp_path / "data" / "bus.db").is_file(), "embedded state must live under data_dir"
