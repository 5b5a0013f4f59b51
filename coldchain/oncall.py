"""On-call rotations: who is on call at an instant, and the next hand-overs.

Pure functions of a rotation, its members, its overrides and the instant asked about; the
rows come from ``oncall_rotations``, ``oncall_members`` and ``oncall_overrides``
(db/migrations/0026_oncall_flood.sql), read by :mod:`db.queries.oncall`. The services, the API,
the dashboard and the rules engine (an escalation tier with ``rotation = "<name>"``) all ask
these functions, so "who is on call now" has one definition.

A rotation hands over every ``shift_days`` days at ``handover_time`` *local* time in its
``time_zone``, counted from ``start_date`` (the first member's first shift begins then): a
09:00 hand-over stays at 09:00 on the wall clock across a DST change, so the shift that spans
the change is an hour shorter or longer. A hand-over time that does not exist on the day the
clocks go forward (02:30 in Europe/Berlin on the last Sunday of March) falls at the same
wall-clock reading before the change, i.e. an hour later in real time (Python's ``fold=0``); one
that happens twice when the clocks go back is the first of the two. Before ``start_date`` the
rotation has nobody on call (the escalation says so visibly rather than guessing).

An override (someone else on call from ``starts_at`` until ``ends_at``) wins over the rotation
while it lasts; when overrides overlap, the one created last wins.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

__all__ = [
    "Override",
    "Rotation",
    "Shift",
    "handover_at",
    "shift_index",
    "upcoming_shifts",
    "who_is_on_call",
]


@dataclass(frozen=True, slots=True)
class Rotation:
    """A rotation's schedule (its members are given separately, in turn order)."""

    name: str
    team: str
    time_zone: str
    handover_time: time
    shift_days: int
    start_date: date

    @classmethod
    def of(cls, row: Mapping[str, Any]) -> Rotation:
        """A rotation row (``oncall_rotations``, db.queries.oncall) as these functions take it."""
        return cls(
            name=row["name"],
            team=row["team"],
            time_zone=row["time_zone"],
            handover_time=row["handover_time"],
            shift_days=row["shift_days"],
            start_date=row["start_date"],
        )


@dataclass(frozen=True, slots=True)
class Override:
    """Someone on call instead of the rotation's member, from ``starts_at`` until ``ends_at``."""

    username: str
    starts_at: datetime
    ends_at: datetime
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Shift:
    """One scheduled shift: who, from the hand-over at ``starts_at`` until the next one."""

    username: str
    starts_at: datetime
    ends_at: datetime


def handover_at(rotation: Rotation, index: int) -> datetime:
    """The instant (UTC) shift number ``index`` begins (0: the first, at ``start_date``)."""
    day = rotation.start_date + timedelta(days=index * rotation.shift_days)
    local = datetime.combine(day, rotation.handover_time, tzinfo=ZoneInfo(rotation.time_zone))
    return local.astimezone(UTC)


def shift_index(rotation: Rotation, at: datetime) -> int:
    """The number of the shift under way at ``at`` (negative before ``start_date``)."""
    local_day = at.astimezone(ZoneInfo(rotation.time_zone)).date()
    index = (local_day - rotation.start_date).days // rotation.shift_days
    # The local date puts ``at`` in this shift or its neighbour (before or after the day's
    # hand-over); compare with the real hand-over instants to settle which.
    while handover_at(rotation, index) > at:
        index -= 1
    while handover_at(rotation, index + 1) <= at:
        index += 1
    return index


def _override_at(overrides: Sequence[Override], at: datetime) -> Override | None:
    active = [o for o in overrides if o.starts_at <= at < o.ends_at]
    return active[-1] if active else None


def who_is_on_call(
    rotation: Rotation, members: Sequence[str], overrides: Sequence[Override], at: datetime
) -> str | None:
    """The username on call at ``at``: an override's person while it lasts, else the member
    whose turn it is; None before the rotation starts or when it has no members.

    ``overrides`` in the order they were created (the last one created wins an overlap).
    """
    override = _override_at(overrides, at)
    if override is not None:
        return override.username
    if not members:
        return None
    index = shift_index(rotation, at)
    if index < 0:
        return None
    return members[index % len(members)]


def upcoming_shifts(
    rotation: Rotation, members: Sequence[str], at: datetime, count: int
) -> list[Shift]:
    """The shift under way at ``at`` and the next ones, ``count`` in all (none without members).

    The scheduled member of each; overrides are shown beside them, not folded in, so that the
    page says both who would be on call and who stands in.
    """
    if not members or count <= 0:
        return []
    first = max(shift_index(rotation, at), 0)
    return [
        Shift(
            members[i % len(members)],
            handover_at(rotation, i),
            handover_at(rotation, i + 1),
        )
        for i in range(first, first + count)
    ]
