"""Channels: Standard Webhooks signing against the published vectors, chat payloads, Retry-After parsing."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from newsmon import net
from newsmon.alerter.channels import webhook
from tests.alerter.conftest import Harness, hook, match
from tests.support.receiver import Receiver

Build = Callable[..., Harness]


def _vectors(shared_dir: Path) -> list[dict[str, Any]]:
    path = shared_dir / "corpus" / "webhooks" / "standard-webhooks-vectors.json"
    if not path.is_file():
        pytest.skip("standard-webhooks-vectors.json is not present")
    return list(json.loads(path.read_text(encoding="utf-8"))["vectors"])


def test_signatures_match_the_published_vectors(shared_dir: Path) -> None:
    vectors = _vectors(shared_dir)
    signing = [v for v in vectors if v["kind"] == "sign"]
    assert signing
    for v in signing:
        got = webhook.sign([v["secret"]], v["msg_id"], v["timestamp"], v["payload"].encode())
        assert got == v["expected_signature"], v["id"]


def test_our_signature_agrees_with_the_verification_vectors(shared_dir: Path) -> None:
    for v in _vectors(shared_dir):
        if v["kind"] != "verify" or v["expect"] not in ("match", "reject"):
            continue
        ours = webhook.sign([v["secret"]], v["msg_id"], v["timestamp"], v["payload"].encode())
        offered = v["signature_header"].split(" ")
        assert (ours in offered) == (v["expect"] == "match"), v["id"]


def test_two_secrets_give_two_signatures() -> None:
    one = webhook.sign(["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"], "msg_1", 1700000000, b"{}")
    both = webhook.sign(
        ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"],
        "msg_1",
        1700000000,
        b"{}",
    )
    assert both.split(" ")[0] == one and len(both.split(" ")) == 2


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("7", 7.0, id="seconds"),
        pytest.param("Wed, 21 Oct 2015 07:28:00 GMT", 60.0, id="http-date"),
        pytest.param("soon", None, id="garbage"),
        pytest.param(None, None, id="absent"),
    ],
)
def test_retry_after(value: str | None, expected: float | None) -> None:
    now = 1445412420.0  # 60 s before the date above
    assert net.parse_retry_after(value, now) == expected


async def test_slack_and_teams_payloads_are_readable(harness: Build, receiver: Receiver) -> None:
    h = harness(
        [
            hook("slack", receiver.url("/slack"), webhook={"format": "slack"}),
            hook("teams", receiver.url("/teams"), webhook={"format": "teams"}),
        ]
    )
    await h.publish(match(lang="en"))
    await h.drain()
    [slack] = receiver.requests_to("/slack")
    [teams] = receiver.requests_to("/teams")
    text = json.loads(slack.body)["text"]
    assert "Armed factions take army positions" in text and "Aleppo" in text
    assert "Syria military shifts" in text and "https://feed-1.example.org/" in text
    card = json.loads(teams.body)
    assert card["@type"] == "MessageCard" and "Aleppo" in card["text"]
    assert card["potentialAction"][0]["targets"][0]["uri"].startswith("https://feed-1.example.org/")
    assert slack.headers["webhook-id"] == teams.headers["webhook-id"]
