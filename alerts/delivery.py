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

The senders, one per channel (webhooks signed with HMAC, e-mail, Slack, Teams, PagerDuty,
Opsgenie, SMS), are :mod:`alerts.channels`. A failed attempt says how to go on
(:class:`~coldchain.errors.DeliveryError`): a receiver's ``Retry-After`` (on a 429, 408 or
5xx) puts the next attempt no earlier than that, capped like the backoff (:func:`retry_wait`);
a permanent refusal (any other 4xx: a wrong routing key, a revoked webhook) is given up at once
with its reason. An alert's events reach each recipient in order: a row is not claimed while an
earlier one of the same alert to the same recipient is pending (``CLAIM_NOTIFICATIONS``), so a
retried "opened" is never overtaken by its "acknowledged" or "cleared". Targets are logged as :func:`~alerts.channels.display_target` shows them, so a
routing key or a Slack URL never reaches the log.

The outbox also carries a shipment's lifecycle events (``alert_id`` NULL, ``shipment_event_id``
set: :mod:`services.automation` queues them), sent by the same worker with the same headers and
signature; only their payload differs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg_pool import AsyncConnectionPool

from alerts.channels import Outgoing, Sender, display_target
from alerts.policy import json_safe
from coldchain.errors import DeliveryError
from coldchain.runtime import first_of
from coldchain.settings import AlertsSettings
from db.queries import rules as q

if TYPE_CHECKING:
    from alerts.digests import OutboxControl

__all__ = [
    "DeliveryError",
    "DeliveryWorker",
    "alert_payload",
    "backoff",
    "retry_wait",
]

log = logging.getLogger(__name__)

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


def backoff(attempt: int, *, base_s: float, cap_s: float) -> timedelta:
    """Wait after failed attempt number ``attempt`` (1-based): base, 2×base, 4×base… capped."""
    return timedelta(seconds=min(base_s * 2 ** max(attempt - 1, 0), cap_s))


def retry_wait(
    attempt: int, retry_after_s: float | None, *, base_s: float, cap_s: float
) -> timedelta:
    """Wait after a failed attempt: the backoff, or the receiver's Retry-After when longer;
    never beyond the cap (a receiver asking for a day must not silence an alarm for a day)."""
    wait = backoff(attempt, base_s=base_s, cap_s=cap_s)
    if retry_after_s is None:
        return wait
    return timedelta(seconds=min(max(wait.total_seconds(), retry_after_s), cap_s))


class DeliveryWorker:
    """Drains the outbox: claim due rows, send them concurrently, record each attempt."""

    def __init__(
        self,
        pool: AsyncConnectionPool,
        settings: AlertsSettings,
        senders: Mapping[str, Sender],
        *,
        control: OutboxControl | None = None,
    ) -> None:
        self._pool = pool
        self._settings = settings
        self._senders = dict(senders)
        # Flood control and backlog grouping (alerts/digests.py); None: every row sent as is.
        self._control = control
        self.sent = 0
        self.failed = 0

    async def deliver_due(self) -> int:
        """Send everything due now (in batches); return the number of attempts made."""
        attempts = 0
        while True:
            claimed, to_send = await self._claim()
            if not claimed:
                return attempts
            claimed = to_send
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

    async def _claim(self) -> tuple[list[Outgoing], list[Outgoing]]:
        """The rows claimed, and what of them to send (flood control groups or holds some)."""
        lease = self._settings.webhook_timeout_s + LEASE_MARGIN_S
        async with self._pool.connection() as conn, conn.transaction():
            rows = await (
                await conn.execute(q.CLAIM_NOTIFICATIONS, {"lease_s": lease, "limit": CLAIM_BATCH})
            ).fetchall()
            claimed = [Outgoing(*row) for row in rows]
            if self._control is None or not claimed:
                return claimed, claimed
            return claimed, await self._control.apply(conn, claimed)

    async def _attempt(self, item: Outgoing) -> None:
        sender = self._senders.get(item.channel)
        started = time.perf_counter()
        ok, response = False, ""
        retry_after: float | None = None
        permanent = False
        try:
            if sender is None:
                raise DeliveryError(f"no {item.channel} sender configured")
            response = await sender.send(item)
            ok = True
        except DeliveryError as exc:
            response, retry_after, permanent = str(exc), exc.retry_after_s, exc.permanent
        except Exception as exc:  # a bug in one send must not stop the others
            log.exception("notification %d: unexpected error", item.notification_id)
            response = f"{type(exc).__name__}"  # its text could hold a target's secret
        duration_ms = (time.perf_counter() - started) * 1000
        give_up = not ok and (permanent or item.attempt >= self._settings.delivery_max_attempts)
        wait = retry_wait(
            item.attempt,
            retry_after,
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
                if self._control is not None:
                    await self._control.settle(conn, item, ok=ok, give_up=give_up, error=response)
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
                display_target(item.channel, item.target),
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
