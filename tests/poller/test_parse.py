"""Parser and processor: documents to articles (pure), table-driven, plus hypothesis on hostile bytes."""

from __future__ import annotations

import gzip
import html
import json
import re
from datetime import UTC, datetime
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from newsmon.errors import ParseError
from newsmon.poller import parser, processor
from tests.poller.conftest import rss

NOW = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)

ARABIC = """<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>أخبار الشمال</title><link>https://ar.example/</link>
<item><guid>https://ar.example/news/17?utm_campaign=x</guid><link>https://ar.example/news/17</link>
<title>تعزيزات عسكرية جديدة تصل إلى ريف حلب الشمالي</title>
<description>&lt;p&gt;أفادت مصادر محلية بوصول &lt;b&gt;رتل&lt;/b&gt;
من الآليات إلى المنطقة صباح اليوم.&lt;/p&gt;</description>
<author>مراسل الشمال</author><enclosure url="https://ar.example/img/17.jpg" type="image/jpeg" length="2048"/>
<pubDate>Sun, 29 Nov 2026 05:30:00 +0300</pubDate></item></channel></rss>""".encode()


def articles(body: bytes, fid: str = "f") -> list[processor.Item]:
    feed = parser.parse(body, url="https://example.org/feed")
    drafts = processor.process(feed, feed_id=fid, feed_url="https://example.org/feed", fetched_at=NOW)
    return processor.resolve(drafts, processor.Known())


def test_arabic_item_becomes_a_clean_article() -> None:
    [item] = articles(ARABIC)
    a = item.article
    assert a.title == "تعزيزات عسكرية جديدة تصل إلى ريف حلب الشمالي"
    assert a.text == "أفادت مصادر محلية بوصول رتل من الآليات إلى المنطقة صباح اليوم."
    assert a.lang == "ar" and a.source == "أخبار الشمال"
    assert a.published == datetime(2026, 11, 29, 2, 30, tzinfo=UTC)
    assert a.enclosures[0].url == "https://ar.example/img/17.jpg" and a.enclosures[0].length == 2048
    assert item.action == "new" and a.revision == 1


@pytest.mark.parametrize(
    ("markup", "text"),
    [
        ("<p>One &amp; two</p><p>three</p>", "One & two\nthree"),
        ("<script>alert(1)</script>Safe  <b>bold</b>\t text", "Safe bold text"),
        ("a<!-- hidden -->b", "a b"),
        ("caf&eacute; &#1581;&#1604;&#1576;", "café حلب"),
        ("line\u00a0with\u200bspaces\x07", "line with spaces"),
    ],
    ids=["entities-paragraphs", "script", "comment", "numeric-entities", "odd-spaces"],
)
def test_clean_text(markup: str, text: str) -> None:
    assert processor.clean_text(markup) == text


@pytest.mark.parametrize(
    ("url", "canonical"),
    [
        ("HTTPS://News.Example:443/a?utm_source=x&id=3#top", "https://news.example/a?id=3"),
        ("http://news.example/a?fbclid=1&gclid=2", "http://news.example/a"),
        ("http://news.example:8080", "http://news.example:8080/"),
    ],
    ids=["tracking-and-port", "only-tracking", "port-kept"],
)
def test_canonical_url(url: str, canonical: str) -> None:
    assert processor.canonical_url(url) == canonical


def test_ids_prefer_guid_then_link_then_content() -> None:
    by_guid = articles(rss([("g1", "http://x.example/1", "A")]))[0].article.id
    same_guid_new_link = articles(rss([("g1", "http://x.example/other", "A")]))[0].article.id
    by_link = articles(rss([("", "http://x.example/1?utm_medium=rss", "A")]))[0].article.id
    same_link = articles(rss([("", "http://x.example/1", "B")]))[0].article.id
    assert by_guid == same_guid_new_link and by_link == same_link and by_guid != by_link


def test_duplicate_guids_are_not_trusted() -> None:
    items = articles(rss([("same", "http://x.example/1", "A"), ("same", "http://x.example/2", "B")]))
    assert len({i.article.id for i in items}) == 2


def test_shared_link_is_no_churn_key() -> None:
    items = articles(rss([("g1", "http://news.example/", "A"), ("g2", "http://news.example/", "B")]))
    assert [i.link_key for i in items] == [None, None]


def test_ids_are_scoped_to_the_feed() -> None:
    doc = rss([("g1", "http://x.example/1", "A")])
    assert articles(doc, "one")[0].article.id != articles(doc, "two")[0].article.id


def test_resolve_marks_edits_and_churn() -> None:
    [first] = articles(rss([("g1", "http://x.example/1", "A")]))
    known = processor.Known(
        items={first.article.id: processor.Seen(first.article.content_hash, 1)},
        by_link={first.link_key or "": first.article.id},
    )
    feed = parser.parse(rss([("g9", "http://x.example/1", "A, updated")]))
    [edit] = processor.resolve(processor.process(feed, feed_id="f", feed_url="u", fetched_at=NOW), known)
    assert (edit.action, edit.article.id, edit.article.revision) == ("edit", first.article.id, 2)


