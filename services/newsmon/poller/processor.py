"""Entries → `events.Article` (pure): stable ids, clean text, GUID-churn protection, edits as revisions.

Id key, best first: a trustworthy GUID (present, short, unique in the document), else the canonical link
(tracking parameters stripped), else a hash of title and text. Ids are scoped to the feed. When a publisher
re-issues an item under a new GUID, its canonical link maps it back to the id it already has
(`Known.by_link`).
"""

from __future__ import annotations

import hashlib
import html
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from newsmon.events import Article, Enclosure
from newsmon.poller.parser import Entry, Feed

_TRACKING = re.compile(
    r"^(utm_\w*|fbclid|gclid|dclid|msclkid|mc_cid|mc_eid|igshid|yclid|_hsenc|_hsmi|"
    r"ref_src|ocid|cmpid|__twitter_impression|at_medium|at_campaign|wt_mc|smid)$",
    re.I,
)
_DROP = re.compile(r"<(script|style|noscript|template|iframe)\b.*?</\1\s*>|<!--.*?-->", re.S | re.I)
_BREAK = re.compile(r"<\s*/?\s*(br|p|div|li|h[1-6]|tr|blockquote|section|article)\b[^>]*>", re.I)
_TAG = re.compile(r"<[^>]*>")
# Runs of spaces that are not already one plain space (replacing every single space cost more than the rest).
_SPACE = re.compile(r"[ \t\r\f\v\u00a0\u200b]{2,}|[\t\r\f\v\u00a0\u200b]")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# Lower-case http(s) scheme and host, no port, user, query or fragment, nothing urlsplit would strip or change.
_SIMPLE_URL = re.compile(r"https?://[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?(/[^?#\s\x00-\x1f\x7f]*)?\Z")
_ARABIC = re.compile(r"[\u0600-\u06ff]")
_LATIN = re.compile(r"[A-Za-z]")
MAX_TEXT = 100_000


@dataclass(frozen=True, slots=True)
class Seen:
    """What the store remembers of one article of this feed."""

    content_hash: str
    revision: int


@dataclass(slots=True)
class Known:
    """The feed's memory relevant to one document: seen ids and canonical-link → id."""

    items: dict[str, Seen] = field(default_factory=dict)
    by_link: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Item:
    """One article of the document, with what to do about it."""

    article: Article
    link_key: str | None
    action: Literal["new", "edit", "same"]


def canonical_url(url: str) -> str:
    """Lower-case scheme and host, no fragment, no default port, tracking parameters removed."""
    url = url.strip()
    simple = _SIMPLE_URL.match(url)
    if simple:  # already canonical but for an empty path: what the general way below gives, several times faster
        return url if simple.group(1) else url + "/"
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        port = parts.port
    except ValueError:
        return url.strip()
    if port and not ((parts.scheme == "http" and port == 80) or (parts.scheme == "https" and port == 443)):
        host = f"{host}:{port}"
    query = (
        urlencode(
            [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not _TRACKING.match(k)]
        )
        if parts.query
        else ""
    )
    return urlunsplit((parts.scheme.lower(), host, parts.path or "/", query, ""))


def clean_text(markup: str, is_html: bool = True) -> str:
    """Readable text: tags dropped, entities decoded, whitespace normalized (paragraph breaks kept)."""
    text = markup
    if is_html and "<" not in text:  # no markup: the same result without the tag passes
        text = html.unescape(text.replace("\r", " ").replace("\n", " "))
    elif is_html:
        # Raw newlines in HTML are just spaces; block tags are the real line breaks.
        text = _DROP.sub(" ", text).replace("\r", " ").replace("\n", " ")
        text = _TAG.sub(" ", _BREAK.sub("\n", text))
        text = html.unescape(text)
    text = _SPACE.sub(" ", _CONTROL.sub("", text))
    if "\n" in text:  # each line trimmed, blank lines dropped: every whitespace run with a newline becomes one
        text = "\n".join(line for line in (part.strip() for part in text.split("\n")) if line)
    return text.strip()[:MAX_TEXT]


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode("utf-8", "surrogatepass")).hexdigest()[:32]


