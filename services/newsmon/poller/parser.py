"""Bytes → entries (pure). feedparser reads RSS/Atom/RDF as far as it can; JSON Feed is read here.

The wire structs (`Entry`, `Feed`) stay close to the document; turning them into articles is the processor's
job. A broken document gives what could be read plus `problem`; nothing here raises on bad input except
ParseError when no feed at all could be recognised.
"""

from __future__ import annotations

import calendar
import io
import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import feedparser

from newsmon import net_codec
from newsmon.errors import ParseError

_MAX_DECODED = 50 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Enclosure:
    """A media attachment as the document gives it."""

    url: str
    type: str | None = None
    length: int | None = None


@dataclass(frozen=True, slots=True)
class Entry:
    """One item of a feed, as read from the document."""

    guid: str | None = None
    link: str | None = None
    title: str = ""
    title_is_html: bool = False
    summary: str = ""
    content: str = ""
    is_html: bool = True
    authors: tuple[str, ...] = ()
    published: datetime | None = None
    updated: datetime | None = None
    enclosures: tuple[Enclosure, ...] = ()
    lang: str | None = None


@dataclass(frozen=True, slots=True)
class Feed:
    """A parsed feed document."""

    title: str = ""
    link: str | None = None
    lang: str | None = None
    ttl: float | None = None  # seconds (RSS <ttl> is minutes)
    hub: str | None = None
    self_url: str | None = None
    version: str = ""
    problem: str | None = None  # why the document is not well formed, when it is not
    entries: list[Entry] = field(default_factory=list)


def parse(body: bytes, *, url: str = "", content_type: str = "", fast: bool = True) -> Feed:
    """Parse a feed document; raises ParseError only when nothing feed-like was found.

    Plain UTF-8 RSS 2.0 takes the fast path (`fastparse`, same articles); everything else goes to feedparser.
    """
    body = net_codec.sniff_gzip(body, _MAX_DECODED)
    stripped = body.lstrip(b"\xef\xbb\xbf \t\r\n")
    if stripped.startswith(b"{"):
        return _parse_json(stripped, url)
    from newsmon.poller.fastparse import parse_fast  # (imports this module's structs)

    quick = parse_fast(body, url) if fast else None
    if quick is not None:
        return quick
    headers = {"content-location": url} if url else {}
    headers["content-type"] = _content_type(body, content_type)
    # A stream, never bytes: feedparser opens bytes that look like a path as a local file.
    try:
        d = feedparser.parse(
            io.BytesIO(body), response_headers=headers, resolve_relative_uris=False, sanitize_html=False
        )
    except (
        Exception
    ) as exc:  # feedparser catches most problems itself; anything else is a document it cannot read
        raise ParseError(f"unreadable document: {exc.__class__.__name__}: {exc}") from None
    problem = f"{d.bozo_exception.__class__.__name__}: {d.bozo_exception}" if d.get("bozo") else None
    if not d.entries and not d.get("version"):
        raise ParseError(f"not a feed{f' ({problem})' if problem else ''}")
    f = d.feed
    return Feed(
        title=_text(f.get("title")),
        link=f.get("link"),
        lang=_lang(f.get("language")),
        ttl=_ttl(f.get("ttl")),
        hub=_rel(f, "hub"),
        self_url=_rel(f, "self"),
        version=d.get("version", ""),
        problem=problem,
        entries=[_entry(e) for e in d.entries],
    )


def _content_type(body: bytes, given: str) -> str:
    # Servers and prologs lie about the charset; valid UTF-8 with non-ASCII bytes is nearly always UTF-8.
    if b"\x00" not in body[:64] and not body.isascii() and not body.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            body.decode("utf-8")
        except UnicodeDecodeError:
            pass
        else:
            return "application/xml; charset=utf-8"
    return given or "application/xml"


def _entry(e: Any) -> Entry:
    content = "".join(str(c.get("value", "")) for c in e.get("content", []) if isinstance(c, dict))
    detail = e.get("summary_detail") or e.get("title_detail") or {}
    title_detail = e.get("title_detail") or {}
    return Entry(
        guid=_text(e.get("id")) or None,
        link=_text(e.get("link")) or None,
        title=_text(e.get("title")),
        title_is_html="html" in str(title_detail.get("type", "")),
        summary=_text(e.get("summary")),
        content=content,
        is_html="plain" not in str(detail.get("type", "text/html")),
        authors=_authors(e),
        published=_when(dict.get(e, "published_parsed")),
        updated=_when(dict.get(e, "updated_parsed")),
        enclosures=tuple(_enclosures(e)),
        lang=_lang(title_detail.get("language")),
    )


