"""The whole configuration: a TOML file (`--config FILE`) plus `NEWSMON_` environment overrides (nested with `__`).

Precedence: explicit init values > environment > TOML file > defaults. A bad value raises ConfigError with the key,
the value and the reason on one line; no module reads the environment itself.
"""

from __future__ import annotations

import os
import re
import tomllib
from contextvars import ContextVar
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AnyHttpUrl,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    NestedSecretsSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
    TomlConfigSettingsSource,
)

from newsmon.errors import ConfigError

_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")


def parse_duration(value: Any) -> float:
    """Seconds from a number or a string like '90', '5m', '1.5h'."""
    if isinstance(value, bool):
        raise ValueError("expected a duration like 300 or '5m'")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        m = _DURATION.match(value)
        if m:
            return float(m.group(1)) * _UNITS[m.group(2) or "s"]
    raise ValueError("expected a duration like 300 or '5m'")


Duration = Annotated[float, BeforeValidator(parse_duration)]
PositiveDuration = Annotated[float, BeforeValidator(parse_duration), Field(gt=0)]


class Section(BaseModel):
    """A config section: unknown keys are errors (a typo must not be silently ignored)."""

    model_config = ConfigDict(extra="forbid")


class BusSettings(Section):
    url: str = "sqlite:///./newsmon-data/bus.db"
    partitions: int = Field(4, ge=1, le=256, description="Partitions per topic (embedded bus; Kafka topics we create)")
    replication_factor: int = Field(1, ge=1, description="Kafka: replicas of the topics newsmon creates")
    retention: PositiveDuration = Field(7 * 86400, description="Embedded bus: how long messages are kept")
    client_id: str = "newsmon"
    namespace: str = Field("", pattern=r"^[A-Za-z0-9._-]*$",
                           description="Prefix for topic and group names (several deployments on one cluster)")
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT", description="Kafka: how clients connect (SASL_SSL for most managed clusters)")
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = "PLAIN"
    sasl_username: str = ""
    sasl_password: SecretStr | None = None
    ssl_cafile: Path | None = Field(None, description="Kafka: CA bundle (PEM) to verify brokers; default: system CAs")
    ssl_certfile: Path | None = Field(None, description="Kafka: client certificate (PEM) for mutual TLS")
    ssl_keyfile: Path | None = Field(None, description="Kafka: the client certificate's private key (PEM)")

    @field_validator("url")
    @classmethod
    def _scheme(cls, v: str) -> str:
        if not (v.startswith("sqlite://") or v.startswith("kafka://")):
            raise ValueError("must start with sqlite:// or kafka://")
        if v.startswith("kafka://") and not v.removeprefix("kafka://").strip(", "):
            raise ValueError("kafka:// needs at least one host:port")
        return v

    @model_validator(mode="after")
    def _security(self) -> BusSettings:
        if self.security_protocol.startswith("SASL") and not (self.sasl_username and self.sasl_password):
            raise ValueError(f"security_protocol {self.security_protocol} needs sasl_username and sasl_password")
        if (self.ssl_certfile is None) != (self.ssl_keyfile is None):
            raise ValueError("ssl_certfile and ssl_keyfile go together")
        return self

    @property
    def kind(self) -> Literal["sqlite", "kafka"]:
        return self.url.split(":", 1)[0]  # type: ignore[return-value]

    @property
    def bootstrap_servers(self) -> list[str]:
        return [h.strip() for h in self.url.removeprefix("kafka://").split(",") if h.strip()]

    @property
    def sqlite_path(self) -> Path:
        return Path(self.url.removeprefix("sqlite:///").removeprefix("sqlite://"))


class StoreSettings(Section):
    url: str = "sqlite:///./newsmon-data/newsmon.db"

    @field_validator("url")
    @classmethod
    def _scheme(cls, v: str) -> str:
        if not (v.startswith("sqlite") or v.startswith("postgresql")):
            raise ValueError("must be a sqlite:/// or postgresql:// URL")
        return v


class HttpSettings(Section):
    allow_private_networks: bool = False
    user_agent: str = "newsmon/0.1 (+https://github.com/newsmon/newsmon; news monitor)"
    connect_timeout: PositiveDuration = 10
    read_timeout: PositiveDuration = 20
    total_timeout: PositiveDuration = 60
    max_body_bytes: int = Field(10 * 1024 * 1024, gt=0)
    max_decompressed_bytes: int = Field(50 * 1024 * 1024, gt=0)
    max_redirects: int = Field(5, ge=0, le=20)


