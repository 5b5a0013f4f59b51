"""Episodes, and the state each rule stores per (shipment, device); see :mod:`alerts.conditions`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

__all__ = ["ConditionState", "Episode", "state_from_episodes", "stopped_holding"]


@dataclass(frozen=True, slots=True)
class Episode:
    """A period in which a rule's condition held and alarmed (``end=None``: still holding)."""

    start: datetime
    alarm_at: datetime
    end: datetime | None
    severity: str
    value: float | None
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ConditionState:
    """One rule's state for one (shipment, device); see the module docstring."""

    rule_key: str
    holding: bool
    as_of: datetime
    since: datetime | None = None
    alarm_at: datetime | None = None
    ended_at: datetime | None = None
    severity: str | None = None
    value: float | None = None
    trigger_at: datetime | None = None
    details: Mapping[str, Any] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        """Nothing ever alarmed (there is nothing to store or to clear)."""
        return self.since is None


def stopped_holding(
    state: ConditionState,
    *,
    ended_at: datetime | None,
    as_of: datetime,
    rule_key: str | None = None,
) -> ConditionState:
    """``state``'s episode, no longer holding: ended at ``ended_at`` (its trigger forgotten)."""
    return ConditionState(
        rule_key=state.rule_key if rule_key is None else rule_key,
        holding=False,
        as_of=as_of,
        since=state.since,
        alarm_at=state.alarm_at,
        ended_at=ended_at,
        severity=state.severity,
        value=state.value,
        details=state.details,
    )


def state_from_episodes(
    rule_key: str,
    episodes: Sequence[Episode],
    *,
    as_of: datetime,
    alerted_since: datetime | None,
    details: Mapping[str, Any] | None = None,
) -> ConditionState:
    """The state given all alarmed episodes (time order) and the episode an alert took last.

    Episodes starting after ``alerted_since`` are new, and their earliest alarm is
    ``trigger_at``; the one that covers it is the one the alert took (late readings may have
    moved its start earlier), and earlier ones were judged before it.
    """
    extra = dict(details or {})
    if not episodes:
        return ConditionState(rule_key, holding=False, as_of=as_of, details=extra)
    latest = episodes[-1]
    pending = [e for e in episodes if alerted_since is None or e.start > alerted_since]
    return ConditionState(
        rule_key=rule_key,
        holding=latest.end is None,
        as_of=as_of,
        since=latest.start,
        alarm_at=latest.alarm_at,
        ended_at=latest.end,
        severity=latest.severity,
        value=latest.value,
        trigger_at=min((e.alarm_at for e in pending), default=None),
        details={**extra, **latest.details, "episodes": len(episodes)},
    )
