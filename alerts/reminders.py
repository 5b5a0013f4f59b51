"""Reminders: an alert nobody acknowledged is notified again, every N minutes per severity.

Pure functions of the policy, the alert and ``now``; :mod:`alerts.rounds` reads and writes.

* Every ``interval`` (``[escalation.reminders]`` of the rules file, else
  ``COLDCHAIN_ALERTS__REMINDER_MINUTES__<SEVERITY>``; 0: never) after the alert's *last
  notification* (opened, escalated or the previous reminder), the tiers already notified hear
  of it again, until it is acknowledged or resolved. A cleared but unacknowledged alert keeps
  reminding, as it keeps escalating: somebody still has to look at an excursion that happened.
  An escalation is a notification too, so a tier is not told twice in the same minute.
* Quiet hours (``[escalation.quiet_hours]``) hold the reminders of the severities they name
  (never critical: the rules file refuses it) until they end; the reminder is then sent with
  ``held_since`` in its payload. Held, never dropped. Only reminders wait: an alert opening or
  escalating is news, and goes at once whatever the hour.
* An engine that was down does not send the reminders it missed one by one: one reminder
  says how long the alert has been unacknowledged.
* Reminders are not sent to PagerDuty or Opsgenie (:data:`NOT_REMINDED`). Those services hold
  the alert's incident and page again by their own escalation policies until someone acts
  there; an event for the open incident would only be folded into it (same dedup key), and once
  the alert cleared (incident resolved) each reminder would open the incident again: a page
  every N minutes about a condition that is over. The incident follows the alert's life instead
  (triggered, escalated, acknowledged, resolved); the people on the other channels are reminded.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from alerts.rules import EscalationPolicy, QuietHours
from coldchain.settings import ReminderMinutes
from coldchain.severity import SEVERITIES

__all__ = [
    "NOT_REMINDED",
    "ReminderStep",
    "in_quiet_hours",
    "quiet_hours_end",
    "reminder_due",
    "reminder_interval",
    "reminder_step",
    "shortest_interval",
]

#: Channels whose incidents re-notify on their own: reminders skip them (see above).
NOT_REMINDED = frozenset({"pagerduty", "opsgenie"})


def reminder_interval(
    policy: EscalationPolicy, severity: str, defaults: ReminderMinutes
) -> timedelta | None:
    """Time between reminders of an alert of ``severity``; None: no reminders."""
    configured = getattr(policy.reminders, severity, None) if policy.reminders else None
    minutes = configured if configured is not None else getattr(defaults, severity)
    return timedelta(minutes=minutes) if minutes > 0 else None


def shortest_interval(policy: EscalationPolicy, defaults: ReminderMinutes) -> timedelta | None:
    """The shortest time between reminders of any severity; None: no reminders at all."""
    found = [reminder_interval(policy, s, defaults) for s in SEVERITIES]
    intervals = [i for i in found if i is not None]
    return min(intervals) if intervals else None


def reminder_due(
    *, state: str, interval: timedelta | None, last_notified_at: datetime, now: datetime
) -> bool:
    """Whether an alert in ``state`` must be reminded now: open (nobody acknowledged it),
    reminders on, and ``interval`` passed since its last notification."""
    return state == "open" and interval is not None and now - last_notified_at >= interval


def _is_quiet(local: time, start: time, end: time) -> bool:
    if start < end:
        return start <= local < end
    return local >= start or local < end  # over midnight


def in_quiet_hours(quiet: QuietHours | None, severity: str, now: datetime) -> bool:
    """Whether reminders of ``severity`` are held at ``now`` (an aware datetime)."""
    if quiet is None or severity not in quiet.severities or severity == "critical":
        return False
    local = now.astimezone(ZoneInfo(quiet.time_zone)).time().replace(tzinfo=None)
    return _is_quiet(local, quiet.start, quiet.end)


def quiet_hours_end(quiet: QuietHours, now: datetime) -> datetime:
    """When the quiet hours that hold at ``now`` end (aware, in the quiet hours' zone)."""
    zone = ZoneInfo(quiet.time_zone)
    local = now.astimezone(zone)
    end = datetime.combine(local.date(), quiet.end, tzinfo=zone)
    if end <= local:
        end += timedelta(days=1)
    return end


@dataclass(frozen=True, slots=True)
class ReminderStep:
    """What the engine does with one alert now: ``send`` a reminder (number ``number``,
    unacknowledged for ``unacknowledged``), or ``hold`` it until ``held_until``."""

    action: Literal["send", "hold"]
    number: int
    unacknowledged: timedelta
    held_until: datetime | None = None


def reminder_step(
    policy: EscalationPolicy,
    defaults: ReminderMinutes,
    *,
    state: str,
    severity: str,
    opened_at: datetime,
    last_notified_at: datetime,
    reminders_sent: int,
    now: datetime,
) -> ReminderStep | None:
    """The reminder an alert is due now (to send, or to hold for quiet hours), or None."""
    interval = reminder_interval(policy, severity, defaults)
    if not reminder_due(state=state, interval=interval, last_notified_at=last_notified_at, now=now):
        return None
    number = reminders_sent + 1
    if policy.quiet_hours is not None and in_quiet_hours(policy.quiet_hours, severity, now):
        end = quiet_hours_end(policy.quiet_hours, now)
        return ReminderStep("hold", number, now - opened_at, end)
    return ReminderStep("send", number, now - opened_at)