class PollerSettings(Section):
    concurrency: int = Field(64, ge=1)
    per_host_concurrency: int = Field(2, ge=1)
    per_host_interval: Duration = Field(1.0, ge=0, description="Minimum seconds between requests to one host")
    min_interval: PositiveDuration = 60
    max_interval: PositiveDuration = 6 * 3600
    max_backoff: PositiveDuration = 6 * 3600
    jitter: float = Field(0.1, ge=0, le=0.5)
    seen_ids_max: int = Field(200_000, ge=1000, description="De-duplication memory, per feed bounded")
    websub_callback: str = Field("", description="Public base URL hubs push to ('' = WebSub off)")
    websub_listen: str = Field("", description="HOST:PORT the WebSub callback server listens on")
    reload_interval: PositiveDuration = Field(
        5, description="How often the poller re-reads the feeds table (feeds added, paused, removed)")
    lease_ttl: PositiveDuration = Field(
        90, description="How long a poller's claim on a feed lasts unless renewed (after a crash: takeover delay)")


class ClassifierSettings(Section):
    topics_dirs: list[Path] = Field(default_factory=list, description="Extra topic pack directories")
    story_window: PositiveDuration = 48 * 3600
    semantic_weight: float = Field(0.0, ge=0, le=1, description="Semantic scorer: max score shift; 0 = off")


class DeliverySettings(Section):
    retry_delays: list[PositiveDuration] = Field(
        default_factory=lambda: [5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0])
    timeout: PositiveDuration = 10
    jitter: float = Field(0.1, ge=0, le=0.5)
    concurrency: int = Field(32, ge=1)
    breaker_threshold: int = Field(5, ge=1, description="Consecutive failures that open an endpoint's breaker")
    breaker_cooldown: PositiveDuration = 60


class AlertingSettings(Section):
    group_wait: Duration = Field(0, ge=0, description="Wait before the first notification of a new story")
    group_interval: Duration = Field(300, ge=0, description="Minimum time between updates of one alert")
    repeat_interval: Duration = Field(4 * 3600, ge=0)
    subscriptions_reload: PositiveDuration = Field(
        5, description="How often the alerter re-reads subscriptions made through the API")


class FeedSettings(Section):
    url: AnyHttpUrl
    interval: PositiveDuration = 300
    id: str | None = None
    name: str = ""
    lang: str | None = None

    @field_validator("url", mode="before")
    @classmethod
    def _url(cls, v: Any) -> Any:
        if isinstance(v, str) and not re.match(r"^https?://[^/\s]+", v):
            raise ValueError("must be an http:// or https:// URL")
        return v


class WebhookSettings(Section):
    url: AnyHttpUrl
    secret: SecretStr | None = None
    secret_file: Path | None = Field(None, description="Read `secret` from this file (a mounted secret)")
    secrets: list[SecretStr] = Field(default_factory=list, description="Extra secrets during rotation")
    format: Literal["standard", "slack", "teams"] = "standard"

    @field_validator("secret")
    @classmethod
    def _secret(cls, v: SecretStr | None) -> SecretStr | None:
        if v is not None and not v.get_secret_value().startswith("whsec_"):
            raise ValueError("must be a Standard Webhooks secret starting with 'whsec_'")
        return v

    @model_validator(mode="after")
    def _secret_from_file(self) -> WebhookSettings:
        if self.secret_file is None:
            return self
        if self.secret is not None:
            raise ValueError("give secret or secret_file, not both")
        try:
            value = self.secret_file.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise ValueError(f"secret_file: cannot read {self.secret_file}: {exc.__class__.__name__}") from None
        self.secret = self._secret(SecretStr(value))
        return self


class EmailSettings(Section):
    to: list[str] = Field(min_length=1)
    mode: Literal["immediate", "digest"] = "immediate"


class SmtpSettings(Section):
    host: str = "127.0.0.1"
    port: int = Field(25, ge=1, le=65535)
    username: str | None = None
    password: SecretStr | None = None
    starttls: bool = False
    sender: str = "newsmon@localhost"


class SubscriptionSettings(Section):
    id: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    topics: list[str] = Field(min_length=1)
    min_score: float = Field(0.0, ge=0, le=1)
    languages: list[str] = Field(default_factory=list)
    sources: list[str] = Field(default_factory=list)
    places: list[str] = Field(default_factory=list)
    mode: Literal["immediate", "digest"] = "immediate"
    digest_every: PositiveDuration = 3600
    quiet_hours: str | None = Field(None, description="'22:00-06:00' UTC: hold notifications, send after")
    rate_limit: str | None = Field(None, description="'10/h': at most N notifications per period")
    webhook: WebhookSettings | None = None
    email: EmailSettings | None = None

    @field_validator("quiet_hours")
    @classmethod
    def _quiet_hours(cls, v: str | None) -> str | None:
        clock = r"\s*([01]?\d|2[0-3]):[0-5]\d\s*"
        if v is not None and not re.fullmatch(f"{clock}-{clock}", v):
            raise ValueError("expected 'HH:MM-HH:MM' (UTC), e.g. '22:00-06:00'")
        return v

    @field_validator("rate_limit")
    @classmethod
    def _rate_limit(cls, v: str | None) -> str | None:
        if v is None:
            return v
        m = re.fullmatch(r"\s*(\d+)\s*/\s*(\S+)\s*", v)  # the alerter reads it as count / period
        try:
            ok = m is not None and int(m.group(1)) >= 1 and parse_duration(
                "1" + m.group(2) if m.group(2).isalpha() else m.group(2)) > 0
        except ValueError:
            ok = False
        if not ok:
            raise ValueError("expected COUNT/PERIOD with COUNT >= 1, e.g. '10/h' or '3/30m'")
        return v

    @model_validator(mode="after")
    def _channel(self) -> SubscriptionSettings:
        if self.webhook is None and self.email is None:
            raise ValueError("needs a channel: [subscriptions.webhook] or [subscriptions.email]")
        return self


