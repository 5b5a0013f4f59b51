"""Delivering alert notifications: an outbox in the database, drained by a worker.

The rules engine never talks to the network. When it opens, upgrades, clears, re-opens,
resolves or escalates an alert it inserts one ``notifications`` row per recipient *in the same
transaction* (and NOTIFYs ``alert_notifications``). The :class:`DeliveryWorker` claims due rows,
sends them, and logs every attempt in ``deliveries`` (ok or not, the response, the duration). A
failed attempt is retried after :func:`backoff` (5 s, 10 s, 20 s… capped) until
``delivery_max_attempts``; then the row is given up, visibly. So a slow or dead receiver never
delays evaluation, and a restart loses nothing: a row claimed by a worker that died is claimed
again when its lease runs out (delivery is at least once; receivers de-duplicate on the
``X-Coldchain-Delivery`` id, which is the same for every attempt).

Webhooks
--------
``POST`` of the JSON payload (:func:`alert_payload`) with headers ``X-Coldchain-Event``,
``X-Coldchain-Delivery`` (the notification id), ``X-Coldchain-Timestamp`` (Unix seconds) and, when
``COLDCHAIN_ALERTS__WEBHOOK_SECRET`` is set, ``X-Coldchain-Signature: sha256=<hex>``: the
HMAC-SHA256 of ``"<timestamp>." + body`` under the secret (:func:`signature`; receivers check it
with :func:`verify_signature` and reject old timestamps against replays). Any 2xx is delivered.

The outbox also carries a shipment's lifecycle events (``alert_id`` NULL, ``shipment_event_id``
set: :mod:`services.automation` queues them), sent by the same worker with the same headers and
signature; only their payload differs.

E-mail
------
Plain-text mail over SMTP (optionally STARTTLS and login) with the standard library, in a
worker thread so the event loop never blocks.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import smtplib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from email.message import EmailMessage
from typing import Any, Protocol

import httpx
import psycopg
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from alerts.policy import json_safe
from coldchain.errors import DeliveryError
from coldchain.runtime import first_of
from coldchain.settings import AlertsSettings
from db.queries import rules as q

__all__ = [
    "DeliveryError",
    "DeliveryWorker",
    "EmailSender",
    "Outgoing",
    "WebhookSender",
    "alert_payload",
    "backoff",
    "email_message",
    "signature",
    "verify_signature",
]

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Coldchain-Signature"
TIMESTAMP_HEADER = "X-Coldchain-Timestamp"
DELIVERY_HEADER = "X-Coldchain-Delivery"
EVENT_HEADER = "X-Coldchain-Event"
USER_AGENT = "coldchain-alerts/0.1"
CLAIM_BATCH = 50
# A claimed row is someone's for this long beyond the send timeout; a worker that died while
# sending leaves it to be claimed again afterwards.
LEASE_MARGIN_S = 30.0


def alert_payload(
    event: str, alert: Mapping[str, Any], *, tier: int, extra: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The JSON document every channel sends for one alert event."""
    payload: dict[str, Any] = json_safe(
        {
            "event": event,
            "tier": tier,
            "alert": {
                "id": alert["alert_id"],
                "shipment_id": alert["shipment_id"],
                "shipment_reference": alert.get("reference"),
                "rule_key": alert["rule_key"],
                "severity": alert["severity"],
                "state": alert["state"],
                "cleared": bool(alert.get("cleared", False)),
                "title": alert["title"],
                "device_id": alert.get("device_id"),
                "triggered_at": alert.get("triggered_at"),
                "value": alert.get("value"),
                "escalation_level": alert.get("escalation_level", 0),
                "thresholds": alert.get("thresholds") or {},
            },
            **dict(extra or {}),
        }
    )
    return payload


def signature(secret: bytes, timestamp: int, body: bytes) -> str:
    """``sha256=<hex>``: HMAC-SHA256 of ``"<timestamp>." + body``."""
    mac = hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"sha256={mac.hexdigest()}"


