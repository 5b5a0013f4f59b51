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
* A tier with ``rotation = "<name>"`` also reaches the person on call in that rotation at the
  moment of notifying (:mod:`coldchain.oncall`), by their own contacts on each channel of
  ``via``. A person without the contact a channel needs is skipped on that channel and the
  tier's other recipients are told; :func:`recipients` says so in its warnings, and the
  engine records them on the alert's timeline, where the people handling it look.
* A tier with ``severities`` hears only of alerts of those severities (say, PagerDuty for
  critical ones only); an upgrade to one of them is the first it hears.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from alerts.channels import display_target
from alerts.rules import EscalationPolicy, EscalationTier

__all__ = [
    "TIER_FIELDS",
    "Notice",
    "Person",
    "Recipients",
    "Target",
    "escalation_target",
    "recipients",
    "rotations_of",
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


@dataclass(frozen=True, slots=True)
class Person:
    """Someone on call, with how to reach them (app_users)."""

    username: str
    full_name: str
    email: str | None
    phone: str | None
    active: bool = True

    def contact(self, channel: str) -> str | None:
        """Their address on ``channel`` ("email" or "sms"), if they have one."""
        return {"email": self.email, "sms": self.phone}.get(channel)


@dataclass(frozen=True, slots=True)
class Notice:
    """Something that kept someone of ``tier`` from being told; ``nobody``: the whole tier."""

    tier: int
    text: str
    nobody: bool = False


@dataclass(frozen=True, slots=True)
class Recipients:
    """Who to tell, and what kept others from being told."""

    targets: list[Target]
    warnings: list[Notice]


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


def rotations_of(policy: EscalationPolicy, tiers: range) -> set[str]:
    """The rotations the given tiers name."""
    return {t.rotation for i, t in enumerate(policy.tiers) if i in tiers and t.rotation is not None}


def recipients(
    policy: EscalationPolicy,
    tiers: range,
    on_call: Mapping[str, Person | None],
    *,
    channels: Set[str],
    severity: str | None = None,
) -> Recipients:
    """Every recipient of the given tiers that a configured channel can reach, the person on
    call of each rotation tier included (``on_call``: per rotation name, that person or None;
    a missing name is no such rotation); with ``severity``, only the tiers that hear it. Each
    rotation channel the person cannot be reached
    on, and each tier left with nobody at all, is a warning."""
    found: list[Target] = []
    warnings: list[Notice] = []
    for index in tiers:
        if not 0 <= index < len(policy.tiers):
            continue
        tier = policy.tiers[index]
        if severity is not None and not tier.hears(severity):
            continue
        mine = [t for t in _tier_targets(tier, index) if t.channel in channels]
        if tier.rotation is not None:
            mine += _rotation_targets(tier.rotation, tier.via, index, on_call, channels, warnings)
        if not mine:
            warnings.append(
                Notice(index, f"tier {index} ({tier.name}): nobody could be notified", nobody=True)
            )
        found.extend(mine)
    return Recipients(found, warnings)


def _rotation_targets(
    rotation: str,
    via: Sequence[str],
    index: int,
    on_call: Mapping[str, Person | None],
    channels: Set[str],
    warnings: list[Notice],
) -> list[Target]:
    if rotation not in on_call:
        warnings.append(Notice(index, f"rotation {rotation!r} does not exist"))
        return []
    person = on_call[rotation]
    if person is None:
        warnings.append(Notice(index, f"rotation {rotation!r} has nobody on call now"))
        return []
    if not person.active:
        warnings.append(
            Notice(index, f"{person.username} (on call in {rotation!r}) is deactivated")
        )
        return []
    found = []
    for channel in via:
        address = person.contact(channel)
        if channel not in channels:
            warnings.append(
                Notice(
                    index, f"{channel} is not configured: {person.username} not told by {channel}"
                )
            )
        elif address is None:
            what = "e-mail address" if channel == "email" else "mobile number"
            warnings.append(
                Notice(
                    index,
                    f"{person.username} (on call in {rotation!r}) has no {what}: not told by "
                    f"{channel}; an administrator sets it on the people page",
                )
            )
        else:
            found.append(Target(channel, address, index))
    return found


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


def unconfigured(policy: EscalationPolicy, channels: Set[str]) -> set[str]:
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
