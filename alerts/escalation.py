"""Escalation: who is told about an alert, and when the next on-call tier is.

Pure functions of the policy, the alert and ``now``; :mod:`alerts.rounds` reads and writes.

* Tier 0 hears of every alert event at once (opened, upgraded, cleared, re-opened, resolved).
* While an alert stays ``open`` (nobody acknowledged it), tier *k* (k ≥ 1) is notified once the
  alert has been open for that tier's ``after_min`` (default: *k* × the escalation minutes of the
  settings). The wait is counted from when the alert was *stored*, not from the reading's time:
  a late upload can carry an alarm that is hours old, and nobody could have acknowledged it
  before it existed.
* Acknowledging stops escalation; so does resolving. A cleared but unacknowledged alert keeps
  escalating: somebody still has to look at an excursion that happened.
* If the engine was down while several tiers fell due, it catches up in one step and notifies
  every tier it skipped, since each of them should have heard.
* Later events of an alert (upgraded, resolved…) go to every tier already notified.
* Reminders of an alert nobody acknowledges go to every tier already notified too
  (:mod:`alerts.reminders`); each notification carries its links (:mod:`alerts.outbox`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from alerts.rules import EscalationPolicy, EscalationTier

__all__ = ["Target", "escalation_target", "targets", "tier_delay"]


@dataclass(frozen=True, slots=True)
class Target:
    """One recipient: a webhook URL or an e-mail address, and the tier it belongs to."""

    channel: str  # "webhook" | "email"
    address: str
    tier: int


def tier_delay(policy: EscalationPolicy, tier: int, default_minutes: float) -> timedelta:
    """How long an alert must stay unacknowledged before ``tier`` is notified."""
    if tier <= 0:
        return timedelta(0)
    configured = policy.tiers[tier].after_min
    minutes = configured if configured is not None else tier * default_minutes
    return timedelta(minutes=minutes)


def escalation_target(
    policy: EscalationPolicy,
    *,
    state: str,
    level: int,
    opened_at: datetime,
    now: datetime,
    default_minutes: float,
) -> int | None:
    """The tier an alert must be escalated to now, or None (acknowledged, or not due yet)."""
    if state != "open":
        return None
    target = None
    for tier in range(level + 1, len(policy.tiers)):
        if now - opened_at >= tier_delay(policy, tier, default_minutes):
            target = tier
        else:
            break
    return target


def _tier_targets(tier: EscalationTier, index: int) -> list[Target]:
    return [Target("webhook", url, index) for url in tier.webhooks] + [
        Target("email", address, index) for address in tier.emails
    ]


def targets(policy: EscalationPolicy, tiers: range) -> list[Target]:
    """Every recipient of the given tiers (those the policy has)."""
    found: list[Target] = []
    for index in tiers:
        if 0 <= index < len(policy.tiers):
            found.extend(_tier_targets(policy.tiers[index], index))
    return found
