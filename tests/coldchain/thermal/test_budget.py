"""coldchain.thermal.budget: time attribution, gaps, carry-over, status and crossing times."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coldchain.thermal.budget import budget_usage
from coldchain.thermal.excursions import TempLimits, detect_excursions
from coldchain.thermal.series import Point

T0 = datetime(2024, 6, 1, 8, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)
HOUR = timedelta(hours=1)
COLD = TempLimits(low_c=2.0, high_c=8.0, freeze_c=0.0, alarm_delay=30 * MIN, max_gap=25 * MIN)


def t(minutes: float) -> datetime:
    return T0 + minutes * MIN


def every_10_min(*temps: float, start: float = 0) -> list[Point]:
    return [Point(t(start + 10 * i), temp) for i, temp in enumerate(temps)]


def test_step_rule_attribution() -> None:
    usage = budget_usage(every_10_min(5, 9, 9, 1, 5, 5), COLD, HOUR)
    # readings at 10, 20 (high) and 30 (low) each hold 10 min; the last reading holds nothing
    assert (usage.time_out, usage.time_in, usage.time_gap) == (30 * MIN, 20 * MIN, timedelta(0))
    assert usage.counted == 30 * MIN
    assert usage.remaining == 30 * MIN
    assert usage.share_used == pytest.approx(0.5)
    assert usage.status == "ok"
    assert (usage.warning_at, usage.exhausted_at) == (None, None)


def test_gap_counts_as_out_by_default() -> None:
    points = [*every_10_min(5, 9), *every_10_min(5, 5, start=60)]
    worst_case = budget_usage(points, COLD, HOUR)
    # the 9 °C reading is followed by a 50-min gap: unknown time, not "out" and not "in"
    assert (worst_case.time_out, worst_case.time_gap, worst_case.time_in) == (
        timedelta(0),
        50 * MIN,
        20 * MIN,
    )
    assert worst_case.counted == 50 * MIN
    assert worst_case.status == "warning"
    assert worst_case.warning_at == t(10) + 48 * MIN  # 80 % of 1 h reached inside the gap
    optimistic = budget_usage(points, COLD, HOUR, count_gaps_as_out=False)
    assert optimistic.counted == timedelta(0)
    assert optimistic.status == "ok"
    assert optimistic.time_gap == 50 * MIN  # still reported


def test_max_gap_defaults_to_the_limits_and_can_be_overridden() -> None:
    points = every_10_min(9, 9, 9)
    assert budget_usage(points, COLD, HOUR).time_out == 20 * MIN
    assert budget_usage(points, COLD, HOUR, max_gap=5 * MIN).time_gap == 20 * MIN


def test_crossing_times_are_interpolated_within_the_interval() -> None:
    points = every_10_min(*[9.0] * 11)  # out for 100 min
    usage = budget_usage(points, COLD, 95 * MIN)
    assert usage.status == "exhausted"
    assert usage.warning_at == t(76)  # 0.8 * 95 min
    assert usage.exhausted_at == t(95)
    assert usage.share_used == pytest.approx(100 / 95)
    assert usage.remaining == timedelta(0)


def test_carried_over_from_earlier_legs() -> None:
    usage = budget_usage(every_10_min(5, 9, 9, 9, 5), COLD, HOUR, carried_over=50 * MIN)
    assert usage.counted == 80 * MIN
    assert usage.status == "exhausted"
    assert usage.warning_at == t(0)  # already past 48 min when this leg began
    assert usage.exhausted_at == t(20)  # 10 more minutes out, from the reading at 10 min


@pytest.mark.parametrize(
    ("out_minutes", "status"),
    [(0, "ok"), (47, "ok"), (48, "warning"), (59, "warning"), (60, "exhausted"), (90, "exhausted")],
)
def test_status_thresholds(out_minutes: int, status: str) -> None:
    points = [Point(t(0), 9), Point(t(out_minutes), 5)] if out_minutes else [Point(t(0), 5)]
    limits = TempLimits(2, 8, 0, 30 * MIN, 2 * HOUR)
    assert budget_usage(points, limits, HOUR).status == status


def test_custom_warning_share() -> None:
    points = [Point(t(0), 9), Point(t(30), 5)]
    assert budget_usage(points, COLD, HOUR, max_gap=HOUR, warning_share=0.5).status == "warning"
    assert budget_usage(points, COLD, HOUR, max_gap=HOUR, warning_share=0.6).status == "ok"


def test_trailing_silence_until_now_is_a_gap() -> None:
    points = every_10_min(5, 5)
    assert budget_usage(points, COLD, HOUR, now=t(30)).time_gap == timedelta(0)  # 20 min: not yet
    usage = budget_usage(points, COLD, HOUR, now=t(70))
    assert usage.time_gap == 60 * MIN
    assert usage.exhausted_at == t(70)
    # readings after now are ignored
    assert budget_usage(every_10_min(9, 9, 9), COLD, HOUR, now=t(10)).time_out == 10 * MIN


def test_no_readings() -> None:
    usage = budget_usage([], COLD, HOUR, carried_over=HOUR)
    assert usage.status == "exhausted" and usage.exhausted_at is None
    assert budget_usage([], COLD, HOUR).status == "ok"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"budget": timedelta(0)},
        {"carried_over": -MIN},
        {"warning_share": 0.0},
        {"warning_share": 1.5},
        {"max_gap": timedelta(0)},
        {"now": datetime(2024, 6, 1)},
    ],
)
def test_bad_arguments(kwargs: dict[str, object]) -> None:
    args: dict[str, object] = {"budget": HOUR, **kwargs}
    with pytest.raises(ValueError):
        budget_usage([Point(t(0), 5)], COLD, **args)  # type: ignore[arg-type]


# --- properties -----------------------------------------------------------------------------

series = st.dictionaries(
    st.integers(0, 400), st.sampled_from([-1.0, 1.0, 2.0, 5.0, 8.0, 9.0, 30.0]), max_size=40
).map(lambda rows: [Point(t(m), temp) for m, temp in rows.items()])
max_gaps = st.integers(1, 60).map(lambda m: m * MIN)


@settings(max_examples=150, deadline=None)
@given(series, max_gaps, st.integers(0, 500), st.booleans())
def test_in_out_and_gap_time_add_up_to_the_span(
    points: list[Point], max_gap: timedelta, now_min: int, use_now: bool
) -> None:
    now = t(now_min) if use_now else None
    usage = budget_usage(points, COLD, HOUR, max_gap=max_gap, now=now)
    seen = sorted(p.ts for p in points if now is None or p.ts <= now)
    if not seen:
        assert usage.time_in + usage.time_out + usage.time_gap == timedelta(0)
        return
    end = now if now is not None and now - seen[-1] > max_gap else seen[-1]
    assert usage.time_in + usage.time_out + usage.time_gap == end - seen[0]


@settings(max_examples=150, deadline=None)
@given(series, max_gaps)
def test_time_out_is_the_total_duration_of_excursions(
    points: list[Point], max_gap: timedelta
) -> None:
    limits = TempLimits(2, 8, 0, 30 * MIN, max_gap)
    excursions = detect_excursions(points, limits, now=t(1000))
    total = sum((e.duration for e in excursions), timedelta(0))
    assert budget_usage(points, limits, HOUR).time_out == total


@settings(max_examples=100, deadline=None)
@given(series, max_gaps, st.randoms(use_true_random=False))
def test_input_order_does_not_matter(
    points: list[Point], max_gap: timedelta, rnd: random.Random
) -> None:
    shuffled = points + points[::2]
    rnd.shuffle(shuffled)
    assert budget_usage(shuffled, COLD, HOUR, max_gap=max_gap) == budget_usage(
        points, COLD, HOUR, max_gap=max_gap
    )
