"""Routing (pure): which subscriptions and channels get an alert, when, and which silence suppresses it.

Filters per subscription: topics, minimum score, languages (of any report), sources (feed id or outlet
name), places (a name in English or Arabic, a gazetteer id, or a circle `"lat,lon,RADIUSkm"`; matched against
the places some report names in its title or lead, not its background). Timing: digests
wait for the next digest boundary; quiet hours (`"22:00-06:00"`, UTC) hold a notification until they end.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from newsmon.events import Alert, Entity, reported_places
from newsmon.settings import Duration, SubscriptionSettings, parse_duration
from newsmon.store.alerts import Silence

Channel = Literal["webhook", "email"]
_CIRCLE = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*,\s*(-?\d+(?:\.\d+)?)\s*,\s*(\d+(?:\.\d+)?)\s*km\s*$", re.I)
_HOURS = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")
_RATE = re.compile(r"^\s*(\d+)\s*/\s*(\S+)\s*$")
_DAY = 86400.0


@dataclass(frozen=True, slots=True)
class Route:
    """One delivery to make: subscription × channel, due at `due`; `digest` groups it with others."""

    subscription: str
    channel: Channel
    endpoint: str
    due: float
    digest: bool


def _place_matches(rule: str, places: list[Entity]) -> bool:
    circle = _CIRCLE.match(rule)
    if circle:
        lat, lon, km = (float(g) for g in circle.groups())
        return any(
            p.lat is not None and p.lon is not None and _km(lat, lon, p.lat, p.lon) <= km for p in places
        )
    want = rule.strip().casefold()
    return any(want in (p.id.casefold(), p.name_en.casefold(), p.name_ar.casefold()) for p in places)


def _km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6371.0 * math.asin(math.sqrt(h))


def wants(sub: SubscriptionSettings, alert: Alert) -> bool:
    """True when the subscription's filters accept the alert."""
    if alert.topic not in sub.topics or alert.score < sub.min_score:
        return False
    if sub.languages:
        langs = {alert.lang} | {s.lang for s in alert.sources}
        if not langs & set(sub.languages):
            return False
    if sub.sources:
        names = {s.feed_id.casefold() for s in alert.sources} | {s.source.casefold() for s in alert.sources}
        if not names & {x.casefold() for x in sub.sources}:
            return False
    places = reported_places(alert.places, alert.focus)
    return not sub.places or any(_place_matches(rule, places) for rule in sub.places)


def silenced_by(alert: Alert, subscription: str, silences: list[Silence]) -> Silence | None:
    """The first silence that covers this alert for this subscription, if any."""
    for s in silences:
        if s.topic and s.topic != alert.topic:
            continue
        if s.subscription and s.subscription != subscription:
            continue
        if s.place and not _place_matches(s.place, reported_places(alert.places, alert.focus)):
            continue
        if s.text:
            hay = " ".join([alert.title, alert.summary, *(x.title for x in alert.sources)]).casefold()
            if s.text.casefold() not in hay:
                continue
        return s
    return None


def quiet_until(spec: str | None, now: float) -> float | None:
    """End of the quiet window containing `now` (UTC), or None when not quiet."""
    m = _HOURS.match(spec or "")
    if not m:
        return None
    start = (int(m.group(1)) * 60 + int(m.group(2))) * 60.0
    end = (int(m.group(3)) * 60 + int(m.group(4))) * 60.0
    day = now - now % _DAY
    t = now - day
    if start <= end:
        return day + end if start <= t < end else None
    if t >= start:
        return day + _DAY + end
    return day + end if t < end else None


def rate(spec: str | None) -> tuple[int, float] | None:
    """'10/h', '3/30m' → (count, period seconds); None when unlimited."""
    m = _RATE.match(spec or "")
    if not m:
        return None
    unit = m.group(2)
    period = parse_duration(f"1{unit}" if unit.isalpha() else unit)
    return int(m.group(1)), period


def route(subs: Sequence[SubscriptionSettings], alert: Alert, now: float, smtp_endpoint: str) -> list[Route]:
    """Every channel of every subscription that wants this alert (silences and rate limits apply later)."""
    out: list[Route] = []
    for sub in subs:
        if not wants(sub, alert):
            continue
        held = quiet_until(sub.quiet_hours, now) or now
        if sub.webhook is not None:
            digest = sub.mode == "digest"
            due = _next_boundary(held, sub.digest_every) if digest else held
            out.append(Route(sub.id, "webhook", str(sub.webhook.url), due, digest))
        if sub.email is not None:
            digest = sub.mode == "digest" or sub.email.mode == "digest"
            due = _next_boundary(held, sub.digest_every) if digest else held
            out.append(Route(sub.id, "email", smtp_endpoint, due, digest))
    return out


def _next_boundary(t: float, every: Duration) -> float:
    return (math.floor(t / every) + 1) * every
