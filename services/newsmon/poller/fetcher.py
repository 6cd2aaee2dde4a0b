"""HTTP only: one conditional GET of a feed, redirects followed hop by hop, outcomes decided in `classify`.

Outcomes: a body (200), not modified (304), a redirect to follow, or an error from `newsmon.errors` (rate
limited and unavailable carry `retry_after`). Each redirect hop goes through the guarded client again, so a
redirect to a private address is refused like a direct request.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Literal
from urllib.parse import urljoin, urlsplit

import httpx

from newsmon import net
from newsmon.errors import FetchError, FetchTimeout, HTTPStatusError, TooManyRedirects
from newsmon.settings import HttpSettings

_REDIRECTS = (301, 302, 303, 307, 308)
_PERMANENT = (301, 308)


@dataclass(frozen=True, slots=True)
class Fetched:
    """What one fetch produced."""

    outcome: Literal["ok", "not_modified"]
    url: str
    status: int
    body: bytes = b""
    etag: str | None = None
    last_modified: str | None = None
    content_type: str = ""
    moved_to: str | None = None  # new permanent URL when every hop was permanent (301/308)
    fresh_for: float | None = None  # seconds the server says the document stays fresh
    hub: str | None = None  # WebSub hub from a Link header


async def fetch(
    client: httpx.AsyncClient,
    url: str,
    http: HttpSettings,
    *,
    etag: str | None = None,
    last_modified: str | None = None,
) -> Fetched:
    """GET `url` conditionally within the total timeout; raises FetchError subclasses."""
    headers = {
        "Accept": "application/rss+xml, application/atom+xml, application/xml;q=0.9, "
        "application/feed+json;q=0.9, text/xml;q=0.8, */*;q=0.5"
    }
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    try:
        async with asyncio.timeout(http.total_timeout):
            return await _follow(client, url, headers, http)
    except TimeoutError:
        raise FetchTimeout(f"no complete answer within {http.total_timeout:g}s ({url})") from None


async def _follow(
    client: httpx.AsyncClient, url: str, headers: dict[str, str], http: HttpSettings
) -> Fetched:
    visited = [url]
    permanent = True
    for _ in range(http.max_redirects + 1):
        try:
            async with net.stream_get(client, url, headers) as response:
                kind = classify(response)
                if kind == "redirect":
                    target = _location(response, url)
                    permanent = permanent and response.status_code in _PERMANENT
                    await net.discard_body(response)
                else:
                    body = await net.read_body(response, http) if kind == "ok" else b""
                    if kind == "not_modified":
                        await net.discard_body(response)  # (empty) read to the end: the connection is reused
                    moved = url if permanent and len(visited) > 1 else None
                    return _fetched(response, kind, url, body, moved)
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise net.translate(exc, url) from exc
        if target in visited:
            raise TooManyRedirects(f"redirect loop: {' -> '.join([*visited, target])}")
        visited.append(target)
        url = target
    raise TooManyRedirects(f"more than {http.max_redirects} redirects from {visited[0]}")


def classify(response: httpx.Response) -> Literal["ok", "not_modified", "redirect"]:
    """The one place that decides what a response means; errors raise with their retry hints."""
    status = response.status_code
    if status == 304:
        return "not_modified"
    if status in _REDIRECTS and response.headers.get("location"):
        return "redirect"
    if 200 <= status < 300:
        return "ok"
    retry_after = net.parse_retry_after(response.headers.get("retry-after"))
    reason = {429: "rate limited", 503: "unavailable", 410: "gone", 404: "not found", 403: "forbidden"}
    raise HTTPStatusError(
        status,
        f"HTTP {status} {reason.get(status, response.reason_phrase)}".rstrip(),
        retry_after=retry_after,
    )


def _location(response: httpx.Response, url: str) -> str:
    target = urljoin(url, response.headers["location"].strip())
    if urlsplit(target).scheme not in ("http", "https"):
        err = FetchError(f"redirect to a non-HTTP URL refused: {target}")
        err.retriable = False
        raise err
    return target


def _fetched(
    response: httpx.Response, kind: Literal["ok", "not_modified"], url: str, body: bytes, moved: str | None
) -> Fetched:
    h = response.headers
    return Fetched(
        outcome=kind,
        url=url,
        status=response.status_code,
        body=body,
        etag=h.get("etag"),
        last_modified=h.get("last-modified"),
        content_type=h.get("content-type", ""),
        moved_to=moved,
        fresh_for=freshness(h),
        hub=_hub(h),
    )


def freshness(headers: httpx.Headers) -> float | None:
    """How long the server says the document stays fresh (Cache-Control max-age, else Expires - Date)."""
    for part in headers.get("cache-control", "").split(","):
        name, _, value = part.strip().partition("=")
        if name.lower() in ("max-age", "s-maxage") and value.strip('"').isdigit():
            return float(value.strip('"'))
    expires = headers.get("expires")
    if not expires:
        return None
    try:
        until = parsedate_to_datetime(expires).timestamp()
        date = headers.get("date")
        base = parsedate_to_datetime(date).timestamp() if date else time.time()
    except (TypeError, ValueError):
        return None
    return max(0.0, until - base)


def _hub(headers: httpx.Headers) -> str | None:
    for link in headers.get_list("link", split_commas=True):
        url, _, params = link.partition(";")
        if 'rel="hub"' in params.replace("'", '"').replace(" ", "") or "rel=hub" in params.replace(" ", ""):
            return url.strip().strip("<>")
    return None
