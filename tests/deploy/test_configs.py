"""Every newsmon config in deploy/ loads with newsmon's own loader; the example documents every key."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from newsmon.settings import Settings, load_settings
from tests.deploy.deployfiles import DEPLOY

EXAMPLE = DEPLOY / "newsmon.example.toml"
# Secrets are documented in the example but only as environment variables, never as a value in the file.
SECRET_KEYS = {"smtp.password": "NEWSMON_SMTP__PASSWORD", "bus.sasl_password": "NEWSMON_BUS__SASL_PASSWORD"}
# Documented in the example, but usable only with a real file present.
FILE_KEYS = {"subscriptions.webhook.secret_file"}
# "# key = value" (one space after #) marks an optional key with a working value; see the example's header.
OPTIONAL_LINE = re.compile(r"^# (\w+ = .*)$", re.M)


def field_paths(model: type[BaseModel], prefix: str = "") -> set[str]:
    """Dotted paths of every settings key, items of lists included (feeds.url, subscriptions.webhook.url)."""
    paths: set[str] = set()
    for name, field in model.model_fields.items():
        path = f"{prefix}{name}"
        paths.add(path)
        inner = field.annotation
        for arg in (*getattr(inner, "__args__", ()), inner):
            if isinstance(arg, type) and issubclass(arg, BaseModel):
                paths |= field_paths(arg, f"{path}.")
    return paths


def data_paths(data: Any, prefix: str = "") -> set[str]:
    """Dotted paths of every key in parsed TOML (items of arrays of tables merged)."""
    paths: set[str] = set()
    items = data if isinstance(data, list) else [data]
    for item in items:
        if isinstance(item, dict):
            for key, value in item.items():
                paths.add(f"{prefix}{key}")
                paths |= data_paths(value, f"{prefix}{key}.")
    return paths


def test_example_loads_as_written() -> None:
    settings = load_settings(EXAMPLE)
    assert settings.feeds and settings.subscriptions


def test_example_loads_with_every_optional_key_enabled(tmp_path: Path) -> None:
    enabled = tmp_path / "all.toml"
    enabled.write_text(OPTIONAL_LINE.sub(r"\1", EXAMPLE.read_text(encoding="utf-8")), encoding="utf-8")
    assert enabled.read_text() != EXAMPLE.read_text(), "the example shows no optional key"
    settings = load_settings(enabled)
    assert settings.subscriptions[0].rate_limit is not None


def test_example_documents_every_settings_key(tmp_path: Path) -> None:
    text = OPTIONAL_LINE.sub(r"\1", EXAMPLE.read_text(encoding="utf-8"))
    present = data_paths(tomllib.loads(text))
    missing = field_paths(Settings) - present - set(SECRET_KEYS) - {k for k in FILE_KEYS if k.rsplit(".")[-1] in text}
    assert not missing, f"keys of settings.py missing from {EXAMPLE.name}: {sorted(missing)}"
    unknown = present - field_paths(Settings)
    assert not unknown, f"keys in {EXAMPLE.name} that settings.py does not have: {sorted(unknown)}"
    for key, env in SECRET_KEYS.items():
        assert key not in present, f"{key} must not have a value in the example"
        assert env in EXAMPLE.read_text(), f"the example must say to set {key} through {env}"


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines of a compose env file (no quotes, # comments)."""
    pairs = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            pairs[key.strip()] = value
    return pairs


def env_key_exists(name: str) -> bool:
    """Whether NEWSMON_<KEY> or NEWSMON_<SECTION>__<KEY> names a real settings key."""
    parts = name.removeprefix("NEWSMON_").lower().split("__")
    model: type[BaseModel] = Settings
    for i, part in enumerate(parts):
        field = model.model_fields.get(part)
        if field is None:
            return False
        if i < len(parts) - 1:
            nested = next(
                (
                    a
                    for a in (*getattr(field.annotation, "__args__", ()), field.annotation)
                    if isinstance(a, type) and issubclass(a, BaseModel)
                ),
                None,
            )
            if nested is None:
                return False
            model = nested
    return True


def test_env_key_check_rejects_typos() -> None:
    assert env_key_exists("NEWSMON_STORE__URL") and env_key_exists("NEWSMON_DATA_DIR")
    assert not env_key_exists("NEWSMON_STORE_URL") and not env_key_exists("NEWSMON_SMTP__PASSWD")


CONFIGS = {
    # config file, env file with its secrets (or None), expected bus kind, expected store scheme
    "container": (DEPLOY / "container" / "newsmon.toml", None, "sqlite", "sqlite"),
    "compose": (
        DEPLOY / "compose" / "newsmon.toml",
        DEPLOY / "compose" / "secrets.example" / "newsmon.env",
        "kafka",
        "postgresql",
    ),
    "k8s": (DEPLOY / "k8s" / "newsmon.toml", None, "kafka", "postgresql"),
}


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_deploy_config_loads(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    config, env_file, bus_kind, store_scheme = CONFIGS[name]
    for key, value in (read_env_file(env_file) if env_file else {}).items():
        assert env_key_exists(key), f"{env_file}: {key} is not a newsmon setting"
        monkeypatch.setenv(key, value)
    settings = load_settings(config)
    assert settings.bus.kind == bus_kind
    assert settings.store.url.startswith(store_scheme)
    assert settings.api.listen == "0.0.0.0:8080", "in a container the API must listen on all interfaces"
    assert str(settings.data_dir) == "/var/lib/newsmon"
    if env_file:
        assert "CHANGE-ME" in settings.store.url, "env must override the password-less URL of the file"
    if bus_kind == "kafka":
        # One process per service: each serves its own /metrics (the API's holds only the API's counters).
        assert settings.metrics.listen, f"{config}: workers' metrics would not be scraped"


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_deploy_config_holds_no_secret(name: str) -> None:
    config = CONFIGS[name][0]
    data = tomllib.loads(config.read_text(encoding="utf-8"))
    assert "subscriptions" not in data, f"{config}: subscriptions carry webhook secrets; pass them by env"
    assert "password" not in data.get("smtp", {})
    assert not re.search(r"postgresql://[^@/]*:[^@/]*@", data.get("store", {}).get("url", "")), (
        "password in URL"
    )
