"""What every channel shares: the claimed notification (:class:`Outgoing`), the
:class:`Sender` protocol, how an HTTP answer becomes a result or a :class:`DeliveryError`, and
the plain-text pieces each channel's message is built from.

An HTTP answer is judged the same way on every channel (:func:`post`):

* 2xx: delivered; the summary is the status and the start of the body.
* 429, 408 and 5xx: worth retrying; a ``Retry-After`` header (seconds, or an HTTP date) becomes
  :attr:`DeliveryError.retry_after_s`, and the delivery worker waits at least that long.
* any other 4xx: permanent. A wrong routing key, a revoked Slack webhook or a number the gateway
  refuses will never work, so the worker gives up at once with the reason, instead of trying
  ten times over hours while the on-call person hears nothing.

Secrets (the webhook URLs of Slack and Teams, routing keys, API keys, the gateway's token) are
scrubbed from every summary and error (:func:`scrub`): these texts go to the ``deliveries``
table and the log, which people read who must not be able to page on the platform's behalf.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlsplit

import httpx

from coldchain.errors import DeliveryError

__all__ = [
    "USER_AGENT",
    "IncomingWebhookSender",
    "Outgoing",
    "Sender",
    "about_alert",
    "alert_link",
    "digest_lines",
    "headline",
    "mask_secret",
    "mask_url",
    "post",
    "retry_after_s",
    "scrub",
]

USER_AGENT = "coldchain-alerts/0.1"
#: What a secret is replaced with in texts people read.
MASK = "…"
#: How much of a receiver's answer is kept (the deliveries table keeps 2000 characters).
SUMMARY_CHARS = 200


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One claimed notification."""

    notification_id: int
    alert_id: int | None  # None: a shipment's lifecycle event (services/automation.py)
    event: str
    tier: int
    channel: str
    target: str
    payload: Mapping[str, Any]
    attempt: int


class Sender(Protocol):
    """Sends one notification; returns a short response summary or raises DeliveryError."""

    async def send(self, item: Outgoing) -> str: ...


# ---- secrets ------------------------------------------------------------------------------


def mask_secret(secret: str) -> str:
    """A routing or API key as people may see it: its last four characters."""
    return f"{MASK}{secret[-4:]}" if len(secret) > 8 else MASK


def mask_url(url: str) -> str:
    """A webhook URL as people may see it: scheme and host; the path and query (where Slack,
    Teams and most webhook services put the secret) masked."""
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        return MASK
    hidden = parts.path not in ("", "/") or parts.query
    return f"{parts.scheme}://{parts.netloc}/{MASK if hidden else ''}"