def _authors(e: Any) -> tuple[str, ...]:
    names = [_text(a.get("name")) for a in e.get("authors", []) if isinstance(a, dict)]
    names = [n for n in names if n] or ([_text(e.get("author"))] if e.get("author") else [])
    return tuple(dict.fromkeys(names))


def _enclosures(e: Any) -> list[Enclosure]:
    out = []
    for link in e.get("links", []):
        if isinstance(link, dict) and link.get("rel") == "enclosure" and link.get("href"):
            length = str(link.get("length", "")).strip()
            out.append(
                Enclosure(
                    url=str(link["href"]),
                    type=link.get("type") or None,
                    length=int(length) if length.isdigit() else None,
                )
            )
    return out


def _rel(f: Any, rel: str) -> str | None:
    for link in f.get("links", []):
        if isinstance(link, dict) and link.get("rel") == rel and link.get("href"):
            return str(link["href"])
    return None


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def _lang(value: Any) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return None
    return value.strip().replace("_", "-").split("-")[0].lower()[:8] or None


def _ttl(value: Any) -> float | None:
    text = _text(value)
    return float(text) * 60 if text.isdigit() else None


def _when(parsed: Any) -> datetime | None:
    if not isinstance(parsed, time.struct_time):
        return None
    try:
        return datetime.fromtimestamp(calendar.timegm(parsed), UTC)
    except (OverflowError, ValueError, OSError):
        return None


def _parse_json(body: bytes, url: str) -> Feed:
    try:
        doc = json.loads(body)
    except ValueError as exc:
        raise ParseError(f"invalid JSON: {exc}") from None
    if not isinstance(doc, dict) or "jsonfeed" not in str(doc.get("version", "")):
        raise ParseError("JSON document is not a JSON Feed")
    items: list[Any] = doc["items"] if isinstance(doc.get("items"), list) else []
    return Feed(
        title=_text(doc.get("title")),
        link=_text(doc.get("home_page_url")) or None,
        lang=_lang(doc.get("language")),
        self_url=_text(doc.get("feed_url")) or url or None,
        hub=_json_hub(doc),
        version="json" + str(doc.get("version", "")).rsplit("/", 1)[-1],
        entries=[_json_item(i) for i in items if isinstance(i, dict)],
    )


def _json_item(i: dict[str, Any]) -> Entry:
    html = _text(i.get("content_html"))
    authors: list[Any] = i["authors"] if isinstance(i.get("authors"), list) else [i.get("author")]
    names = tuple(_text(a.get("name")) for a in authors if isinstance(a, dict) and _text(a.get("name")))
    enclosures = tuple(
        Enclosure(
            url=str(a["url"]),
            type=a.get("mime_type"),
            length=a.get("size_in_bytes") if isinstance(a.get("size_in_bytes"), int) else None,
        )
        for a in i.get("attachments") or []
        if isinstance(a, dict) and a.get("url")
    )
    ident = i.get("id")
    return Entry(
        guid=str(ident).strip() if ident not in (None, "") else None,
        link=_text(i.get("url")) or _text(i.get("external_url")) or None,
        title=_text(i.get("title")),
        summary=_text(i.get("summary")),
        content=html or _text(i.get("content_text")),
        is_html=bool(html),
        authors=names,
        published=_iso(i.get("date_published")),
        updated=_iso(i.get("date_modified")),
        enclosures=enclosures,
        lang=_lang(i.get("language")),
    )


def _json_hub(doc: dict[str, Any]) -> str | None:
    hubs = doc.get("hubs")
    if isinstance(hubs, list):
        for hub in hubs:
            if isinstance(hub, dict) and hub.get("url"):
                return str(hub["url"])
    return None


def _iso(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        when = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return when.astimezone(UTC) if when.tzinfo else when.replace(tzinfo=UTC)
