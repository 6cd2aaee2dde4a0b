"""A fast path for plain UTF-8 RSS 2.0 (most news feeds); feedparser stays the reference for everything else.

It accepts a document only when it is sure to give the same articles as feedparser (checked on the whole
public corpus by tests/poller/test_fastparse.py) and returns None otherwise: no DOCTYPE, UTF-8, an
`<rss version="2.0">` root, only the item elements listed below, dates that RFC 822 parses. ElementTree (C
expat) is several times faster than feedparser's Python SAX handlers.
"""

from __future__ import annotations

import functools
import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Literal

from feedparser.mixin import _FeedParserMixin  # the reference's own HTML sniffing, so titles agree

from newsmon.poller.parser import Enclosure, Entry, Feed

_CONTENT = "{http://purl.org/rss/1.0/modules/content/}encoded"
_DC_CREATOR = "{http://purl.org/dc/elements/1.1/}creator"
_ATOM_LINK = "{http://www.w3.org/2005/Atom}link"
_MEDIA = "{http://search.yahoo.com/mrss/}"
_ITUNES = "{http://www.itunes.com/dtds/podcast-1.0.dtd}"
_MEDIA_CONTENT = _MEDIA + "content"
_SINGLETONS = frozenset(("title", "link", "guid", "description", "pubDate", _CONTENT))
_ITEM_TAGS = {
    "title",
    "link",
    "description",
    "guid",
    "pubDate",
    "category",
    "comments",
    "enclosure",
    "source",
    _CONTENT,
    _DC_CREATOR,
    _MEDIA + "content",
    _MEDIA + "thumbnail",
    "{http://purl.org/rss/1.0/modules/slash/}comments",
    "{http://wellformedweb.org/CommentAPI/}commentRss",
    "{http://rssnamespace.org/feedburner/ext/1.0}origLink",
    _ITUNES + "duration",
    _ITUNES + "image",
    _ITUNES + "explicit",
    _ITUNES + "keywords",
}
_CHANNEL_TAGS = {
    "title",
    "link",
    "description",
    "language",
    "ttl",
    "item",
    "lastBuildDate",
    "pubDate",
    "generator",
    "copyright",
    "managingEditor",
    "webMaster",
    "docs",
    "category",
    "image",
    _ATOM_LINK,
}
_PROLOG = re.compile(rb"^\s*<\?xml[^>]*\?>")
_ENCODING = re.compile(rb"encoding\s*=\s*[\"']([A-Za-z0-9._-]+)[\"']")
_MARKUP_IN_TEXT = re.compile(r"[<&]")
_C1 = re.compile("[\u0080-\u009f]")
_ABSOLUTE = ("http://", "https://")


def parse_fast(body: bytes, url: str = "") -> Feed | None:
    """The feed when the document is simple enough to be sure, else None (use feedparser)."""
    prolog = _PROLOG.match(body[:512])
    if b"<!DOCTYPE" in body[:2048] or b"<!ENTITY" in body:
        return None
    declared = _ENCODING.search(prolog.group(0)) if prolog else None
    if declared is not None and declared.group(1).lower() not in (b"utf-8", b"utf8"):
        return None
    try:
        text = body.decode("utf-8")
        root = ET.fromstring(body)
    except (UnicodeDecodeError, ET.ParseError, ValueError):
        return None
    if _C1.search(text) or "xml:base" in text or "xml:lang" in text:  # feedparser repairs, resolves, tags
        return None
    if root.tag != "rss" or root.get("version") != "2.0" or len(root) != 1 or root[0].tag != "channel":
        return None
    channel = root[0]
    if any(child.tag not in _CHANNEL_TAGS and not _harmless_channel_tag(child.tag) for child in channel):
        return None
    entries = []
    for item in channel.iterfind("item"):
        entry = _entry(item)
        if entry is None:
            return None
        entries.append(entry)
    title, title_is_html = _title(channel.findtext("title"))
    if title_is_html:
        return None
    hub = self_url = None
    for link in channel.iterfind(_ATOM_LINK):
        hub = link.get("href") if link.get("rel") == "hub" and hub is None else hub
        self_url = link.get("href") if link.get("rel") == "self" and self_url is None else self_url
    ttl = (channel.findtext("ttl") or "").strip()
    lang = (channel.findtext("language") or "").strip()
    return Feed(
        title=title,
        link=(channel.findtext("link") or "").strip() or None,
        lang=lang.replace("_", "-").split("-")[0].lower()[:8] or None,
        ttl=float(ttl) * 60 if ttl.isdigit() else None,
        hub=hub,
        self_url=self_url,
        version="rss20",
        entries=entries,
    )


