"""The RSS fast path gives the same articles as feedparser wherever it accepts a document, else declines."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from newsmon.errors import ParseError
from newsmon.poller import parser, processor
from newsmon.poller.fastparse import parse_fast
from tests.poller.conftest import rss

NOW = datetime(2026, 11, 29, tzinfo=UTC)


def _articles(feed: parser.Feed) -> list[dict[str, Any]]:
    drafts = processor.process(feed, feed_id="c", feed_url="http://c.example/", fetched_at=NOW)
    return [
        i.article.model_dump(exclude={"fetched_at"}) for i in processor.resolve(drafts, processor.Known())
    ]


def _same(body: bytes) -> bool:
    fast = parse_fast(body)
    assert fast is not None
    reference = parser.parse(body, fast=False)
    return _articles(fast) == _articles(reference) and (fast.title, fast.lang) == (
        reference.title,
        reference.lang,
    )


def test_plain_rss_takes_the_fast_path_with_the_same_articles() -> None:
    items = [
        (
            "g1",
            "http://news.example/1",
            "AT&amp;T and the &lt;b&gt;bold&lt;/b&gt; move",
            "<![CDATA[<p>x</p>]]>",
        ),
        ("", "http://news.example/2", "No guid here"),
    ]
    assert _same(rss(items))


@pytest.mark.parametrize(
    "body",
    [
        rss([("g1", "http://x.example/1", "A")]).replace(b'encoding="utf-8"', b'encoding="iso-8859-1"'),
        rss([("g1", "/relative", "A")]),
        b'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY e "x">]><rss version="2.0"><channel><title>&e;</title>'
        b"</channel></rss>",
        b'<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><title>t</title></feed>',
        b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title><item><title>a</title>'
        b"<author>me@example.org (Me)</author></item></channel></rss>",
    ],
    ids=["latin1", "relative-link", "doctype", "atom", "rss-author"],
)
def test_anything_unusual_is_left_to_feedparser(body: bytes) -> None:
    assert parse_fast(body) is None


def test_fast_path_matches_feedparser_on_the_corpus(shared_dir: Path) -> None:
    root = shared_dir / "corpus" / "feeds"
    if not root.is_dir():
        pytest.skip("corpus feeds are not present")
    accepted, differ = 0, []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        body = path.read_bytes()
        fast = parse_fast(body)
        if fast is None:
            continue
        accepted += 1
        try:
            same = _same(body)
        except ParseError:
            same = False
        if not same:
            differ.append(str(path.relative_to(root)))
    print(f"fast path: {accepted} corpus documents accepted, {len(differ)} differ from feedparser")
    assert accepted > 200 and differ == []
