"""Webhook channel: Standard Webhooks signing, the JSON envelope, Slack/Teams chat payloads, one POST.

`webhook-id` is the notification id (the same on every retry), `webhook-timestamp` the attempt's unix
time, and `webhook-signature` one `v1,<base64 HMAC-SHA256("id.timestamp.body")>` per valid secret,
space-separated, so a receiver that rotates secrets accepts either. The POST goes through `poster` (a lean
HTTP/1.1 client with net's address guard); every outcome becomes a DeliveryError here.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

from newsmon import net
from newsmon.alerter.channels.poster import Poster
from newsmon.errors import DeliveryError, FetchTimeout, NewsmonError
from newsmon.events import Alert, WebhookEnvelope
from newsmon.settings import WebhookSettings


def secret_key(secret: str) -> bytes:
    """The HMAC key of a `whsec_` secret (base64, padding optional)."""
    raw = secret.removeprefix("whsec_")
    key = base64.b64decode(raw + "=" * (-len(raw) % 4))
    if not key:
        raise ValueError("empty webhook secret")
    return key


def sign(secrets: list[str], msg_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` header value: one v1 signature per secret."""
    content = f"{msg_id}.{timestamp}.".encode() + body
    sigs = [hmac.new(secret_key(s), content, hashlib.sha256).digest() for s in secrets]
    return " ".join("v1," + base64.b64encode(d).decode() for d in sigs)


def secrets_of(hook: WebhookSettings) -> list[str]:
    """The secrets to sign with: the current one first, then the ones being rotated."""
    found = [hook.secret] if hook.secret is not None else []
    return [s.get_secret_value() for s in [*found, *hook.secrets]]


def _place_names(alert: Alert) -> str:
    return ", ".join(p.name_en or p.name_ar for p in alert.places) or "—"


def chat_text(alert: Alert) -> str:
    """One readable message: what, which topic, where, how many sources, the link."""
    head = "New alert" if alert.kind == "new" else "Update"
    lines = [
        f"{head} [{alert.topic_title or alert.topic}] {alert.title}",
        f"Places: {_place_names(alert)} · Sources: {alert.source_count} · Score: {alert.score:.2f}",
    ]
    if alert.changes:
        lines.append("Changes: " + "; ".join(alert.changes))
    if alert.url:
        lines.append(alert.url)
    return "\n".join(lines)


def body(hook: WebhookSettings, subscription: str, alert: Alert) -> bytes:
    """The request body in the hook's format."""
    if hook.format == "slack":
        return json.dumps({"text": chat_text(alert)}, ensure_ascii=False).encode()
    if hook.format == "teams":
        card: dict[str, object] = {
            "@type": "MessageCard",
            "@context": "https://schema.org/extensions",
            "summary": alert.title,
            "themeColor": "B00020" if alert.severity == "high" else "0078D7",
            "title": f"[{alert.topic_title or alert.topic}] {alert.title}",
            "text": chat_text(alert).replace("\n", "  \n"),
        }
        if alert.url:
            card["potentialAction"] = [
                {"@type": "OpenUri", "name": "Open", "targets": [{"os": "default", "uri": alert.url}]}
            ]
        return json.dumps(card, ensure_ascii=False).encode()
    env = WebhookEnvelope(
        type="alert.new" if alert.kind == "new" else "alert.update",
        timestamp=alert.created_at,
        subscription=subscription,
        data=alert,
    )
    return env.model_dump_json().encode()


async def send(poster: Poster, hook: WebhookSettings, subscription: str, alert: Alert) -> int:
    """POST the alert; returns the 2xx status or raises DeliveryError (retriable unless 410 Gone)."""
    data = body(hook, subscription, alert)
    ts = int(time.time())
    headers = {"content-type": "application/json", "webhook-id": alert.id, "webhook-timestamp": str(ts)}
    secrets = secrets_of(hook)
    if secrets:
        headers["webhook-signature"] = sign(secrets, alert.id, ts, data)
    try:
        resp = await poster.post(data, headers)
    except FetchTimeout as exc:
        raise DeliveryError(f"timeout: {exc}", retriable=True) from exc
    except NewsmonError as exc:  # the poster translated OS and TLS errors (and refusals) already
        raise DeliveryError(str(exc), retriable=exc.retriable) from exc
    if 200 <= resp.status < 300:
        return resp.status
    after = net.parse_retry_after(resp.headers.get("retry-after")) if resp.status in (429, 503) else None
    # Everything but 410 is retried: a receiver's 4xx is often a deploy in progress (as Svix does).
    raise DeliveryError(
        f"HTTP {resp.status}",
        retriable=resp.status != 410,
        status=resp.status,
        retry_after=after,
    )
