"""The engine's reminder step around :mod:`alerts.reminders`' decisions: for each alert due, send
the reminder to the tiers already told (never to PagerDuty or Opsgenie, which hold the incident
open already: :data:`alerts.reminders.NOT_REMINDED`), or hold it during quiet hours and say so
once on the alert's timeline. Runs in the caller's transaction, on rows it has locked."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection

from alerts.context import EngineStats
from alerts.reconcile import Reconciler
from alerts.reminders import NOT_REMINDED, reminder_step
from alerts.rows import ReminderCandidate
from alerts.rules import EscalationPolicy
from coldchain.settings import ReminderMinutes
from db.queries import rules as q

__all__ = ["remind_due"]


async def remind_due(
    conn: AsyncConnection[Any],
    alerts: Reconciler,
    candidates: Sequence[ReminderCandidate],
    policy: EscalationPolicy,
    minutes: ReminderMinutes,
    now: datetime,
    stats: EngineStats,
) -> int:
    """Send (or hold) the reminders due among ``candidates``; return how many were sent."""
    sent = 0
    for c in candidates:
        step = reminder_step(
            policy,
            minutes,
            state=c.state,
            severity=c.severity,
            opened_at=c.created_at,
            last_notified_at=c.last_notified_at,
            reminders_sent=c.reminders_sent,
            now=now,
        )
        if step is None:
            continue
        if step.action == "hold":
            if c.reminder_held_since is None:
                # Once per held reminder, on the alert's timeline: nothing waits unseen.
                await conn.execute(q.HOLD_REMINDER, (now, c.alert_id))
                await alerts.event(
                    conn,
                    c.alert_id,
                    "reminder_held",
                    "quiet hours",
                    {"reminder": step.number, "until": step.held_until},
                )
                stats.reminders_held += 1
            continue
        reminder: dict[str, Any] = {
            "number": step.number,
            "unacknowledged_s": round(step.unacknowledged.total_seconds()),
        }
        if c.reminder_held_since is not None:
            reminder["held_since"] = c.reminder_held_since
        await conn.execute(q.REMIND_ALERT, (now, c.alert_id))
        await alerts.event(conn, c.alert_id, "reminded", None, reminder)
        await alerts.notify(
            conn,
            c.alert(c.escalation_level),
            "reminder",
            range(0, c.escalation_level + 1),
            extra={"reminder": reminder},
            skip_channels=NOT_REMINDED,
        )
        sent += 1
    return sent
