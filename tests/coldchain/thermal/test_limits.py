"""The pure core of limits and offline (coldchain/thermal/limits.py), with numbers."""

from __future__ import annotations

import ast
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from coldchain.thermal.limits import (
    Limits,
    is_offline,
    limits_from_json,
    limits_from_rule,
    offline_threshold,
    strictest,
    temperature_limits,
)

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def test_a_rule_without_any_threshold_has_no_limits() -> None:
    assert limits_from_rule(low_c=None, high_c=None, freeze_c=None, alarm_delay_min=5) is None
    assert limits_from_json(None) is None and limits_from_json({}) is None


def test_limits_of_a_merged_temperature_rule() -> None:
    got = limits_from_json(
        {"low_c": 3.0, "high_c": 6.5, "freeze_c": 0.5, "alarm_delay_min": 5.0}, ["a", "b"]
    )
    assert got == Limits(3.0, 6.5, 0.5, timedelta(minutes=5), ("a", "b"))
    assert got.as_json() == {
        "low_c": 3.0,
        "high_c": 6.5,
        "freeze_c": 0.5,
        "alarm_delay_s": 300.0,
        "sources": ["a", "b"],
    }
    # a freeze limit inside the range is left out: the range judges those readings
    inside = limits_from_rule(low_c=2.0, high_c=8.0, freeze_c=3.0, alarm_delay_min=0)
    assert inside is not None and inside.freeze_c is None


def test_a_loggers_excursion_limits_are_the_shipments_with_its_gap() -> None:
    """temperature_limits keeps every threshold and adds the logger's gap length, nothing else."""
    limits = Limits(2.0, 8.0, -0.5, timedelta(minutes=30), ("settings", "rules.toml: defaults"))
    judged = temperature_limits(limits, timedelta(minutes=10))
    assert (judged.low_c, judged.high_c, judged.freeze_c) == (2.0, 8.0, -0.5)
    assert judged.alarm_delay == timedelta(minutes=30)
    assert judged.max_gap == timedelta(minutes=10)
    only_high = temperature_limits(Limits(None, 25.0, None, timedelta(0)), timedelta(seconds=90))
    assert (only_high.low_c, only_high.high_c, only_high.freeze_c) == (None, 25.0, None)
    assert only_high.max_gap == timedelta(seconds=90)


limits_st = st.builds(
    lambda low, width, freeze_below, delay: Limits(
        low,
        None if width is None else (low if low is not None else 0.0) + width,
        None if freeze_below is None or low is None else low - freeze_below,
        timedelta(minutes=delay),
    ),
    st.one_of(st.none(), st.floats(-30, 30)),
    st.one_of(st.none(), st.floats(0.5, 30)),
    st.one_of(st.none(), st.floats(0.5, 10)),
    st.integers(0, 120),
)


def _out(limits: Limits, t: float) -> bool:
    return (limits.low_c is not None and t < limits.low_c) or (
        limits.high_c is not None and t > limits.high_c
    )


@given(st.lists(limits_st, min_size=1, max_size=4), st.floats(-50, 60))
def test_the_strictest_combination_is_out_whenever_any_is(limits: list[Limits], t: float) -> None:
    combined = strictest(limits)
    assert combined is not None
    if any(_out(x, t) for x in limits):
        assert _out(combined, t)
    assert combined.alarm_delay == min(x.alarm_delay for x in limits)


def test_strictest_of_equal_or_missing_limits() -> None:
    one = Limits(2.0, 8.0, 0.0, timedelta(minutes=15), ("x",))
    assert strictest([one, one, None]) is one
    assert strictest([None, None]) is None and strictest([]) is None


@pytest.mark.parametrize(
    ("silent", "expected"),
    [
        (timedelta(minutes=3), False),  # past 2 × the interval: a gap, not offline
        (timedelta(minutes=10), False),  # exactly the threshold: not yet
        (timedelta(minutes=10, seconds=1), True),
    ],
)
def test_offline_is_silence_longer_than_the_factor_times_the_interval(
    silent: timedelta, expected: bool
) -> None:
    assert is_offline(NOW - silent, interval_s=60, factor=10, now=NOW) is expected


def test_offline_counts_from_the_assignment_when_nothing_was_seen_since() -> None:
    assigned = NOW - timedelta(minutes=5)
    assert not is_offline(
        None, since=assigned, interval_s=60, factor=2, now=assigned + timedelta(minutes=2)
    )
    assert is_offline(None, since=assigned, interval_s=60, factor=2, now=NOW)
    # a reading before the assignment does not count as heard from in it
    assert is_offline(NOW - timedelta(hours=1), since=assigned, interval_s=60, factor=2, now=NOW)
    assert is_offline(None, interval_s=60, factor=10, now=NOW)  # never heard of


def test_a_rules_minutes_override_the_factor() -> None:
    assert offline_threshold(60, factor=10) == timedelta(minutes=10)
    assert offline_threshold(60, factor=10, minutes=3) == timedelta(minutes=3)
    assert offline_threshold(60, factor=None) == timedelta(minutes=1)


def test_the_thermal_core_imports_nothing_above_coldchain() -> None:
    package = Path(__file__).resolve().parents[3] / "coldchain" / "thermal"
    modules = sorted(package.glob("*.py"))
    # The moved modules must be found, or the check below would pass on nothing.
    assert {"series.py", "excursions.py", "mkt.py", "budget.py", "forecast.py", "limits.py"} <= {
        m.name for m in modules
    }
    for module in modules:
        tree = ast.parse(module.read_text("utf-8"))
        for node in ast.walk(tree):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom) and node.level == 0
                else []
            )
            for name in names:
                top = name.split(".")[0]
                assert top not in {
                    "alerts", "api", "dashboard", "db", "ingest", "reports", "security",
                    "simulator", "traceability",
                }, f"{module.name} imports {name}"  # fmt: skip