def test_gzip_body_without_encoding_is_read() -> None:
    assert len(articles(gzip.compress(rss([("g1", "http://x.example/1", "A")])))) == 1


def test_json_feed() -> None:
    doc = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": "J",
        "language": "en",
        "items": [
            {
                "id": "1",
                "url": "https://j.example/1",
                "title": "Hello",
                "content_html": "<p>Hi</p>",
                "date_published": "2026-11-29T01:00:00Z",
                "authors": [{"name": "Ann"}],
            }
        ],
    }
    [item] = articles(json.dumps(doc).encode())
    assert (item.article.title, item.article.text, item.article.authors) == ("Hello", "Hi", ["Ann"])
    assert item.article.published == datetime(2026, 11, 29, 1, tzinfo=UTC)


def test_utf8_body_under_a_lying_prolog_is_read_as_utf8() -> None:
    body = (
        '<?xml version="1.0" encoding="windows-1252"?><rss version="2.0"><channel><title>Euro €</title>'
        "<item><title>Prix 5 €</title><link>http://x.example/1</link></item></channel></rss>"
    )
    feed = parser.parse(body.encode("utf-8"))
    assert feed.title == "Euro €" and feed.entries[0].title == "Prix 5 €"


def test_bytes_that_look_like_a_path_are_not_opened() -> None:
    with pytest.raises(ParseError):
        parser.parse(b"/etc/passwd")


@pytest.mark.parametrize(
    "body",
    [b"", b"<html><body>hello</body></html>", b'{"a": 1}', b"\x00\xff" * 10],
    ids=["empty", "html", "json-not-feed", "binary"],
)
def test_not_a_feed_is_a_parse_error(body: bytes) -> None:
    with pytest.raises(ParseError):
        parser.parse(body)


@settings(max_examples=60, deadline=None)
@given(
    st.binary(max_size=400) | st.text(max_size=300).map(lambda t: f"<rss><channel><item><title>{t}".encode())
)
def test_hostile_bytes_never_raise_anything_but_parse_error(body: bytes) -> None:
    try:
        articles(body)
    except ParseError:
        pass


_REF_SPACE = re.compile(r"[ \t\r\f\v\u00a0\u200b]+")
_REF_LINES = re.compile(r"\s*\n\s*")


def _reference_clean(markup: str, is_html: bool) -> str:
    """clean_text as first written (one regex per step), kept to check the faster one against."""
    text = markup
    if is_html and "<" not in text:
        text = html.unescape(text.replace("\r", " ").replace("\n", " "))
    elif is_html:
        text = processor._DROP.sub(" ", text).replace("\r", " ").replace("\n", " ")
        text = processor._TAG.sub(" ", processor._BREAK.sub("\n", text))
        text = html.unescape(text)
    text = processor._CONTROL.sub("", text)
    return _REF_LINES.sub("\n", _REF_SPACE.sub(" ", text)).strip()[: processor.MAX_TEXT]


_PIECES = [*"ab <>/p&;#\n\r\t\x0b\x0c\x07\u00a0\u200b\u2028\u3000\x85é", "<br>", "</p>", "&amp;", "<!--", "-->"]
_TEXTISH = st.lists(st.sampled_from(_PIECES), max_size=40).map("".join)


@given(_TEXTISH, st.booleans())
@settings(max_examples=400, deadline=None)
def test_clean_text_matches_the_reference(markup: str, is_html: bool) -> None:
    assert processor.clean_text(markup, is_html) == _reference_clean(markup, is_html)


def _reference_canonical(url: str) -> str:
    """canonical_url as first written (always through urlsplit), kept to check the fast path against."""
    try:
        parts = urlsplit(url.strip())
        host = (parts.hostname or "").lower()
        port = parts.port
    except ValueError:
        return url.strip()
    if port and not ((parts.scheme == "http" and port == 80) or (parts.scheme == "https" and port == 443)):
        host = f"{host}:{port}"
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    query = urlencode([(k, v) for k, v in pairs if not processor._TRACKING.match(k)]) if parts.query else ""
    return urlunsplit((parts.scheme.lower(), host, parts.path or "/", query, ""))


_URL_PIECES = ["http", "https", "HTTP", "://", "a", "B", "-", ".", "0", ":", "80", "@", "/", "?", "#", "=", "&",
               "utm_source", " ", "\t", "\n", "é", "[", "]", "%2F", "\u00a0", "x"]
_URLISH = st.lists(st.sampled_from(_URL_PIECES), max_size=14).map("".join)


@given(st.one_of(_URLISH, st.builds("{}://{}{}".format, st.sampled_from(["http", "https"]), _URLISH, _URLISH)))
@settings(max_examples=600, deadline=None)
def test_canonical_url_matches_the_reference(url: str) -> None:
    assert processor.canonical_url(url) == _reference_canonical(url)


@pytest.mark.parametrize(
    "url",
    ["http://news.example", "https://news.example/a/1", " http://a.example/x/ ", "http://a.example:80/",
     "http://A.example/", "http://a.example/?utm_source=x&id=2", "http://a.example/#top", "http://a.example/p q"],
)
def test_canonical_url_examples_match_the_reference(url: str) -> None:
    assert processor.canonical_url(url) == _reference_canonical(url)
