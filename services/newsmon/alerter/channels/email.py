"""Email channel: multipart text + HTML (right-to-left for Arabic), one alert or a digest, via aiosmtplib."""

from __future__ import annotations

import html
from email.message import EmailMessage

import aiosmtplib

from newsmon.errors import DeliveryError
from newsmon.events import Alert
from newsmon.settings import EmailSettings, SmtpSettings

_RTL = {"ar", "fa", "he", "ur", "ps", "ku"}


def _dir(lang: str | None) -> str:
    return "rtl" if (lang or "").split("-")[0] in _RTL else "ltr"


def _text(alert: Alert) -> str:
    head = "New alert" if alert.kind == "new" else "Update"
    places = ", ".join(p.name_ar if alert.lang == "ar" and p.name_ar else p.name_en for p in alert.places)
    lines = [
        f"{head}: {alert.title}",
        f"Topic: {alert.topic_title or alert.topic} · score {alert.score:.2f}",
        f"Places: {places or '—'}",
        f"Sources ({alert.source_count}):",
    ]
    lines += [f"  - {s.source or s.feed_id}: {s.title} {s.url or ''}".rstrip() for s in alert.sources]
    if alert.changes:
        lines.append("Changes: " + "; ".join(alert.changes))
    if alert.summary:
        lines += ["", alert.summary]
    if alert.url:
        lines += ["", alert.url]
    return "\n".join(lines)


def _html(alert: Alert) -> str:
    d, lang = _dir(alert.lang), html.escape(alert.lang or "en")
    title = html.escape(alert.title)
    link = f'<a href="{html.escape(alert.url)}">{title}</a>' if alert.url else title
    items = "".join(
        f'<li dir="{_dir(s.lang)}" lang="{html.escape(s.lang or "")}">{html.escape(s.source or s.feed_id)}: '
        f"{html.escape(s.title)}</li>"
        for s in alert.sources
    )
    changes = f"<p>{html.escape('; '.join(alert.changes))}</p>" if alert.changes else ""
    return (
        f'<section dir="{d}" lang="{lang}"><h2>{link}</h2>'
        f"<p>{html.escape(alert.topic_title or alert.topic)} · {alert.score:.2f}</p>{changes}"
        f"<p>{html.escape(alert.summary)}</p><ul>{items}</ul></section>"
    )


def _subject(alert: Alert) -> str:
    prefix = "" if alert.kind == "new" else "[update] "
    return f"{prefix}{alert.title}"[:200]


def message(smtp: SmtpSettings, email: EmailSettings, alerts: list[Alert], digest: bool) -> EmailMessage:
    """The message for one alert, or a digest of several."""
    msg = EmailMessage()
    msg["From"] = smtp.sender
    msg["To"] = ", ".join(email.to)
    first = alerts[0]
    if digest:
        msg["Subject"] = f"newsmon digest: {len(alerts)} alert(s) · {first.title}"[:200]
        text = "\n\n----\n\n".join(_text(a) for a in alerts)
        body = "<hr>".join(_html(a) for a in alerts)
        page_dir = _dir(first.lang) if all(_dir(a.lang) == _dir(first.lang) for a in alerts) else "ltr"
    else:
        msg["Subject"] = _subject(first)
        text, body, page_dir = _text(first), _html(first), _dir(first.lang)
    msg["Message-ID"] = f"<{first.id}{'-digest' if digest else ''}@newsmon>"
    msg.set_content(text, charset="utf-8")
    lang = html.escape(first.lang or "en")
    msg.add_alternative(
        f'<!doctype html><html dir="{page_dir}" lang="{lang}"><head><meta charset="utf-8">'
        f"</head><body>{body}</body></html>",
        subtype="html",
        charset="utf-8",
    )
    return msg


async def send(
    smtp: SmtpSettings, email: EmailSettings, alerts: list[Alert], digest: bool, limit: float
) -> None:
    """Send by SMTP; DeliveryError (retriable unless every recipient was refused permanently)."""
    msg = message(smtp, email, alerts, digest)
    password = smtp.password.get_secret_value() if smtp.password else None
    try:
        await aiosmtplib.send(
            msg,
            hostname=smtp.host,
            port=smtp.port,
            username=smtp.username,
            password=password,
            start_tls=smtp.starttls,
            timeout=limit,
        )
    except aiosmtplib.SMTPRecipientsRefused as exc:
        permanent = all(r.code >= 500 for r in exc.recipients)
        raise DeliveryError(f"recipients refused: {exc}", retriable=not permanent) from exc
    except aiosmtplib.SMTPResponseException as exc:
        raise DeliveryError(
            f"SMTP {exc.code}: {exc.message}", retriable=exc.code < 500, status=exc.code
        ) from exc
    except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
        raise DeliveryError(f"SMTP: {exc.__class__.__name__}: {exc}", retriable=True) from exc
