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
* A tier with ``severities`` hears only of alerts of those severities (say, PagerDuty for
  critical ones only); an upgrade to one of them is the first it hears.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from alerts.channels import display_target
from alerts.rules import EscalationPolicy, EscalationTier

__all__ = [
    "TIER_FIELDS",
    "Target",
    "escalation_target",
    "shown_policy",
    "targets",
    "tier_delay",
    "unconfigured",
]


@dataclass(frozen=True, slots=True)
class Target:
    """One recipient: a channel's target (alerts.channels), and the tier it belongs to."""

    channel: str  # one of alerts.channels.CHANNELS
    address: str
    tier: int


#: A tier's field per channel, in the order a tier's recipients are listed.
TIER_FIELDS = {
    "webhook": "webhooks",
    "email": "emails",
    "slack": "slack",
    "teams": "teams",
    "pagerduty": "pagerduty",
    "opsgenie": "opsgenie",
    "sms": "sms",
}


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
    return [
        Target(channel, address, index)
        for channel, field in TIER_FIELDS.items()
        for address in getattr(tier, field)
    ]


def targets(policy: EscalationPolicy, tiers: range, *, severity: str | None = None) -> list[Target]:
    """Every recipient of the given tiers (those the policy has); with ``severity``, only of
    the tiers that hear that severity."""
    found: list[Target] = []
    for index in tiers:
        if 0 <= index < len(policy.tiers):
            tier = policy.tiers[index]
            if severity is None or tier.hears(severity):
                found.extend(_tier_targets(tier, index))
    return found


def unconfigured(policy: EscalationPolicy, channels: set[str]) -> set[str]:
    """The channels the policy names recipients on that are not configured (not queued)."""
    return {t.channel for t in targets(policy, range(len(policy.tiers)))} - channels


def shown_policy(policy: EscalationPolicy) -> dict[str, Any]:
    """The policy as people may see it (the API, the stored version's shown copy): every
    field as given, secrets masked (alerts.channels.display_target)."""
    shown = policy.model_dump(mode="json", exclude_unset=True)
    for tier in shown.get("tiers", []):
        for channel, field in TIER_FIELDS.items():
            if field in tier:
                tier[field] = [display_target(channel, t) for t in tier[field]]
    return shown
