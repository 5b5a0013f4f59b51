"""Tests for alerts.reminders: when an unacknowledged alert is reminded, and quiet hours."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any

import pytest

from alerts.reminders import (
    in_quiet_hours,
    quiet_hours_end,
    reminder_due,
    reminder_interval,
    reminder_step,
    shortest_interval,
)
from alerts.rules import EscalationPolicy, QuietHours, Reminders, rules_from_dict
from coldchain.errors import ConfigError
from coldchain.settings import ReminderMinutes

OPENED = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)
DEFAULTS = ReminderMinutes()  # critical 5, major 15, warning 60, info 0
# 22:00 to 07:00 in Berlin (UTC+2 in May): 20:00 to 05:00 UTC.
QUIET = QuietHours(
    start=time(22, 0), end=time(7, 0), time_zone="Europe/Berlin", severities=["info", "warning"]
)


@pytest.mark.parametrize(
    ("state", "minutes_since", "interval_min", "expected"),
    [
        ("open", 4.9, 5, False),
        ("open", 5, 5, True),
        ("open", 50, 5, True),  # an engine that was down: one reminder, not ten
        ("acknowledged", 50, 5, False),
        ("resolved", 50, 5, False),
        ("open", 50, None, False),  # no reminders for this severity
    ],
)
def test_reminder_due(
    state: str, minutes_since: float, interval_min: float | None, expected: bool
) -> None:
    interval = None if interval_min is None else timedelta(minutes=interval_min)
    now = OPENED + timedelta(minutes=minutes_since)
    assert (
        reminder_due(state=state, interval=interval, last_notified_at=OPENED, now=now) is expected
    )


def test_intervals_from_the_rules_file_else_the_settings() -> None:
    bare = EscalationPolicy()
    assert reminder_interval(bare, "critical", DEFAULTS) == timedelta(minutes=5)
    assert reminder_interval(bare, "info", DEFAULTS) is None  # 0: never
    custom = EscalationPolicy(reminders=Reminders(critical=2, major=0))
    assert reminder_interval(custom, "critical", DEFAULTS) == timedelta(minutes=2)
    assert reminder_interval(custom, "major", DEFAULTS) is None
    assert reminder_interval(custom, "warning", DEFAULTS) == timedelta(minutes=60)
    assert shortest_interval(custom, DEFAULTS) == timedelta(minutes=2)
    off = ReminderMinutes(critical=0, major=0, warning=0, info=0)
    assert shortest_interval(bare, off) is None


@pytest.mark.parametrize(
    ("utc", "severity", "quiet"),
    [
        ("19:59", "warning", False),
        ("20:00", "warning", True),  # 22:00 in Berlin
        ("23:30", "info", True),
        ("04:59", "warning", True),
        ("05:00", "warning", False),  # 07:00 in Berlin
        ("23:30", "major", False),  # not a quiet severity here
        ("23:30", "critical", False),  # never
    ],
)
def test_quiet_hours_over_midnight_in_their_time_zone(utc: str, severity: str, quiet: bool) -> None:
    h, m = map(int, utc.split(":"))
    now = OPENED.replace(hour=h, minute=m)
    assert in_quiet_hours(QUIET, severity, now) is quiet


def test_quiet_hours_end_is_the_next_end_in_local_time() -> None:
    late = OPENED.replace(hour=21)  # 23:00 in Berlin
    assert quiet_hours_end(QUIET, late) == datetime(2026, 5, 2, 5, 0, tzinfo=UTC)
    early = OPENED.replace(hour=3)  # 05:00 in Berlin
    assert quiet_hours_end(QUIET, early) == datetime(2026, 5, 1, 5, 0, tzinfo=UTC)


def _step(severity: str, now: datetime, sent: int = 0) -> Any:
    policy = EscalationPolicy(quiet_hours=QUIET)
    return reminder_step(
        policy,
        DEFAULTS,
        state="open",
        severity=severity,
        opened_at=OPENED.replace(hour=18),
        last_notified_at=OPENED.replace(hour=18),
        reminders_sent=sent,
        now=now,
    )


def test_a_reminder_due_in_quiet_hours_is_held_until_they_end_critical_never() -> None:
    night = OPENED.replace(hour=22)  # midnight in Berlin
    held = _step("warning", night, sent=1)
    assert (held.action, held.number) == ("hold", 2)
    assert held.held_until == datetime(2026, 5, 2, 5, 0, tzinfo=UTC)
    sent = _step("critical", night)
    assert (sent.action, sent.number, sent.unacknowledged) == ("send", 1, timedelta(hours=4))
    morning = datetime(2026, 5, 2, 5, 0, tzinfo=UTC)
    after = _step("warning", morning, sent=1)
    assert (after.action, after.number) == ("send", 2)
    assert _step("warning", OPENED.replace(hour=18, minute=59)) is None  # not due yet


def _policy(**quiet: Any) -> dict[str, Any]:
    q = {"start": "22:00", "end": "07:00", "time_zone": "Europe/Berlin", **quiet}
    return {"escalation": {"tiers": [{"name": "tower"}], "quiet_hours": q}}


def test_the_rules_file_takes_reminders_and_quiet_hours() -> None:
    rules = rules_from_dict(
        {**_policy(), "escalation": {**_policy()["escalation"], "reminders": {"critical": 5}}}
    )
    assert rules.escalation is not None
    assert rules.escalation.reminders == Reminders(critical=5)
    assert rules.escalation.quiet_hours == QUIET


@pytest.mark.parametrize(
    ("quiet", "words"),
    [
        ({"severities": ["warning", "critical"]}, "critical alerts are never held"),
        ({"time_zone": "Mars/Olympus"}, "not an IANA time zone"),
        ({"end": "22:00"}, "need a span"),
        ({"start": "25:00"}, "start"),
    ],
)
def test_bad_quiet_hours_are_refused_naming_the_field(quiet: dict[str, Any], words: str) -> None:
    with pytest.raises(ConfigError) as err:
        rules_from_dict(_policy(**quiet), source="rules.toml")
    assert "rules.toml" in str(err.value)
    assert "quiet_hours" in str(err.value)
    assert words in str(err.value)


def test_reminder_minutes_are_bounded_and_named() -> None:
    with pytest.raises(ConfigError, match=r"reminders\.major"):
        rules_from_dict({"escalation": {"reminders": {"major": -1}}})
    with pytest.raises(ConfigError, match=r"reminders"):
        rules_from_dict({"escalation": {"reminders": {"urgent": 5}}})
