"""The weeks of the weekly lane quality report (pure).

A report week is an ISO week, Monday 00:00 to the next Monday 00:00, UTC. A subscription is due
the report of the last *complete* week before ``now`` until one was sent for it: the sender
(:mod:`services.lane_reports`) records each week it sent, at most once per subscription.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta


@dataclass(frozen=True, slots=True)
class Week:
    """An ISO week: from ``start`` (a Monday, 00:00 UTC) for seven days."""

    start: datetime

    @property
    def end(self) -> datetime:
        return self.start + timedelta(days=7)

    @property
    def label(self) -> str:
        """``2026-W05``."""
        year, week, _ = self.start.isocalendar()
        return f"{year}-W{week:02d}"


def week_of(day: date) -> Week:
    """The week ``day`` falls in."""
    monday = day - timedelta(days=day.weekday())
    return Week(datetime.combine(monday, time(0), tzinfo=UTC))


def last_complete_week(now: datetime) -> Week:
    """The latest week that ended at or before ``now``."""
    return Week(week_of(now.astimezone(UTC).date()).start - timedelta(days=7))


def parse_week(text: str) -> Week:
    """``2026-W05`` (or a date in the week, ``2026-01-28``) as a week; ValueError naming the
    forms accepted."""
    value = text.strip()
    try:
        if "-W" in value.upper():
            year, _, week = value.upper().partition("-W")
            return Week(
                datetime.combine(date.fromisocalendar(int(year), int(week), 1), time(0), tzinfo=UTC)
            )
        return week_of(date.fromisoformat(value))
    except ValueError:
        raise ValueError(
            f"week {text!r}: give an ISO week (2026-W05) or a date in it (2026-01-28)"
        ) from None
