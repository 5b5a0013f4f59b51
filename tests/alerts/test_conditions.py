"""Tests for alerts.conditions: the vectorised functions equal the reference ones; rule states."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alerts.conditions.arrays import Series, excursions_from_arrays
from alerts.conditions.history import battery_episodes, humidity_state, mkt_state
from alerts.conditions.pair import evaluate_pair
from alerts.conditions.present import forecast_state, offline_state
from alerts.conditions.states import ConditionState, Episode, state_from_episodes
from alerts.layers import resolve
from alerts.rules import BatteryRule, ForecastRule, HumidityRule, MKTRule, OfflineRule, RuleSet
from coldchain.thermal.budget import budget_from_arrays, budget_usage
from coldchain.thermal.excursions import TempLimits, detect_excursions
from coldchain.thermal.series import Point, as_arrays, sorted_unique

T0 = datetime(2026, 3, 1, 6, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)
GAP = 2 * MIN


def t(minutes: float) -> datetime:
    return T0 + minutes * MIN


def temps_series(temps: list[float], *, rh: list[float] | None = None) -> Series:
    rows = [(t(i), temp, None if rh is None else rh[i], None) for i, temp in enumerate(temps)]
    return Series.from_rows(rows)


# --------------------------------------------------------------------------------------------
# Identical to the reference implementations
# --------------------------------------------------------------------------------------------

readings = st.dictionaries(
    st.integers(0, 300),
    st.sampled_from([-3.0, -0.5, 0.0, 1.0, 2.0, 2.5, 5.0, 8.0, 8.5, 12.0, 41.0]),
    max_size=60,
)
limit_sets = st.sampled_from(
    [
        TempLimits(2.0, 8.0, 0.0, 15 * MIN, 10 * MIN),
        TempLimits(2.0, 8.0, None, 0 * MIN, 3 * MIN),
        TempLimits(None, 8.0, None, 30 * MIN, 25 * MIN),
        TempLimits(None, None, -1.0, 5 * MIN, 7 * MIN),
        TempLimits(15.0, 25.0, None, 1 * MIN, 60 * MIN),
    ]
)


def _points(data: dict[int, float]) -> list[Point]:
    return sorted_unique(Point(t(m), v) for m, v in data.items())


@settings(max_examples=300, deadline=None)
@given(readings, limit_sets, st.integers(0, 400))
def test_vectorised_excursions_equal_detect_excursions(
    data: dict[int, float], limits: TempLimits, now_min: int
) -> None:
    points = _points(data)
    t_us, temp = as_arrays(points)
    now = t(now_min)
    assert excursions_from_arrays(t_us, temp, limits, now=now) == detect_excursions(
        points, limits, now=now
    )


@settings(max_examples=300, deadline=None)
@given(
    readings,
    limit_sets,
    st.one_of(st.none(), st.integers(0, 400)),
    st.booleans(),
    st.sampled_from([0.5, 0.8, 1.0]),
    st.integers(1, 300),
)
def test_vectorised_budget_equals_budget_usage(
    data: dict[int, float],
    limits: TempLimits,
    now_min: int | None,
    gaps_out: bool,
    share: float,
    budget_min: int,
) -> None:
    points = _points(data)
    t_us, temp = as_arrays(points)
    now = None if now_min is None else t(now_min)
    budget = budget_min * MIN
    fast = budget_from_arrays(
        t_us, temp, limits, budget, count_gaps_as_out=gaps_out, warning_share=share, now=now
    )
    assert fast == budget_usage(
        points, limits, budget, count_gaps_as_out=gaps_out, warning_share=share, now=now
    )


# --------------------------------------------------------------------------------------------
# Episodes and states
# --------------------------------------------------------------------------------------------


def test_state_from_episodes_takes_pending_episodes_after_the_alerted_one() -> None:
    first = Episode(t(0), t(10), t(20), "warning", 1.0)
    second = Episode(t(30), t(40), None, "warning", 2.0)
    fresh = state_from_episodes("x", [first, second], as_of=t(50), alerted_since=None)
    assert (fresh.trigger_at, fresh.since, fresh.holding) == (t(10), t(30), True)
    # The alert took the first: the second is new.
    assert state_from_episodes(
        "x", [first, second], as_of=t(50), alerted_since=t(0)
    ).trigger_at == t(40)
    # The alert took the second (late data moved its start earlier): nothing is new.
    moved = Episode(t(28), t(40), None, "warning", 2.0)
    assert (
        state_from_episodes("x", [first, moved], as_of=t(50), alerted_since=t(30)).trigger_at
        is None
    )
    assert state_from_episodes("x", [], as_of=t(50), alerted_since=None).empty


def test_humidity_episode_needs_its_delay() -> None:
    rh = [50.0] * 10 + [90.0] * 20 + [50.0] * 10
    series = temps_series([5.0] * 40, rh=rh)
    rule = HumidityRule(max_rh=80, delay_min=15)
    state = humidity_state(series, rule, max_gap=GAP, now=t(39), alerted_since=None)
    assert state is not None
    assert (state.since, state.alarm_at, state.ended_at, state.holding) == (
        t(10),
        t(25),
        t(30),
        False,
    )
    assert state.trigger_at == t(25)
    assert state.value == 90.0
    short = HumidityRule(max_rh=80, delay_min=25)
    assert humidity_state(series, short, max_gap=GAP, now=t(39), alerted_since=None).empty  # type: ignore[union-attr]


def test_mkt_episode_over_the_judged_window() -> None:
    # Two hours at 5 °C, then 10 °C: the one-hour MKT rises above 8 °C once enough is warm.
    temps = [5.0] * 120 + [10.0] * 60
    rule = MKTRule(limit_c=8.0, window_h=1.0, min_coverage=0.9)
    state = mkt_state(temps_series(temps), rule, max_gap=GAP, now=t(179), alerted_since=None)
    assert state is not None and state.holding
    assert state.since is not None and t(150) < state.since < t(179)
    assert state.value is not None and 8.0 < state.value <= 10.0
    # Not judged before the window is covered: a warm first half hour is not an MKT breach.
    early = mkt_state(temps_series([12.0] * 30), rule, max_gap=GAP, now=t(29), alerted_since=None)
    assert early is not None and early.empty


def test_battery_has_hysteresis() -> None:
    levels = np.array([0.3, 0.19, 0.21, 0.18, 0.24, 0.26, 0.1])
    t_us = np.arange(len(levels), dtype=np.int64) * 60_000_000
    episodes = battery_episodes(t_us, levels, BatteryRule(below=0.2, hysteresis=0.05))
    # Low from the 2nd reading; 0.21 and 0.24 are not enough to recover, 0.26 is.
    assert [(e.start.minute, e.end.minute if e.end else None) for e in episodes] == [
        (1, 5),
        (6, None),
    ]
    assert episodes[0].value == 0.18


def test_offline_raises_after_its_threshold_and_clears_when_data_resumes() -> None:
    rule = OfflineRule(factor=10)
    assigned = t(-60)
    quiet = offline_state(t(0), assigned, 60, rule, now=t(9), previous=None, alerted_since=None)
    assert not quiet.holding and quiet.empty
    silent = offline_state(t(0), assigned, 60, rule, now=t(15), previous=None, alerted_since=None)
    assert silent.holding and (silent.since, silent.alarm_at, silent.trigger_at) == (
        t(0),
        t(10),
        t(10),
    )
    back = offline_state(t(16), assigned, 60, rule, now=t(17), previous=silent, alerted_since=t(0))
    assert not back.holding and (back.since, back.ended_at) == (t(0), t(16))
    # A logger that never reported is silent since its assignment began.
    never = offline_state(None, assigned, 60, rule, now=t(0), previous=None, alerted_since=None)
    assert never.holding and never.since == assigned


def test_offline_waits_for_a_backlog_and_for_the_engine_to_have_watched() -> None:
    rule = OfflineRule(factor=10)
    assigned = t(-60)

    def judge(
        last: datetime | None,
        arrived_ago: timedelta | None = None,
        watched_for: timedelta | None = None,
    ) -> ConditionState:
        return offline_state(
            last,
            assigned,
            60,
            rule,
            now=t(15),
            previous=None,
            alerted_since=None,
            arrived_ago=arrived_ago,
            watched_for=watched_for,
        )

    # Minute 0's reading is old, but it arrived a minute ago: a backlog is being delivered.
    assert not judge(t(0), arrived_ago=timedelta(minutes=1)).holding
    arrived_long_ago = judge(t(0), arrived_ago=timedelta(minutes=15))
    assert arrived_long_ago.holding and arrived_long_ago.trigger_at == t(10)  # reading time
    # A logger that never reported, judged by an engine that started a minute ago: not yet.
    assert not judge(None, watched_for=timedelta(minutes=1)).holding
    watched = judge(None, watched_for=timedelta(minutes=11))
    assert watched.holding and watched.since == assigned
    # The start-up wait does not clear "no data" that already holds (an engine restart).
    kept = offline_state(
        None,
        assigned,
        60,
        rule,
        now=t(15),
        previous=watched,
        alerted_since=assigned,
        watched_for=timedelta(seconds=5),
    )
    assert kept.holding


RAMP = TempLimits(2.0, 8.0, 0.0, 15 * MIN, GAP)


def test_forecast_predicts_a_steady_rise_and_keeps_its_episode() -> None:
    temps = [4.0 + 0.05 * i for i in range(60)]  # 3 °C/h toward 8 °C: ~21 min left
    series = temps_series(temps)
    rule = ForecastRule(horizon_min=60, model="linear")
    first = forecast_state(series, rule, RAMP, now=t(59), previous=None, alerted_since=None)
    assert first is not None and first.holding
    assert first.since == t(59) and first.value is not None and 15 < first.value < 30
    later = forecast_state(
        temps_series([*temps, 7.0]), rule, RAMP, now=t(60), previous=first, alerted_since=t(59)
    )
    assert later is not None and later.holding and later.since == t(59)
    assert later.trigger_at is None  # the same episode, already taken


def test_forecast_ignores_the_recovery_after_an_excursion() -> None:
    # Ten minutes at 12 °C then flat at 5 °C: the hour falls steeply, its recent half does not.
    temps = [12.0] * 10 + [5.0] * 50
    state = forecast_state(
        temps_series(temps), ForecastRule(), RAMP, now=t(59), previous=None, alerted_since=None
    )
    assert state is not None and not state.holding


def test_evaluate_pair_runs_every_configured_rule() -> None:
    rules = resolve(
        [
            (
                "test",
                RuleSet.model_validate(
                    {
                        "temperature": {"low_c": 2, "high_c": 8, "alarm_delay_min": 10},
                        "budget": {"hours": 0.5},
                        "humidity": {"max_rh": 80},
                        "battery": {"below": 0.2},
                    }
                ),
            )
        ]
    )
    temps = [5.0] * 10 + [9.0] * 30 + [5.0] * 20
    rows = [(t(i), v, 50.0, 0.5) for i, v in enumerate(temps)]
    result = evaluate_pair(Series.from_rows(rows), rules, max_gap=GAP, now=t(59))
    assert result.excursions is not None and len(result.excursions) == 1
    assert result.excursions[0].alarm_at == t(20)
    budget = result.states["budget"]
    # 30 min out of a 30 min budget: warning at 24 min out, exhausted at 30.
    assert (budget.since, budget.severity, budget.holding) == (t(34), "major", True)
    assert result.states["humidity"].empty and result.states["battery_low"].empty


def test_condition_state_defaults() -> None:
    s = ConditionState("x", holding=False, as_of=T0)
    assert s.empty and s.trigger_at is None


@pytest.mark.parametrize("n", [0, 1])
def test_tiny_series(n: int) -> None:
    rules = resolve(
        [("t", RuleSet.model_validate({"temperature": {"high_c": 8}, "mkt": {"limit_c": 8}}))]
    )
    result = evaluate_pair(temps_series([9.0] * n), rules, max_gap=GAP, now=t(5))
    assert result.excursions is not None and len(result.excursions) == n


def test_the_budget_counts_silence_only_until_the_assignment_ends() -> None:
    rules = resolve(
        [("t", RuleSet.model_validate({"temperature": {"high_c": 8}, "budget": {"hours": 1}}))]
    )
    series = temps_series([5.0] * 30)
    delivered = evaluate_pair(series, rules, max_gap=GAP, now=t(300), assigned_until=t(40))
    assert delivered.states["budget"].empty  # 11 min of trailing silence: no warning
    assert delivered.states["budget"].details["time_gap_h"] == pytest.approx(11 / 60)
    silent = evaluate_pair(series, rules, max_gap=GAP, now=t(300))
    assert silent.states["budget"].severity == "major"  # still assigned: unknown time counts
    # The excursion judgement is not capped: silence after the assignment ends it by a gap.
    warm = evaluate_pair(
        temps_series([9.0] * 30), rules, max_gap=GAP, now=t(300), assigned_until=t(30)
    )
    assert warm.excursions is not None and warm.excursions[0].ended_by_gap
