"""E-mail: plain text over SMTP (optionally STARTTLS and login) with the standard library, in a
worker thread so the event loop never blocks.

One alert event is one mail (:func:`email_message`), a digest one mail listing its alerts; the
links the payload carries (the alert's page, a one-time acknowledgement) are in the text. SMTP
answers are not sorted into permanent and passing failures: a refused recipient is retried like
a dropped connection, since mail servers refuse for passing reasons too (greylisting).
"""

from __future__ import annotations

import asyncio
import json
import smtplib
from collections.abc import Mapping
from email.message import EmailMessage
from typing import Any

from alerts.channels.base import Outgoing, about_alert, ack_link, alert_link, digest_lines, headline
from coldchain.errors import DeliveryError
from coldchain.settings import AlertsSettings

__all__ = ["EmailSender", "email_message"]


def _alert_lines(payload: Mapping[str, Any]) -> list[str]:
    alert = payload["alert"]
    # A system alert (ingest stalled) has no shipment: it is about the fleet.
    ref = alert.get("shipment_reference") or alert["shipment_id"] or "fleet"
    lines = [f"Alert {alert['id']} {payload['event']} (tier {payload['tier']})."]
    by = payload.get("acknowledged_by") or payload.get("resolved_by")
    if by:
        lines.append(f"By {by}: {payload.get('comment') or '-'}")
    return [
        *lines,
        "",
        f"Shipment:   {ref}",
        f"Rule:       {alert['rule_key']}",
        f"Severity:   {alert['severity']}",
        f"State:      {alert['state']}",
        f"Device:     {alert.get('device_id') or '-'}",
        f"Triggered:  {alert.get('triggered_at')} (the reading's time)",
        f"Value:      {alert.get('value')}",
        "",
        "Thresholds as evaluated:",
        json.dumps(alert.get("thresholds") or {}, indent=2, sort_keys=True),
    ]


def email_message(payload: Mapping[str, Any], *, sender: str, recipient: str) -> EmailMessage:
    """A plain-text alert (or digest) e-mail."""
    msg = EmailMessage()
    if not about_alert(payload):
        msg["Subject"] = f"[coldchain] {headline(payload)}"
        lines = [f"{headline(payload)} (tier {payload.get('tier')}).", "", *digest_lines(payload)]
    else:
        msg["Subject"] = f"[coldchain {headline(payload).removeprefix('[')}"  # [coldchain MAJOR]
        lines = _alert_lines(payload)
    if (link := alert_link(payload)) is not None:
        lines += ["", f"Open: {link}"]
    if (ack := ack_link(payload)) is not None:
        lines += [f"Acknowledge (one-time link): {ack}"]
    msg["From"] = sender
    msg["To"] = recipient
    msg.set_content("\n".join(lines))
    return msg


class EmailSender:
    """Plain-text mail over SMTP, in a thread."""

    def __init__(self, settings: AlertsSettings) -> None:
        if settings.smtp_host is None:
            raise ValueError("EmailSender needs COLDCHAIN_ALERTS__SMTP_HOST")
        self._host = settings.smtp_host
        self._port = settings.smtp_port
        self._starttls = settings.smtp_starttls
        self._username = settings.smtp_username
        self._password = settings.smtp_password
        self._sender = settings.smtp_from
        self._timeout = settings.webhook_timeout_s

    async def send(self, item: Outgoing) -> str:
        msg = email_message(item.payload, sender=self._sender, recipient=item.target)
        try:
            return await asyncio.to_thread(self._send_sync, msg)
        except (OSError, smtplib.SMTPException) as exc:
            raise DeliveryError(f"{type(exc).__name__}: {exc}") from exc

    def _send_sync(self, msg: EmailMessage) -> str:
        with smtplib.SMTP(self._host, self._port, timeout=self._timeout) as smtp:
            if self._starttls:
                smtp.starttls()
            if self._username:
                password = self._password.get_secret_value() if self._password else ""
                smtp.login(self._username, password)
            refused = smtp.send_message(msg)
        if refused:
            raise DeliveryError(f"recipients refused: {refused}")
        return f"250 accepted by {self._host}:{self._port}"
