"""Generates `schemas/`: one JSON Schema per event, an example webhook body, and an AsyncAPI document.

The files are checked in and never edited by hand; `newsmon schemas --check` (run by a test) fails on drift.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from newsmon import events

_EXAMPLE_TIME = datetime(2024, 12, 2, 9, 30, tzinfo=UTC)


def _dump(data: Any) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False, sort_keys=True) + "\n"


def example_webhook() -> events.WebhookEnvelope:
    """A realistic example body, as a subscriber receives it (our own sample text)."""
    aleppo = events.Entity(id="place:aleppo", kind="place", name_en="Aleppo", name_ar="حلب", type="city",
                           lat=36.2021, lon=37.1343)
    alert = events.Alert(
        id="ntf_3f9c2a1b7e4d5a60-1", alert_id="alr_3f9c2a1b7e4d5a60", kind="new", revision=1,
        topic="syria-military-shifts", topic_title="Syria: military shifts", severity="high",
        story_id="st_8d1e0c4b", title="فصائل المعارضة تسيطر على مدينة حلب بعد هجوم واسع",
        url="https://news.example.org/ar/2024/12/aleppo", lang="ar", score=0.91,
        terms=["سيطر*", "@syria_places"],
        spans=[events.Span(field="title", start=16, end=21, term="سيطر*", text="تسيطر")],
        explanation="title: سيطر* NEAR حلب; text: فصائل المعارضة, هجوم",
        summary="أعلنت فصائل المعارضة السورية سيطرتها على معظم أحياء مدينة حلب.",
        places=[aleppo], focus=[aleppo.id], sources=[events.Source(
            article_id="a_51c0", feed_id="f_example_ar", source="Example News (ar)",
            title="فصائل المعارضة تسيطر على مدينة حلب بعد هجوم واسع",
            url="https://news.example.org/ar/2024/12/aleppo", lang="ar", published=_EXAMPLE_TIME, score=0.91)],
        source_count=1, first_seen=_EXAMPLE_TIME, created_at=_EXAMPLE_TIME)
    return events.WebhookEnvelope(type="alert.new", timestamp=_EXAMPLE_TIME, subscription="ops-syria", data=alert)


def asyncapi() -> dict[str, Any]:
    """An AsyncAPI 3.0 document of the bus topics and their messages."""
    channels: dict[str, Any] = {}
    messages = {events.ARTICLES_TOPIC: ("Article", "article", "article id"),
                events.MATCHES_TOPIC: ("Match", "match", "story id"),
                events.ALERTS_TOPIC: ("Alert", "alert", "story id"),
                events.DEAD_LETTER_TOPIC: ("DeadLetter", "dead-letter", "original key")}
    for topic, (msg, schema, key) in messages.items():
        channels[msg.lower()] = {
            "address": topic,
            "messages": {msg: {"name": msg, "contentType": "application/json",
                               "payload": {"$ref": f"./{schema}.schema.json"},
                               "bindings": {"kafka": {"key": {"type": "string", "description": key}}}}},
        }
    return {
        "asyncapi": "3.0.0",
        "info": {"title": "newsmon bus", "version": "1.0.0",
                 "description": "Topics between newsmon's services. Keys keep per-article / per-story order. "
                                "Delivery is at-least-once: consumers are idempotent."},
        "channels": channels,
        "operations": {
            f"{verb}{msg}": {"action": action, "channel": {"$ref": f"#/channels/{msg.lower()}"}}
            for msg, verb, action in (("Article", "publish", "send"), ("Match", "publish", "send"),
                                      ("Alert", "publish", "send"), ("DeadLetter", "publish", "send"))
        },
    }


def render() -> dict[str, str]:
    """Every file of schemas/, by name."""
    files = {f"{name}.schema.json": _dump(model.model_json_schema())
             for name, model in events.SCHEMA_MODELS.items()}
    files["webhook-example.json"] = _dump(json.loads(example_webhook().model_dump_json()))
    files["asyncapi.json"] = _dump(asyncapi())
    return files


def write(out: Path) -> list[str]:
    """Write every file; returns their names."""
    out.mkdir(parents=True, exist_ok=True)
    files = render()
    for name, text in files.items():
        (out / name).write_text(text, encoding="utf-8")
    return sorted(files)


def check(out: Path) -> list[str]:
    """Names of files that are missing or differ from the models."""
    return sorted(name for name, text in render().items()
                  if not (out / name).is_file() or (out / name).read_text(encoding="utf-8") != text)
