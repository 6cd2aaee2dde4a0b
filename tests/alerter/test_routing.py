"""Routing rules (pure): quiet hours, rate specs, digest timing, place circles; the retry schedule."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest

from newsmon.alerter import routing
from newsmon.alerter.endpoints import next_attempt
from newsmon.errors import DeliveryError
from newsmon.events import Alert
from newsmon.settings import DeliverySettings, SubscriptionSettings
from tests.alerter.conftest import ALEPPO, HAMA, TOPIC


def _t(hhmm: str) -> float:
    h, m = hhmm.split(":")
    return datetime(2026, 3, 1, int(h), int(m), tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    ("spec", "now", "until"),
    [
        pytest.param("22:00-06:00", "23:30", "06:00+1", id="overnight-before-midnight"),
        pytest.param("22:00-06:00", "02:00", "06:00", id="overnight-after-midnight"),
        pytest.param("22:00-06:00", "12:00", None, id="overnight-outside"),
        pytest.param("12:00-13:00", "12:30", "13:00", id="daytime-inside"),
        pytest.param("12:00-13:00", "13:00", None, id="daytime-end-is-open"),
        pytest.param(None, "12:00", None, id="none"),
    ],
)
def test_quiet_hours(spec: str | None, now: str, until: str | None) -> None:
    expected = None
    if until is not None:
        expected = _t(until.removesuffix("+1")) + (86400 if until.endswith("+1") else 0)
    assert routing.quiet_until(spec, _t(now)) == expected


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        pytest.param("10/h", (10, 3600.0), id="per-hour"),
        pytest.param("3/30m", (3, 1800.0), id="per-30-minutes"),
        pytest.param("5/d", (5, 86400.0), id="per-day"),
        pytest.param(None, None, id="unlimited"),
    ],
)
def test_rate_spec(spec: str | None, expected: tuple[int, float] | None) -> None:
    assert routing.rate(spec) == expected


def _alert(**kw: object) -> Alert:
    base: dict[str, object] = {
        "id": "n1",
        "alert_id": "a1",
        "kind": "new",
        "topic": TOPIC,
        "story_id": "s",
        "title": "t",
        "score": 0.5,
        "places": [ALEPPO],
        "first_seen": datetime.now(UTC),
    }
    return Alert.model_validate(base | kw)


def test_digest_and_quiet_hours_set_the_due_time() -> None:
    sub = SubscriptionSettings.model_validate(
        {
            "id": "d",
            "topics": [TOPIC],
            "mode": "digest",
            "digest_every": 3600,
            "quiet_hours": "00:00-06:00",
            "webhook": {"url": "https://hooks.example.org/x"},
            "email": {"to": ["x@example.org"]},
        }
    )
    [hook, mail] = routing.route([sub], _alert(), _t("05:10"), "smtp://127.0.0.1:25")
    assert hook.digest and mail.digest
    assert hook.due == mail.due == _t("07:00")  # quiet until 06:00, then the next hourly boundary


@pytest.mark.parametrize(
    ("rule", "hit"),
    [
        pytest.param("Aleppo", True, id="english-name"),
        pytest.param("حلب", True, id="arabic-name"),
        pytest.param("36.0,37.0,40km", True, id="circle-around"),
        pytest.param("33.5,36.3,40km", False, id="circle-elsewhere"),
        pytest.param("Hama", False, id="other-place"),
    ],
)
def test_place_rules(rule: str, hit: bool) -> None:
    sub = SubscriptionSettings.model_validate(
        {"id": "p", "topics": [TOPIC], "places": [rule], "webhook": {"url": "https://hooks.example.org/x"}}
    )
    assert routing.wants(sub, _alert()) is hit
    assert routing.wants(sub, _alert(places=[HAMA])) is (rule in ("Hama",))


def test_retry_schedule_with_jitter_and_retry_after() -> None:
    cfg = DeliverySettings(retry_delays=[10, 100], jitter=0.1)
    rng = random.Random(1)
    err = DeliveryError("HTTP 503", retriable=True, status=503)
    first = next_attempt(cfg, 1, err, 0.0, rng)
    assert first is not None and 9 <= first <= 11
    second = next_attempt(cfg, 2, err, 0.0, rng)
    assert second is not None and 90 <= second <= 110
    assert next_attempt(cfg, 3, err, 0.0, rng) is None  # past the schedule: dead letter
    later = DeliveryError("HTTP 429", retriable=True, status=429, retry_after=500)
    assert next_attempt(cfg, 1, later, 0.0, rng) == 500
    assert next_attempt(cfg, 1, DeliveryError("HTTP 410", retriable=False, status=410), 0.0, rng) is None
