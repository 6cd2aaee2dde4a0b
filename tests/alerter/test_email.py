"""Email through a real SMTP server on loopback (aiosmtpd): immediate and digest, Arabic kept intact."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from email.message import EmailMessage

from newsmon.store import deliveries as deliveries_db
from tests.alerter.conftest import AR_TEXT, AR_TITLE, EN_TITLE, HAMA, TOPIC, Harness, Mailbox, match

Build = Callable[..., Harness]


def _parts(msg: EmailMessage) -> tuple[str, str]:
    text = msg.get_body(("plain",))
    page = msg.get_body(("html",))
    assert text is not None and page is not None
    return text.get_content(), page.get_content()


async def test_immediate_email_keeps_arabic_subject_and_body(
    harness: Build, smtp_server: tuple[Mailbox, int]
) -> None:
    box, port = smtp_server
    h = harness(
        [{"id": "desk", "topics": [TOPIC], "email": {"to": ["desk@example.org"]}}],
        smtp={"host": "127.0.0.1", "port": port, "sender": "newsmon@example.org"},
    )
    await h.publish(match(lang="ar"))
    await h.drain()
    [msg] = box.messages
    assert msg["Subject"] == AR_TITLE
    assert box.rcpts == [["desk@example.org"]]
    text, page = _parts(msg)
    assert AR_TITLE in text and AR_TEXT[:40] in text
    assert 'dir="rtl"' in page and 'lang="ar"' in page and AR_TITLE in page
    [row] = await deliveries_db.list_deliveries(h.store)
    assert (row.channel, row.status) == ("email", "delivered")


async def test_digest_sends_one_email_for_several_alerts(
    harness: Build, smtp_server: tuple[Mailbox, int]
) -> None:
    box, port = smtp_server
    h = harness(
        [
            {
                "id": "digest",
                "topics": [TOPIC],
                "mode": "digest",
                "digest_every": 0.5,
                "email": {"to": ["a@example.org", "b@example.org"]},
            }
        ],
        smtp={"host": "127.0.0.1", "port": port},
    )
    # Start just after a digest boundary, so the three alerts (routed over ~0.1-0.3 s) fall in one window.
    await asyncio.sleep(0.5 - time.time() % 0.5 + 0.01)
    await h.publish(
        match(story="s1", lang="ar"),
        match(story="s2", feed="f2", lang="en", places=(HAMA,)),
        match(story="s3", feed="f3", lang="ar", title="تعزيزات عسكرية تصل إلى حماة"),
    )
    await h.drain()
    assert len(box.messages) == 1
    msg = box.messages[0]
    assert msg["Subject"].startswith("newsmon digest: 3 alert(s)")
    text, page = _parts(msg)
    for title in (AR_TITLE, EN_TITLE, "تعزيزات عسكرية تصل إلى حماة"):
        assert title in text and title in page
    assert page.count('dir="rtl"') >= 2 and 'dir="ltr"' in page
    assert sorted(box.rcpts[0]) == ["a@example.org", "b@example.org"]
    rows = await deliveries_db.list_deliveries(h.store)
    assert len(rows) == 3 and {r.status for r in rows} == {"delivered"}


async def test_smtp_down_is_retried_then_dead_lettered(harness: Build) -> None:
    h = harness(
        [{"id": "desk", "topics": [TOPIC], "email": {"to": ["desk@example.org"]}}],
        smtp={"host": "127.0.0.1", "port": 9},
        delivery={"retry_delays": [0.05]},
    )
    await h.publish(match())
    await h.drain()
    [row] = await deliveries_db.list_deliveries(h.store)
    assert (row.status, row.attempts) == ("dead", 2)
    assert "SMTP" in (row.last_error or "")
