"""Imports every table module so `metadata` is complete (create_all, migrations)."""

from newsmon.store import alerts, deliveries, feeds, seen, stories, subscriptions, tokens  # noqa: F401
