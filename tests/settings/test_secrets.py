"""Secrets from files: a directory of mounted secrets (NEWSMON_SECRETS_DIR) and a webhook's `secret_file`."""

from __future__ import annotations

from pathlib import Path

import pytest

from newsmon.errors import ConfigError
from newsmon.settings import load_settings

SUB = """\
[[subscriptions]]
id = "ops"
topics = ["syria-military-shifts"]
[subscriptions.webhook]
url = "https://hooks.example.org/newsmon"
{secret}
"""


def test_secrets_dir_fills_nested_keys_below_env_above_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "smtp__password").write_text("from-the-secret-file\n", encoding="utf-8")
    (secrets / "bus__sasl_password").write_text("kafka-pw", encoding="utf-8")
    (secrets / "store__url").write_text("postgresql://newsmon:pw@db:5432/newsmon\n", encoding="utf-8")
    cfg = tmp_path / "c.toml"
    cfg.write_text('[smtp]\npassword = "from-the-config-file"\n[bus]\nsasl_username = "newsmon"\n', encoding="utf-8")
    monkeypatch.setenv("NEWSMON_SECRETS_DIR", str(secrets))
    settings = load_settings(cfg)
    assert settings.smtp.password is not None
    assert settings.smtp.password.get_secret_value() == "from-the-secret-file"  # secret file beats the config file
    assert settings.bus.sasl_password is not None and settings.bus.sasl_password.get_secret_value() == "kafka-pw"
    assert settings.store.url == "postgresql://newsmon:pw@db:5432/newsmon"
    monkeypatch.setenv("NEWSMON_SMTP__PASSWORD", "from-env")
    again = load_settings(cfg)
    assert again.smtp.password is not None and again.smtp.password.get_secret_value() == "from-env"


def test_a_missing_secrets_dir_is_a_config_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEWSMON_SECRETS_DIR", str(tmp_path / "absent"))
    with pytest.raises(ConfigError, match="absent"):
        load_settings()


def test_webhook_secret_file(tmp_path: Path) -> None:
    secret = tmp_path / "ops-webhook"
    secret.write_text("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n", encoding="utf-8")
    cfg = tmp_path / "c.toml"
    cfg.write_text(SUB.format(secret=f'secret_file = "{secret}"'), encoding="utf-8")
    hook = load_settings(cfg).subscriptions[0].webhook
    assert hook is not None and hook.secret is not None
    assert hook.secret.get_secret_value() == "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


@pytest.mark.parametrize(("line", "message"), [
    ('secret_file = "{dir}/absent"', "cannot read"),
    ('secret_file = "{dir}/bad"', "whsec_"),
    ('secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"\nsecret_file = "{dir}/bad"', "not both"),
], ids=["missing-file", "not-a-webhook-secret", "both"])
def test_bad_webhook_secret_file(tmp_path: Path, line: str, message: str) -> None:
    (tmp_path / "bad").write_text("s3cret\n", encoding="utf-8")
    cfg = tmp_path / "c.toml"
    cfg.write_text(SUB.format(secret=line.format(dir=tmp_path)), encoding="utf-8")
    with pytest.raises(ConfigError, match=message) as err:
        load_settings(cfg)
    assert "s3cret" not in str(err.value)