def guess_lang(text: str) -> str | None:
    """Arabic script is unambiguous enough to name cheaply; other languages are left to the classifier."""
    sample = text[:2000]
    arabic = len(_ARABIC.findall(sample))
    return "ar" if arabic >= 20 and arabic > len(_LATIN.findall(sample)) else None


@dataclass(frozen=True, slots=True)
class Draft:
    """An article as read, before the feed's memory decides its final id and revision."""

    article: Article
    link_key: str | None


def process(
    feed: Feed,
    *,
    feed_id: str,
    feed_url: str,
    source: str = "",
    lang: str | None = None,
    fetched_at: datetime,
) -> list[Draft]:
    """Articles of one document in document order, with ids from the document alone."""
    guids = Counter(e.guid for e in feed.entries if e.guid)
    canonical = [canonical_url(e.link) if e.link else None for e in feed.entries]
    links = Counter(link for link in canonical if link)
    home = canonical_url(feed.link) if feed.link else None
    drafts: list[Draft] = []
    for entry, link in zip(feed.entries, canonical, strict=True):
        title = clean_text(entry.title, entry.title_is_html)
        body = entry.content if len(entry.content) >= len(entry.summary) else entry.summary
        text = clean_text(body, entry.is_html)
        # A link shared by several entries (or the site's home page) identifies nothing.
        link_key = _digest(link) if link and links[link] == 1 and link != home else None
        article = Article(
            revision=1,
            id=_id(feed_id, entry, guids, link, title, text),
            feed_id=feed_id,
            feed_url=feed_url,
            source=source or feed.title,
            url=entry.link,
            title=title,
            text=text,
            lang=entry.lang or lang or feed.lang or guess_lang(title + text),
            authors=list(entry.authors),
            published=entry.published,
            updated=entry.updated,
            fetched_at=fetched_at,
            enclosures=[Enclosure(url=e.url, type=e.type, length=e.length) for e in entry.enclosures],
            content_hash=_digest(title, text),
        )
        drafts.append(Draft(article, link_key))
    return drafts


def resolve(drafts: list[Draft], known: Known) -> list[Item]:
    """Final ids (GUID churn mapped back by canonical link); new / edit / same against the feed's memory."""
    items: list[Item] = []
    taken: set[str] = set()
    for draft in drafts:
        article = draft.article
        article_id = article.id
        if article_id not in known.items and draft.link_key in known.by_link:
            article_id = known.by_link[draft.link_key or ""]
        if article_id in taken:
            continue
        taken.add(article_id)
        seen = known.items.get(article_id)
        action: Literal["new", "edit", "same"] = (
            "new" if seen is None else "same" if seen.content_hash == article.content_hash else "edit"
        )
        revision = 1 if seen is None else seen.revision + (action == "edit")
        if article_id != article.id or revision != article.revision:
            article = article.model_copy(update={"id": article_id, "revision": revision})
        items.append(Item(article=article, link_key=draft.link_key, action=action))
    return items


def _id(feed_id: str, entry: Entry, guids: Counter[str], link: str | None, title: str, text: str) -> str:
    guid = entry.guid
    if guid and guids[guid] == 1 and len(guid) <= 2048:
        key = "g:" + (canonical_url(guid) if guid.startswith(("http://", "https://")) else guid)
    elif link:
        key = "l:" + link
    else:
        key = "h:" + _digest(title, text)
    return "a_" + _digest(feed_id, key)


def is_gap(items: list[Item], had_items: bool, previous_max: int) -> bool:
    """A full document sharing nothing with what we saw before: items may have rotated out unseen."""
    if not had_items or not items or len(items) < max(previous_max, 2):
        return False
    return all(item.action == "new" for item in items)