def scrub(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret (and its URL-encoded form) replaced by the mask."""
    for secret in secrets:
        if not secret:
            continue
        forms = [secret]
        if "://" in secret:  # a URL: its path, query and signature may be echoed on their own
            parts = urlsplit(secret)
            forms += [parts.path, parts.query, *(v for _k, v in parse_qsl(parts.query))]
        for form in forms:
            if len(form) > 1:
                text = text.replace(form, MASK)
    return text


# ---- HTTP ---------------------------------------------------------------------------------


def retry_after_s(value: str | None, *, now: float) -> float | None:
    """A ``Retry-After`` header in seconds from ``now`` (delta-seconds or an HTTP date); None
    when absent or unreadable."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(when.timestamp() - now, 0.0)


def _retryable(status: int) -> bool:
    return status in (408, 429) or status >= 500


async def post(
    client: httpx.AsyncClient,
    url: str,
    *,
    secrets: Iterable[str],
    clock: Callable[[], float] = time.time,
    **kwargs: Any,
) -> str:
    """POST and judge the answer (module docstring); the summary, secrets scrubbed."""
    hidden = [url, *secrets]
    try:
        response = await client.post(url, **kwargs)
    except (httpx.HTTPError, httpx.InvalidURL) as exc:  # InvalidURL is no HTTPError
        raise DeliveryError(scrub(f"{type(exc).__name__}: {exc}", hidden)) from None
    summary = scrub(f"HTTP {response.status_code} {response.text[:SUMMARY_CHARS]}".strip(), hidden)
    if response.is_success:
        return summary
    if _retryable(response.status_code):
        wait = retry_after_s(response.headers.get("retry-after"), now=clock())
        raise DeliveryError(summary, retry_after_s=wait)
    raise DeliveryError(f"{summary} (refused: not retried)", permanent=True)


# ---- text ---------------------------------------------------------------------------------


def alert_link(payload: Mapping[str, Any]) -> str | None:
    """The link to the alert (or, for a digest, to the alerts) when the payload carries one."""
    links = payload.get("links") or {}
    return links.get("alert") or links.get("alerts")


def ack_link(payload: Mapping[str, Any]) -> str | None:
    """The one-time acknowledgement link, when the payload carries one (issue 16, slice b)."""
    return (payload.get("links") or {}).get("ack")


def about_alert(payload: Mapping[str, Any]) -> bool:
    """Whether the payload is one alert's event (:func:`alerts.delivery.alert_payload`); else
    a digest, or a note of another kind (a test notification: its ``title`` or ``message``),
    which every channel renders as a headline and the digest's lines, if any."""
    return isinstance(payload.get("alert"), Mapping)


def headline(payload: Mapping[str, Any]) -> str:
    """One line: ``[MAJOR] opened: <title> (SHP-7)``, the digest's count, or a note's title."""
    if not about_alert(payload) and payload.get("event") != "digest":
        text = payload.get("title") or payload.get("message") or f"{payload.get('event')}"
        return f"coldchain: {text}"
    if payload.get("event") == "digest":
        alerts = payload.get("alerts") or []
        where = payload.get("shipment_reference") or "several shipments"
        more = int(payload.get("held_back") or 0)
        why = "held back by the notification limit" if payload.get("reason") == "flood" else ""
        extra = f", {more} more {why or 'held back'}" if more else ""
        return f"{len(alerts)} alerts for {where}{extra}"
    alert = payload["alert"]
    ref = alert.get("shipment_reference") or alert.get("shipment_id") or "fleet"
    line = f"[{str(alert['severity']).upper()}] {payload['event']}: {alert['title']} ({ref})"
    by = payload.get("acknowledged_by") or payload.get("resolved_by")
    if by:
        line += f" by {by}"
    return line


def digest_lines(payload: Mapping[str, Any], *, limit: int = 20) -> list[str]:
    """A digest's alerts, one line each (the first ``limit``), then "N more held back"."""
    alerts = list(payload.get("alerts") or [])
    lines = [
        f"#{a['id']} [{str(a['severity']).upper()}] {a['title']}"
        f" ({a.get('shipment_reference') or a.get('shipment_id')})"
        for a in alerts[:limit]
    ]
    not_listed = len(alerts) - len(lines)
    if not_listed:
        lines.append(f"… and {not_listed} more in this message's link")
    held = int(payload.get("held_back") or 0)
    if held:
        lines.append(f"{held} more held back (not sent one by one): see the link")
    return lines


def compact_json(payload: Mapping[str, Any]) -> bytes:
    """The payload as the webhooks sign and send it: sorted keys, no spaces."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()


class IncomingWebhookSender:
    """Posts a rendered message to an incoming-webhook URL (Slack's, Teams'): the target is the
    URL, a secret in itself (post() scrubs it); ``render`` makes the channel's message."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        render: Callable[[Mapping[str, Any]], dict[str, Any]],
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._client = client
        self._render = render
        self._clock = clock

    async def send(self, item: Outgoing) -> str:
        return await post(
            self._client,
            item.target,
            secrets=(),  # post() scrubs the URL itself
            clock=self._clock,
            json=self._render(item.payload),
            headers={"User-Agent": USER_AGENT},
        )
