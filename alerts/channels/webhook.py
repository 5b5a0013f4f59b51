"""Generic webhooks: the JSON payload, HMAC-signed.

``POST`` of the JSON payload (:func:`alerts.delivery.alert_payload`, or a digest) with headers
``X-Coldchain-Event``, ``X-Coldchain-Delivery`` (the notification id: the same for every
attempt, so receivers de-duplicate on it), ``X-Coldchain-Timestamp`` (Unix seconds) and, when
``COLDCHAIN_ALERTS__WEBHOOK_SECRET`` is set, ``X-Coldchain-Signature: sha256=<hex>``: the
HMAC-SHA256 of ``"<timestamp>." + body`` under the secret (:func:`signature`; receivers check it
with :func:`verify_signature` and reject old timestamps against replays). Any 2xx is delivered.

The outbox also carries a shipment's lifecycle events (``alert_id`` NULL: :mod:`services.automation`
queues them), sent the same way; only their payload differs.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable

import httpx

from alerts.channels.base import USER_AGENT, Outgoing, compact_json, post

__all__ = [
    "DELIVERY_HEADER",
    "EVENT_HEADER",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "WebhookSender",
    "signature",
    "verify_signature",
]

SIGNATURE_HEADER = "X-Coldchain-Signature"
TIMESTAMP_HEADER = "X-Coldchain-Timestamp"
DELIVERY_HEADER = "X-Coldchain-Delivery"
EVENT_HEADER = "X-Coldchain-Event"


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
        body = compact_json(item.payload)
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
        return await post(
            self._client, item.target, secrets=(), clock=self._clock, content=body, headers=headers
        )