def verify_signature(
    secret: bytes,
    timestamp: str,
    body: bytes,
    header: str,
    *,
    now: float | None = None,
    tolerance_s: float = 300.0,
) -> bool:
    """True when ``header`` signs this body and timestamp, and the timestamp is recent."""
    try:
        ts = int(timestamp)
    except ValueError:
        return False
    if now is not None and abs(now - ts) > tolerance_s:
        return False
    return hmac.compare_digest(signature(secret, ts, body), header)


def backoff(attempt: int, *, base_s: float, cap_s: float) -> timedelta:
    """Wait after failed attempt number ``attempt`` (1-based): base, 2×base, 4×base… capped."""
    return timedelta(seconds=min(base_s * 2 ** max(attempt - 1, 0), cap_s))


def email_message(payload: Mapping[str, Any], *, sender: str, recipient: str) -> EmailMessage:
    """A plain-text alert e-mail."""
    alert = payload["alert"]
    msg = EmailMessage()
    # A system alert (ingest stalled) has no shipment: it is about the fleet.
    ref = alert.get("shipment_reference") or alert["shipment_id"] or "fleet"
    msg["Subject"] = (
        f"[coldchain {alert['severity'].upper()}] {payload['event']}: {alert['title']} ({ref})"
    )
    msg["From"] = sender
    msg["To"] = recipient
    lines = [
        f"Alert {alert['id']} {payload['event']} (tier {payload['tier']}).",
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
    msg.set_content("\n".join(lines))
    return msg


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


class WebhookSender:
    """JSON over HTTP POST, HMAC-signed."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        secret: bytes | None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._client = client
        self._secret = secret
        self._clock = clock

    async def send(self, item: Outgoing) -> str:
        body = json.dumps(item.payload, sort_keys=True, separators=(",", ":")).encode()
        ts = int(self._clock())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            EVENT_HEADER: item.event,
            DELIVERY_HEADER: str(item.notification_id),
            TIMESTAMP_HEADER: str(ts),
        }
        if self._secret is not None:
            headers[SIGNATURE_HEADER] = signature(self._secret, ts, body)
        try:
            response = await self._client.post(item.target, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise DeliveryError(f"{type(exc).__name__}: {exc}") from exc
        summary = f"HTTP {response.status_code} {response.text[:200]}".strip()
        if not response.is_success:
            raise DeliveryError(summary)
        return summary


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


class DeliveryWorker:
    """Drains the outbox: claim due rows, send them concurrently, record each attempt."""

    def __init__(
        self,
        pool: AsyncConnectionPool,
        settings: AlertsSettings,
        senders: Mapping[str, Sender],
    ) -> None:
        self._pool = pool
        self._settings = settings
        self._senders = dict(senders)
        self.sent = 0
        self.failed = 0

    async def deliver_due(self) -> int:
        """Send everything due now (in batches); return the number of attempts made."""
        attempts = 0
        while True:
            claimed = await self._claim()
            if not claimed:
                return attempts
            # Targets in parallel, but each target's notifications one after the other in the
            # order they were made: nobody should read "cleared" before "opened".
            by_target: dict[tuple[str, str], list[Outgoing]] = {}
            for item in sorted(claimed, key=lambda o: o.notification_id):
                by_target.setdefault((item.channel, item.target), []).append(item)
            await asyncio.gather(*(self._attempt_in_order(items) for items in by_target.values()))
            attempts += len(claimed)

    async def _attempt_in_order(self, items: list[Outgoing]) -> None:
        for item in items:
            await self._attempt(item)

    async def _claim(self) -> list[Outgoing]:
        lease = self._settings.webhook_timeout_s + LEASE_MARGIN_S
        async with self._pool.connection() as conn, conn.transaction():
            rows = await (
                await conn.execute(q.CLAIM_NOTIFICATIONS, {"lease_s": lease, "limit": CLAIM_BATCH})
            ).fetchall()
        return [Outgoing(*row) for row in rows]

    async def _attempt(self, item: Outgoing) -> None:
        sender = self._senders.get(item.channel)
        started = time.perf_counter()
        ok, response = False, ""
        try:
            if sender is None:
                raise DeliveryError(f"no {item.channel} sender configured")
            response = await sender.send(item)
            ok = True
        except DeliveryError as exc:
            response = str(exc)
        except Exception as exc:  # a bug in one send must not stop the others
            log.exception("notification %d: unexpected error", item.notification_id)
            response = f"{type(exc).__name__}: {exc}"
        duration_ms = (time.perf_counter() - started) * 1000
        give_up = not ok and item.attempt >= self._settings.delivery_max_attempts
        wait = backoff(
            item.attempt,
            base_s=self._settings.delivery_backoff_s,
            cap_s=self._settings.delivery_backoff_max_s,
        )
        try:
            async with self._pool.connection() as conn, conn.transaction():
                await conn.execute(
                    q.RECORD_DELIVERY,
                    (
                        item.alert_id,
                        item.channel,
                        item.target,
                        item.event,
                        item.attempt,
                        ok,
                        response[:2000],
                        item.notification_id,
                        duration_ms,
                    ),
                )
                if ok:
                    await conn.execute(q.NOTIFICATION_DELIVERED, (item.notification_id,))
                elif give_up:
                    await conn.execute(q.NOTIFICATION_GIVEN_UP, (response, item.notification_id))
                else:
                    await conn.execute(
                        q.NOTIFICATION_RETRY,
                        (wait.total_seconds(), response, item.notification_id),
                    )
        except psycopg.Error as exc:
            # The lease makes the row due again; the receiver may see it twice (at least once).
            log.warning(
                "notification %d: cannot record the attempt (%s)", item.notification_id, exc
            )
            return
        if ok:
            self.sent += 1
        else:
            self.failed += 1
            level = logging.ERROR if give_up else logging.WARNING
            log.log(
                level,
                "notification %d (%s to %s) attempt %d failed%s: %s",
                item.notification_id,
                item.channel,
                item.target,
                item.attempt,
                "; giving up" if give_up else f"; retry in {wait.total_seconds():.0f} s",
                response,
            )

    async def next_due_in(self) -> float | None:
        """Seconds until the next retry falls due (None: nothing waiting)."""
        async with self._pool.connection() as conn:
            row = await (await conn.execute(q.NEXT_NOTIFICATION_DUE)).fetchone()
        return None if row is None or row[0] is None else max(float(row[0]), 0.0)

    async def run(self, stop: asyncio.Event, wake: asyncio.Event, *, poll_s: float) -> None:
        """Deliver until ``stop``: on NOTIFY, when a retry falls due, and every ``poll_s``."""
        while not stop.is_set():
            wake.clear()
            wait = poll_s
            try:
                await self.deliver_due()
                due = await self.next_due_in()
                if due is not None:
                    wait = min(wait, due)
            except psycopg.OperationalError as exc:
                log.warning("database unavailable for delivery (%s); retrying", exc)
            except Exception:  # a bug must not stop delivery for good; the rows stay due
                log.exception("delivery pass failed; retrying")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(first_of(wake, stop), timeout=max(wait, 0.05))


def senders_from_settings(settings: AlertsSettings, client: httpx.AsyncClient) -> dict[str, Sender]:
    """The channels the settings configure: webhooks always, e-mail when an SMTP host is set."""
    secret = settings.webhook_secret
    found: dict[str, Sender] = {
        "webhook": WebhookSender(
            client, secret=secret.get_secret_value().encode() if secret is not None else None
        )
    }
    if settings.smtp_host is not None:
        found["email"] = EmailSender(settings)
    return found


def notification_rows(
    alert: Mapping[str, Any],
    event: str,
    recipients: list[tuple[str, str, int]],
    *,
    extra: Mapping[str, Any] | None = None,
) -> list[tuple[Any, ...]]:
    """Outbox rows ``(alert_id, event, tier, channel, target, payload)`` for some recipients."""
    return [
        (
            alert["alert_id"],
            event,
            tier,
            channel,
            address,
            Jsonb(alert_payload(event, alert, tier=tier, extra=extra)),
        )
        for channel, address, tier in recipients
    ]
