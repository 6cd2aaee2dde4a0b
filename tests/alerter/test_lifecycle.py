"""One alert per story: grouping, material updates, redelivery, silences, rate limits (bus → receiver)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from standardwebhooks import Webhook

from newsmon.store import alerts as alerts_db
from newsmon.store import deliveries as deliveries_db
from tests.alerter.conftest import ALEPPO, HAMA, SECRET, TOPIC, Harness, hook, match
from tests.support.receiver import Receiver

Build = Callable[..., Harness]


def bodies(rx: Receiver, path: str = "/hook") -> list[dict]:  # type: ignore[type-arg]
    out = []
    for req in rx.requests_to(path):
        out.append(Webhook(SECRET).verify(req.body, req.headers))
    return out


async def test_five_outlets_make_one_alert_then_one_update_for_a_new_place(
    harness: Build, receiver: Receiver
) -> None:
    h = harness([hook("ops", receiver.url())], alerting={"group_wait": 0.3, "group_interval": 0.2})
    await h.publish(*[match(feed=f"feed-{i}", score=0.6 + i * 0.01) for i in range(5)])
    await h.drain()
    first = bodies(receiver)
    assert len(first) == 1
    new = first[0]
    assert new["type"] == "alert.new" and new["data"]["kind"] == "new"
    assert new["data"]["source_count"] == 5
    assert {s["feed_id"] for s in new["data"]["sources"]} == {f"feed-{i}" for i in range(5)}
    assert new["subscription"] == "ops" and new["data"]["topic"] == TOPIC

    # the same five again (a redelivery) change nothing; a sixth report naming Hama does
    await h.publish(*[match(feed=f"feed-{i}", score=0.6 + i * 0.01) for i in range(5)])
    await h.publish(match(feed="feed-2", article="a-later", places=(HAMA,), score=0.62))
    await h.drain()
    got = bodies(receiver)
    assert len(got) == 2
    update = got[1]
    assert update["type"] == "alert.update" and update["data"]["revision"] == 2
    assert update["data"]["alert_id"] == new["data"]["alert_id"]
    assert update["data"]["id"] != new["data"]["id"]
    assert any("Hama" in c for c in update["data"]["changes"])
    assert update["data"]["source_count"] == 5
    ids = [r.headers["webhook-id"] for r in receiver.requests_to("/hook")]
    assert ids == [new["data"]["id"], update["data"]["id"]]


async def test_no_update_without_material_change(harness: Build, receiver: Receiver) -> None:
    h = harness([hook("ops", receiver.url())])
    await h.publish(match(feed="feed-1"))
    await h.drain()
    # another article from the same outlet, same place, same score: not news
    await h.publish(match(feed="feed-1", article="a-second"))
    await h.drain()
    assert len(receiver.requests_to("/hook")) == 1


async def test_a_place_only_in_the_background_is_no_update(harness: Build, receiver: Receiver) -> None:
    h = harness([hook("ops", receiver.url())])
    await h.publish(match(feed="feed-1"))
    await h.drain()
    # a second report of the same outlet names Hama only in a background paragraph: not news
    await h.publish(match(feed="feed-1", article="a-second", places=(ALEPPO, HAMA), focus=(ALEPPO,)))
    await h.drain()
    assert len(receiver.requests_to("/hook")) == 1
    # a third one reports fighting in Hama (its lead names it): an update, and Hama is what changed
    await h.publish(match(feed="feed-1", article="a-third", places=(HAMA, ALEPPO)))
    await h.drain()
    got = bodies(receiver)
    assert len(got) == 2 and got[1]["data"]["changes"] == ["new place: Hama"]
    assert {p["id"] for p in got[1]["data"]["places"]} == {"aleppo", "hama"}


async def test_score_rise_is_an_update(harness: Build, receiver: Receiver) -> None:
    h = harness([hook("ops", receiver.url())])
    await h.publish(match(feed="feed-1", score=0.5))
    await h.drain()
    await h.publish(match(feed="feed-1", article="a-stronger", score=0.8))
    await h.drain()
    got = bodies(receiver)
    assert [b["data"]["kind"] for b in got] == ["new", "update"]
    assert any(c.startswith("score up") for c in got[1]["data"]["changes"])


@pytest.mark.parametrize(
    "silence",
    [
        pytest.param({"topic": TOPIC}, id="by-topic"),
        pytest.param({"place": "حلب"}, id="by-place-arabic"),
        pytest.param({"text": "army positions"}, id="by-text"),
    ],
)
async def test_silence_suppresses_and_is_recorded(
    harness: Build, receiver: Receiver, silence: dict[str, Any]
) -> None:
    h = harness([hook("ops", receiver.url())])
    await alerts_db.add_silence(
        h.store, alerts_db.Silence(id="", reason="known event", expires_at=time.time() + 600, **silence)
    )
    await h.publish(
        match(lang="en"), match(story="other", lang="en", places=(HAMA,), title="Army moves in Hama")
    )
    await h.drain()
    suppressed = await deliveries_db.list_deliveries(h.store, status="suppressed")
    delivered = bodies(receiver)
    assert len(suppressed) >= 1 and all("silenced" in (d.last_error or "") for d in suppressed)
    assert all(b["data"]["story_id"] != "story-1" for b in delivered)
    assert len(suppressed) + len(delivered) == 2


async def test_expired_silence_does_not_apply(harness: Build, receiver: Receiver) -> None:
    h = harness([hook("ops", receiver.url())])
    await alerts_db.add_silence(
        h.store, alerts_db.Silence(id="", reason="old", expires_at=time.time() - 1, topic=TOPIC)
    )
    await h.publish(match())
    await h.drain()
    assert len(receiver.requests_to("/hook")) == 1


async def test_rate_limit_caps_notifications_per_subscription(harness: Build, receiver: Receiver) -> None:
    h = harness([hook("ops", receiver.url(), rate_limit="2/h"), hook("all", receiver.url("/all"))])
    await h.publish(*[match(story=f"s{i}", feed=f"feed-{i}") for i in range(4)])
    await h.drain()
    assert len(receiver.requests_to("/hook")) == 2
    assert len(receiver.requests_to("/all")) == 4
    limited = await deliveries_db.list_deliveries(h.store, status="suppressed", subscription="ops")
    assert len(limited) == 2 and all("rate limit" in (d.last_error or "") for d in limited)


async def test_filters_route_by_score_language_source_and_place(harness: Build, receiver: Receiver) -> None:
    h = harness(
        [
            hook("strong", receiver.url("/strong"), min_score=0.8),
            hook("english", receiver.url("/en"), languages=["en"]),
            hook("outlet3", receiver.url("/o3"), sources=["feed-3"]),
            hook("near-hama", receiver.url("/hama"), places=["35.1,36.7,30km"]),
        ]
    )
    await h.publish(
        match(story="s1", feed="feed-1", score=0.9, lang="ar"),
        match(story="s2", feed="feed-3", score=0.5, lang="en", places=(HAMA,)),
    )
    await h.drain()
    story = {
        p: [json.loads(r.body)["data"]["story_id"] for r in receiver.requests_to(p)]
        for p in ("/strong", "/en", "/o3", "/hama")
    }
    assert story == {"/strong": ["s1"], "/en": ["s2"], "/o3": ["s2"], "/hama": ["s2"]}


async def test_place_filters_and_silences_follow_what_the_story_reports(
    harness: Build, receiver: Receiver
) -> None:
    h = harness([hook("hama", receiver.url("/hama"), places=["Hama"]), hook("all", receiver.url("/all"))])
    await alerts_db.add_silence(
        h.store, alerts_db.Silence(id="", reason="Aleppo covered elsewhere", expires_at=time.time() + 600,
                                   place="حلب")
    )
    # s1 reports on Aleppo (silenced) and names Hama only in its background; s2 reports on Hama, Aleppo aside
    await h.publish(
        match(story="s1", feed="feed-1", places=(ALEPPO, HAMA), focus=(ALEPPO,)),
        match(story="s2", feed="feed-2", places=(HAMA, ALEPPO), focus=(HAMA,)),
    )
    await h.drain()
    got = {p: [json.loads(r.body)["data"]["story_id"] for r in receiver.requests_to(p)] for p in ("/hama", "/all")}
    assert got == {"/hama": ["s2"], "/all": ["s2"]}
    alert = json.loads(receiver.requests_to("/all")[0].body)["data"]
    assert alert["focus"] == ["hama"] and {p["id"] for p in alert["places"]} == {"hama", "aleppo"}