class ApiSettings(Section):
    enabled: bool = True
    listen: str = "127.0.0.1:8080"
    metrics_public: bool = False

    @field_validator("listen")
    @classmethod
    def _listen(cls, v: str) -> str:
        host, sep, port = v.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
            raise ValueError("must be HOST:PORT")
        return v


class MetricsSettings(Section):
    listen: str = Field("", description="HOST:PORT to serve /metrics from any process ('' = only the API's)")
    stall_after: PositiveDuration = Field(120, description="/healthz there fails after a loop stalls this long")

    @field_validator("listen")
    @classmethod
    def _listen(cls, v: str) -> str:
        return ApiSettings._listen(v) if v else v


class LogSettings(Section):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["auto", "json", "console"] = "auto"


SECRETS_DIR_ENV = "NEWSMON_SECRETS_DIR"  # a directory of secret files (Kubernetes/compose secrets)
_config_file: ContextVar[Path | None] = ContextVar("newsmon_config_file", default=None)


class Settings(BaseSettings):
    """newsmon's configuration."""

    model_config = SettingsConfigDict(env_prefix="NEWSMON_", env_nested_delimiter="__", extra="forbid")

    data_dir: Path = Path("./newsmon-data")
    startup_wait: Duration = Field(300, ge=0, description="Retry an unreachable bus/store this long at start")
    bus: BusSettings = Field(default_factory=BusSettings)
    store: StoreSettings = Field(default_factory=StoreSettings)
    http: HttpSettings = Field(default_factory=HttpSettings)
    poller: PollerSettings = Field(default_factory=PollerSettings)
    classifier: ClassifierSettings = Field(default_factory=ClassifierSettings)
    alerting: AlertingSettings = Field(default_factory=AlertingSettings)
    delivery: DeliverySettings = Field(default_factory=DeliverySettings)
    smtp: SmtpSettings = Field(default_factory=SmtpSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    log: LogSettings = Field(default_factory=LogSettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    feeds: list[FeedSettings] = Field(default_factory=list)
    subscriptions: list[SubscriptionSettings] = Field(default_factory=list)

    @model_validator(mode="after")
    def _derive_paths(self) -> Settings:
        # Embedded state follows data_dir unless a URL was given explicitly.
        if "url" not in self.bus.model_fields_set:
            self.bus.url = f"sqlite:///{self.data_dir / 'bus.db'}"
        if "url" not in self.store.model_fields_set:
            self.store.url = f"sqlite:///{self.data_dir / 'newsmon.db'}"
        return self

    @model_validator(mode="after")
    def _unique_ids(self) -> Settings:
        ids = [s.id for s in self.subscriptions]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"subscription ids must be unique, repeated: {', '.join(dupes)}")
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        secrets_dir = os.environ.get(SECRETS_DIR_ENV)
        if secrets_dir:  # files named like the env vars without the prefix: smtp__password, bus__sasl_password
            sources.append(NestedSecretsSettingsSource(
                file_secret_settings, secrets_dir=secrets_dir, secrets_dir_missing="error", secrets_prefix="",
                secrets_nested_delimiter="__"))
        path = _config_file.get()
        if path is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
        return tuple(sources)


def _format_error(err: ValidationError) -> str:
    first = err.errors()[0]
    key = ".".join(str(p) for p in first["loc"]) or "(root)"
    value = first.get("input")
    msg = first["msg"].removeprefix("Value error, ")
    shown = repr(value) if not isinstance(value, dict | list) else "…"
    more = f" (and {len(err.errors()) - 1} more)" if len(err.errors()) > 1 else ""
    return f"{key} = {shown}: {msg}{more}"


def load_settings(path: Path | str | None = None, **overrides: Any) -> Settings:
    """Load settings from a TOML file, the environment and overrides; ConfigError on any bad value."""
    file = Path(path) if path is not None else None
    if file is not None:
        if not file.is_file():
            raise ConfigError(f"config file not found: {file}")
        try:
            tomllib.loads(file.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{file}: invalid TOML: {exc}") from None
        except UnicodeDecodeError:
            raise ConfigError(f"{file}: not UTF-8 text") from None
    token = _config_file.set(file)
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError(f"invalid config: {_format_error(exc)}") from None
    except SettingsError as exc:  # e.g. NEWSMON_SECRETS_DIR is not a directory
        raise ConfigError(f"invalid config: {exc}") from None
    finally:
        _config_file.reset(token)
