"""Configuration through the CLI: bad values exit 2 with one line naming the key, the value and the reason."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

GOOD = """\
data_dir = "{data}"
[bus]
url = "sqlite:///{data}/bus.db"
[http]
allow_private_networks = false
[delivery]
retry_delays = [5, 300, 1800, 7200, 18000, 36000, 36000]
[[feeds]]
url = "https://example.org/rss.xml"
interval = 300
[[subscriptions]]
id = "ops-syria"
topics = ["syria-military-shifts"]
[subscriptions.webhook]
url = "https://hooks.example.org/newsmon"
secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
"""

CASES = {
    "negative-interval": (("interval = 300", "interval = -3"), "feeds.0.interval = -3"),
    "feed-url-not-a-url": (('url = "https://example.org/rss.xml"', 'url = "not a url"'), "feeds.0.url = 'not a url'"),
    "interval-garbage": (("interval = 300", 'interval = "soon"'), "feeds.0.interval = 'soon'"),
    "bad-secret": (("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "s3cret"), "subscriptions.0.webhook.secret"),
    "unknown-key": (("allow_private_networks = false", "allow_private_network = false"),
                    "http.allow_private_network"),
    "bad-bus-url": (('url = "sqlite:///', 'url = "redis:///'), "bus.url"),
    "bad-retry-delays": (("retry_delays = [5,", "retry_delays = [-5,"), "delivery.retry_delays.0"),
    "bad-toml": (("[http]", "[http"), "invalid TOML"),
}


def run(args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "newsmon.cli", *args], capture_output=True, text=True,
                          timeout=60, env={**os.environ, **(env or {})}, check=False)


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_bad_config_exits_2_with_one_line(tmp_path: Path, case: str) -> None:
    (old, new), expected = CASES[case]
    text = GOOD.format(data=tmp_path)
    assert old in text
    cfg = tmp_path / "bad.toml"
    cfg.write_text(text.replace(old, new, 1), encoding="utf-8")
    result = run(["run", "--config", str(cfg), "--until-idle"])
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert expected in lines[0] and "Traceback" not in result.stderr


def test_env_override_is_validated_too(tmp_path: Path) -> None:
    cfg = tmp_path / "ok.toml"
    cfg.write_text(GOOD.format(data=tmp_path), encoding="utf-8")
    result = run(["run", "--config", str(cfg), "--until-idle"], env={"NEWSMON_DELIVERY__TIMEOUT": "-1"})
    assert result.returncode == 2 and "delivery.timeout = '-1'" in result.stderr


def test_missing_config_file(tmp_path: Path) -> None:
    result = run(["run", "--config", str(tmp_path / "nope.toml")])
    assert result.returncode == 2 and "config file not found" in result.stderr


def test_env_overrides_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from newsmon.settings import load_settings

    cfg = tmp_path / "ok.toml"
    cfg.write_text(GOOD.format(data=tmp_path), encoding="utf-8")
    monkeypatch.setenv("NEWSMON_BUS__URL", "kafka://127.0.0.1:1,127.0.0.2:2")
    settings = load_settings(cfg)
    assert settings.bus.bootstrap_servers == ["127.0.0.1:1", "127.0.0.2:2"]
    assert settings.feeds[0].interval == 300 and settings.delivery.retry_delays[1] == 300


def test_durations_accept_units(tmp_path: Path) -> None:
    from newsmon.settings import load_settings

    cfg = tmp_path / "ok.toml"
    cfg.write_text(GOOD.format(data=tmp_path).replace("interval = 300", 'interval = "5m"'), encoding="utf-8")
    assert load_settings(cfg).feeds[0].interval == 300


def test_schemas_are_current() -> None:
    result = run(["schemas", "--check", "--out", str(Path(__file__).resolve().parents[2] / "schemas")])
    assert result.returncode == 0, result.stdout