def _harmless_channel_tag(tag: str) -> bool:
    # Namespaced channel extras feedparser keeps apart from the title, link and language we read.
    return tag.startswith("{") and not tag.startswith(
        ("{http://purl.org/dc/", "{http://www.w3.org/2005/Atom}")
    )


def _plain(text: str | None) -> str | None:
    """Text that feedparser would return unchanged; None when it might not."""
    if text is None:
        return ""
    if _MARKUP_IN_TEXT.search(text):
        return None
    return text.strip()


def _title(text: str | None) -> tuple[str, bool]:
    """The title and whether it is HTML, decided exactly as feedparser decides it."""
    value = (text or "").strip()
    return value, bool(_MARKUP_IN_TEXT.search(value)) and _FeedParserMixin.looks_like_html(value)


def _children(item: ET.Element) -> tuple[dict[str, ET.Element], list[ET.Element], list[ET.Element]] | None:
    """One pass over an item: its singletons by tag, its creators, its enclosures; None when not simple."""
    single: dict[str, ET.Element] = {}
    creators: list[ET.Element] = []
    enclosures: list[ET.Element] = []
    for child in item:
        tag = child.tag
        if tag not in _ITEM_TAGS or (len(child) and tag != _MEDIA_CONTENT):
            return None
        if tag in _SINGLETONS:
            if tag in single:
                return None  # repeated singletons: feedparser keeps the last, we would have to guess
            single[tag] = child
        elif tag == _DC_CREATOR:
            creators.append(child)
        elif tag == "enclosure":
            enclosures.append(child)
    return single, creators, enclosures


def _text_of(single: dict[str, ET.Element], tag: str) -> str | None:
    element = single.get(tag)  # (as findtext: None when absent, "" when empty)
    return None if element is None else element.text or ""


def _entry(item: ET.Element) -> Entry | None:
    parts = _children(item)
    if parts is None:
        return None
    single, creator_elements, enclosure_elements = parts
    title, title_is_html = _title(_text_of(single, "title"))
    link = _plain(_text_of(single, "link"))
    guid_el = single.get("guid")
    guid = _plain(guid_el.text if guid_el is not None else None)
    if link is None or guid is None:
        return None
    if not link and guid and (guid_el is None or guid_el.get("isPermaLink", "true") != "false"):
        if not guid.startswith(("http://", "https://")):
            return None
        link = guid
    if link and not link.startswith(_ABSOLUTE):
        return None  # relative: feedparser resolves it against bases we do not track
    published = _date(_text_of(single, "pubDate"))
    if published is False:
        return None
    summary = (_text_of(single, "description") or "").strip()
    content = (_text_of(single, _CONTENT) or "").strip()
    creators = [c.text.strip() for c in creator_elements if c.text and c.text.strip()]
    if any("@" in c or "(" in c or "<" in c or "&" in c for c in creators):
        return None  # feedparser splits "name (email)" forms
    if _C1.search(title + summary + content):
        return None  # feedparser maps C1 controls to their cp1252 characters
    if any(not e.get("url", "").startswith(_ABSOLUTE) for e in enclosure_elements):
        return None
    return Entry(
        guid=guid or None,
        link=link or None,
        title=title,
        title_is_html=title_is_html,
        summary=summary,
        content=content,
        authors=tuple(dict.fromkeys(creators)),
        published=published,
        enclosures=tuple(_enclosures(enclosure_elements)),
    )


def _date(text: str | None) -> datetime | Literal[False] | None:
    if not text or not text.strip():
        return None
    return _rfc822(text.strip())


@functools.lru_cache(maxsize=4096)  # a feed's dates come back poll after poll; email.utils is slow
def _rfc822(text: str) -> datetime | Literal[False]:
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return False
    if when.tzinfo is None or when.year < 1900:
        return False
    return when.astimezone(UTC)


def _enclosures(elements: list[ET.Element]) -> list[Enclosure]:
    out = []
    for enc in elements:
        if enc.get("url", "").startswith(_ABSOLUTE):
            length = (enc.get("length") or "").strip()
            out.append(
                Enclosure(
                    url=enc.get("url", ""),
                    type=enc.get("type") or None,
                    length=int(length) if length.isdigit() else None,
                )
            )
    return out
