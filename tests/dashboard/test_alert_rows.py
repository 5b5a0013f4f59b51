"""The alerts page's row texts (dashboard/pages/alert_rows.py): pure functions of a board row."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from dashboard.pages import fmt_ts
from dashboard.pages.alert_rows import condition_text, headers, peak_text, since_text

NOW = datetime(2026, 11, 26, 19, 40, tzinfo=UTC)
START = NOW - timedelta(minutes=33)


def row(**over: Any) -> dict[str, Any]:
    """A temperature alert still out of range, plus ``over``."""
    base: dict[str, Any] = {
        "condition": "active",
        "condition_ended_at": None,
        "condition_since": START,
        "peak_high_c": 12.8,
        "peak_low_c": None,
    }
    base.update(over)
    return base


@pytest.mark.parametrize(
    ("given", "text"),
    [
        (row(), "still out of range"),
        (row(peak_high_c=None), "condition still holds"),
        (
            row(condition="ended", condition_ended_at=NOW),
            f"back in range {fmt_ts(NOW)}, clearing",
        ),
        (row(condition="cleared", condition_ended_at=NOW), f"condition cleared {fmt_ts(NOW)}"),
        (
            row(condition="cleared", condition_ended_at=NOW, peak_high_c=None),
            f"condition cleared {fmt_ts(NOW)}",
        ),
    ],
)
def test_condition_text(given: dict[str, Any], text: str) -> None:
    assert condition_text(given) == text


def test_since_counts_until_now_or_until_the_end() -> None:
    assert since_text(row(), NOW) == f"out of range since {fmt_ts(START)} · 33 min"
    ended = row(condition="cleared", condition_ended_at=START + timedelta(minutes=5))
    assert since_text(ended, NOW) == f"out of range since {fmt_ts(START)} · 5 min"
    assert since_text(row(condition_since=None), NOW) is None


def test_peak_in_celsius_high_and_low() -> None:
    assert peak_text(row()) == "peak 12.8 °C"
    assert peak_text(row(peak_high_c=None, peak_low_c=-1.25)) == "lowest -1.2 °C"
    assert peak_text(row(peak_low_c=1.0)) == "peak 12.8 °C · lowest 1.0 °C"
    assert peak_text(row(peak_high_c=None)) is None


def test_the_actions_column_only_for_who_may_act() -> None:
    assert headers(can_act=True)[-1] == "Actions"
    assert "Actions" not in headers(can_act=False)
