"""The shipment page's banner and badge from the figures (pure): out of range since when, for
how long, how bad; back in range; the QA state with its verdict and decision; the current
temperature against the limits in force."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from coldchain.thermal.limits import Limits
from coldchain.timeline import TimelineEntry
from dashboard.pages import fmt_ts
from dashboard.pages.shipment_banner import out_of_range, status_banner

NOW = datetime(2026, 12, 5, 19, 35, tzinfo=UTC)
LIMITS = Limits(low_c=2.0, high_c=8.0, freeze_c=0.0, alarm_delay=timedelta(minutes=10))


def excursion(**over: Any) -> dict[str, Any]:
    row = {
        "direction": "high",
        "start_ts": NOW - timedelta(minutes=28),
        "end_ts": None,
        "alarm": True,
        "min_c": 8.4,
        "max_c": 12.8,
    }
    return row | over


def banner(**over: Any) -> Any:
    args: dict[str, Any] = {
        "status": "in_transit",
        "condition": "ok",
        "excursions": [],
        "alerts": [],
        "verdicts": [],
        "decision": None,
        "current_temp_c": 5.0,
        "limits": LIMITS,
        "now": NOW,
    }
    return status_banner(**(args | over))


def test_an_open_excursion_says_since_when_how_long_and_the_peak() -> None:
    b = banner(excursions=[excursion()], alerts=[{"severity": "critical"}], current_temp_c=12.8)
    since = fmt_ts(NOW - timedelta(minutes=28))
    assert b.text == f"Out of range since {since} · 28 min · peak 12.8 °C"
    assert (b.kind, b.tone, b.label) == ("excursion", "alarm", "Out of range")


@pytest.mark.parametrize(
    ("alerts", "alarm", "tone"),
    [
        ([{"severity": "major"}], True, "alarm"),
        ([{"severity": "warning"}], True, "warning"),
        ([], False, "warning"),  # within the alarm delay: not alarmed yet
        ([], True, "alarm"),
    ],
)
def test_the_banner_is_red_or_amber_by_severity(
    alerts: list[dict[str, str]], alarm: bool, tone: str
) -> None:
    assert banner(excursions=[excursion(alarm=alarm)], alerts=alerts).tone == tone


def test_the_earliest_start_and_the_worst_peak_of_several_loggers() -> None:
    b = banner(
        excursions=[
            excursion(max_c=9.1),
            excursion(start_ts=NOW - timedelta(hours=1, minutes=5), max_c=11.0),
        ]
    )
    assert b.text.endswith(" · 1 h 5 min · peak 11.0 °C")


def test_a_low_excursion_peaks_at_its_minimum() -> None:
    assert banner(excursions=[excursion(direction="low", min_c=-0.7)]).text.endswith("peak -0.7 °C")


def test_an_ended_excursion_says_back_in_range_after_how_long() -> None:
    end = NOW - timedelta(minutes=5)
    b = banner(excursions=[excursion(start_ts=end - timedelta(minutes=62), end_ts=end)])
    assert b.text == f"Back in range since {fmt_ts(end)} after 1 h 2 min (peak 12.8 °C)"
    assert (b.kind, b.tone) == ("cleared", "warning")


def test_under_review_with_an_exception_is_not_ok() -> None:
    """The issue's case: the header said "OK" for a shipment under review with an exception."""
    verdicts = [
        {
            "verdict": "exception",
            "reasons": [{"message": "8–25 °C band: 2 h used of 1 h"}, {"message": "data gap"}],
        }
    ]
    b = banner(status="under_review", verdicts=verdicts, excursions=[excursion(end_ts=NOW)])
    assert (b.kind, b.label, b.tone) == ("qa", "Exception", "warning")
    assert b.text == (
        "Under QA review · arrival verdict: exception: 8–25 °C band: 2 h used of 1 h (and 1 more)"
    )


def test_a_signed_decision_is_shown_with_who_when_and_why() -> None:
    signed = TimelineEntry(
        NOW,
        "signed",
        "Signed: quarantine (whole shipment)",
        "Quinn Quality (quinn)",
        "review: excursion under investigation",
        "disposition",
        "alarm",
    )
    b = banner(
        status="quarantined",
        verdicts=[{"verdict": "conforming", "reasons": []}],
        decision=signed,
    )
    assert (b.label, b.tone) == ("Quarantined", "alarm")
    assert b.text == (
        f"Quarantined · arrival verdict: conforming · quarantine (whole shipment) by "
        f"Quinn Quality (quinn) on {fmt_ts(NOW)} (review: excursion under investigation)"
    )


@pytest.mark.parametrize(
    ("temp", "expected"),
    [(5.0, "In transit · 5.0 °C now, within 2–8 °C"),
     (9.1, "In transit · 9.1 °C now, outside 2–8 °C (no excursion recorded yet)")],
)  # fmt: skip
def test_in_transit_says_the_temperature_against_the_range(temp: float, expected: str) -> None:
    assert banner(current_temp_c=temp).text == expected


@pytest.mark.parametrize(
    ("temp", "side"), [(8.0, None), (8.01, "high"), (2.0, None), (1.9, "low"), (0.0, "low")]
)
def test_out_of_range_uses_the_limits_in_force(temp: float, side: str | None) -> None:
    assert out_of_range(LIMITS, temp) == side
    assert out_of_range(None, temp) is None


def test_a_start_ahead_of_now_reads_as_zero_minutes() -> None:
    """A logger whose clock runs ahead must not give a negative duration."""
    ahead = excursion(start_ts=NOW + timedelta(minutes=3))
    assert " · 0 min · " in banner(excursions=[ahead]).text
