"""Writing an alert's notifications into the outbox, with their one-time acknowledgement links.

The one function every path that tells people about an alert goes through (opened, upgraded,
cleared, re-opened, resolved, escalated, reminded: :mod:`alerts.reconcile` and
:mod:`alerts.rounds`), inside the transaction that changed the alert, so a notification, its
link and the change are committed together or not at all.

Every notification carries ``payload["links"]["alert"]`` (the alert's page). While the alert
is ``open`` (it can be acknowledged) each one also carries ``links["ack"]``, a one-time link
(:mod:`coldchain.ack`) stored as a hash in ``ack_links`` beside the notification's id, the
channel and the recipient; for SMS, ``payload["reply_code"]`` too. A link names the person it
was sent to when the recipient is exactly one active person's e-mail or phone
(``db.queries.ack.INSERT_ACK_LINK``); :mod:`services.ack` then accepts it from that person only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

from alerts.delivery import alert_payload
from alerts.escalation import Target
from coldchain.ack import ack_url, alert_url, new_reply_code, new_token, token_hash
from db.queries import ack as ack_q
from db.queries import rules as q

__all__ = ["LinkPolicy", "queue_notifications"]

#: Attempts at drawing SMS reply codes that no live link has (a million codes: one is plenty).
CODE_DRAWS = 20


@dataclass(frozen=True, slots=True)
class LinkPolicy:
    """Where links point (``COLDCHAIN_WEB__PUBLIC_URL``) and how long an ack link lives."""

    base_url: str
    ttl: timedelta


async def _reply_codes(conn: AsyncConnection[Any], count: int, now: datetime) -> list[str]:
    """``count`` distinct reply codes that no live link uses."""
    if count == 0:
        return []
    await conn.execute(ack_q.RELEASE_EXPIRED_CODES, {"now": now})
    for _ in range(CODE_DRAWS):
        codes = list({new_reply_code() for _ in range(count)})
        if len(codes) < count:
            continue
        taken = await (await conn.execute(ack_q.LIVE_REPLY_CODES, {"codes": codes})).fetchall()
        if not taken:
            return codes
    raise RuntimeError("no free SMS reply code found: too many live links")


async def queue_notifications(
    conn: AsyncConnection[Any],
    alert: Mapping[str, Any],
    event: str,
    recipients: Sequence[Target],
    *,
    links: LinkPolicy,
    now: datetime,
    extra: Mapping[str, Any] | None = None,
) -> int:
    """Insert one notification per recipient (and its ack link while the alert is open);
    return how many were queued."""
    if not recipients:
        return 0
    alert_id = int(alert["alert_id"])
    acknowledgeable = alert["state"] == "open"
    sms = [r for r in recipients if r.channel == "sms"] if acknowledgeable else []
    codes = iter(await _reply_codes(conn, len(sms), now))
    rows: list[tuple[Any, ...]] = []
    link_rows: list[dict[str, Any]] = []
    for r in recipients:
        added: dict[str, Any] = {"links": {"alert": alert_url(links.base_url, alert_id)}}
        if acknowledgeable:
            token = new_token()
            code = next(codes) if r.channel == "sms" else None
            added["links"]["ack"] = ack_url(links.base_url, token)
            if code is not None:
                added["reply_code"] = code
            link_rows.append(
                {
                    "token_hash": token_hash(token),
                    "alert_id": alert_id,
                    "channel": r.channel,
                    "target": r.address,
                    "reply_code": code,
                    "expires_at": now + links.ttl,
                }
            )
        payload = alert_payload(event, alert, tier=r.tier, extra={**dict(extra or {}), **added})
        rows.append((alert_id, event, r.tier, r.channel, r.address, Jsonb(payload)))
    async with conn.cursor() as cur:
        await cur.executemany(q.INSERT_NOTIFICATION, rows, returning=True)
        ids: list[int] = []
        while True:
            row = await cur.fetchone()
            assert row is not None  # RETURNING id, one row per insert
            ids.append(int(row[0]))
            if not cur.nextset():
                break
        if link_rows:
            for link, notification_id in zip(link_rows, ids, strict=True):
                link["notification_id"] = notification_id
            await cur.executemany(ack_q.INSERT_ACK_LINK, link_rows)
    return len(rows)
