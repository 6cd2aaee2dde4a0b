"""Request models (bodies and query strings); their JSON Schemas feed the OpenAPI document."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from newsmon.settings import PositiveDuration, SubscriptionSettings, WebhookSettings

Limit = Field(50, ge=1, le=500, description="How many items to return (most recent first)")


class Strict(BaseModel):
    """Unknown fields are errors (a typo must not be silently ignored)."""

    model_config = ConfigDict(extra="forbid")


class ListQuery(Strict):
    """Filters shared by the recent-items listings."""

    limit: int = Limit
    topic: str | None = Field(None, max_length=200)
    lang: str | None = Field(None, max_length=16)
    place: str | None = Field(None, max_length=200, description="Gazetteer id or English/Arabic name of a place the "
                              "story reports on (named in a title or lead, not only in background)")
    since: datetime | None = None
    until: datetime | None = None


class StoryQuery(Strict):
    limit: int = Limit
    since: datetime | None = None


class DeliveryQuery(Strict):
    limit: int = Limit
    status: Literal["pending", "delivered", "dead", "suppressed"] | None = None
    subscription: str | None = Field(None, max_length=200)


class ActivityQuery(Strict):
    hours: int = Field(24, ge=1, le=24 * 30, description="How far back")


class FeedIn(Strict):
    """A feed to add (the poller picks it up from the store)."""

    url: str = Field(max_length=2000, pattern=r"^https?://[^/\s]+\S*$",
                     description="http(s):// URL of the feed")
    id: str | None = Field(None, min_length=1, max_length=80, pattern=r"^[A-Za-z0-9_.-]+$")
    name: str = Field("", max_length=200)
    lang: str | None = Field(None, max_length=16)
    interval: PositiveDuration = Field(300, description="Seconds (or '5m') between polls")

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        try:
            parts = urlsplit(v)
            parts.port  # noqa: B018  (raises on a bad port)
        except ValueError:
            raise ValueError("must be an http:// or https:// URL") from None
        if not parts.hostname:
            raise ValueError("must be an http:// or https:// URL with a host")
        return v


class FeedPatch(Strict):
    active: bool = Field(description="false pauses polling, true resumes it")


class PreviewIn(Strict):
    """A text to classify, with an optional draft topic pack (TOML with [[topics]])."""

    title: str = Field("", max_length=2000)
    text: str = Field("", max_length=100_000)
    lang: str | None = Field(None, max_length=16)
    topic_toml: str | None = Field(None, max_length=50_000, description="A draft pack to try with the rest")


class SilenceIn(Strict):
    """Suppress notifications matching every given field for `duration`."""

    topic: str | None = Field(None, max_length=120)
    place: str | None = Field(None, max_length=200)
    text: str | None = Field(None, max_length=500)
    subscription: str | None = Field(None, max_length=120)
    reason: str = Field(min_length=1, max_length=1000)
    duration: PositiveDuration = Field(description="Seconds or '2h', '1d' (at most 90 days)")

    @model_validator(mode="after")
    def _scope(self) -> SilenceIn:
        if not (self.topic or self.place or self.text or self.subscription):
            raise ValueError("a silence needs at least one of topic, place, text, subscription")
        if self.duration > 90 * 86400:
            raise ValueError("duration: at most 90 days")
        return self


class ReplayIn(Strict):
    """Which dead deliveries to queue again (at least one filter, or everything)."""

    delivery: str | None = Field(None, max_length=200)
    subscription: str | None = Field(None, max_length=120)
    since: datetime | None = None
    everything: bool = False


class ApiWebhook(WebhookSettings):
    """A webhook given through the API: `secret` itself (the API reads no file on the server)."""

    secret_file: None = Field(None, description="Not accepted through the API: give `secret`")


class SubscriptionIn(SubscriptionSettings):
    """A subscription to create or replace: the fields of the config file's [[subscriptions]], as JSON."""

    id: str = Field(min_length=1, max_length=120, pattern=r"^[A-Za-z0-9_.-]+$")
    webhook: ApiWebhook | None = None


class SubscriptionPatch(BaseModel):
    """A JSON merge patch (RFC 7396) of a subscription: given keys replace, null resets a key to its default,
    nested objects (webhook, email) merge. Secrets already stored stay unless the patch gives new ones."""

    model_config = ConfigDict(extra="allow")
