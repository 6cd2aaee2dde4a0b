"""Table: subscriptions created through the API (config-file subscriptions live in the settings).

A row holds the subscription as the JSON of `SubscriptionSettings` (secrets included, so the alerter can sign;
the API never returns them). Queries are added by the alerting/API code that owns their use.
"""

from __future__ import annotations

from sqlalchemy import Column, Float, String, Table, Text

from newsmon.store.base import metadata

subscriptions = Table(
    "subscriptions",
    metadata,
    Column("id", String(120), primary_key=True),
    Column("spec", Text, nullable=False),
    Column("created_by", String(120), nullable=False, default=""),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)
