"""The stability verdict (coldchain/thermal/stability.py), with numbers: each reason, the figures,
the profile's validation, and properties of the time accounting and of freeze–thaw counting."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alerts.budget import budget_usage
from alerts.excursions import TempLimits
from alerts.mkt import Weighting, mkt
from alerts.series import Point
from coldchain.thermal.stability import (
    Allowance,
    StabilityProfile,
    Verdict,
    evaluate,
    freeze_thaw_transitions,
)

T0 = datetime(2026, 3, 1, 6, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)
HOUR = timedelta(hours=1)
MAX_GAP = 25 * MIN

WARM = Allowance(8, 25, 72 * HOUR)
COOL = Allowance(0, 2, 12 * HOUR)
PROFILE = StabilityProfile(2.0, 8.0, (WARM, COOL), max_freeze_thaw_cycles=1)


def every_10_min(*temps: float, start: float = 0) -> list[Point]:
    return [Point(T0 + (start + 10 * i) * MIN, temp) for i, temp in enumerate(temps)]


def at_end(points: list[Point]) -> datetime:
    """``now`` at the last reading: no trailing gap."""
    return max(p.ts for p in points)


def judge(points: list[Point], profile: StabilityProfile = PROFILE, **kwargs: Any) -> Verdict:
    """The verdict with the test's max_gap, as of the last reading unless ``now`` is given."""
    kwargs.setdefault("now", at_end(points) if points else T0)
    return evaluate(profile, points, max_gap=MAX_GAP, **kwargs)


def codes(verdict: Verdict) -> list[str]:
    return [r.code for r in verdict.reasons]


# ---- conforming, and each reason on its own --------------------------------------------------


def test_a_series_inside_the_storage_range_is_conforming() -> None:
    verdict = judge(every_10_min(*[5.0] * 13))
    assert verdict.outcome == "conforming" and verdict.conforming
    assert verdict.reasons == ()
    assert verdict.time_in_range == 2 * HOUR
    assert [b.used for b in verdict.bands] == [timedelta(0), timedelta(0)]
    assert [b.share for b in verdict.bands] == [0.0, 0.0]


def test_time_in_bands_within_their_budgets_is_conforming() -> None:
    # 3 readings at 12 °C (30 min in 8–25), 2 at 1 °C (20 min in 0–2), then back in range
    verdict = judge(every_10_min(5, 12, 12, 12, 1, 1, 5))
    assert verdict.outcome == "conforming"
    warm, cool = verdict.bands
    assert (warm.time_in_band, cool.time_in_band) == (30 * MIN, 20 * MIN)
    assert warm.share == pytest.approx(30 / (72 * 60))
    assert verdict.time_outside == 50 * MIN and verdict.time_uncovered == timedelta(0)


def test_a_band_over_its_budget_is_an_exception_with_its_figures() -> None:
    profile = StabilityProfile(2, 8, (Allowance(8, 25, HOUR), COOL))
    points = every_10_min(5, *[12.0] * 8, 5)  # 80 min at 12 °C
    verdict = judge(points, profile)
    assert verdict.outcome == "exception"
    assert codes(verdict) == ["band_budget_exceeded"]
    reason = verdict.reasons[0]
    assert reason.band == "8..25"
    assert reason.message == "8–25 °C band: 1 h 20 min used of 1 h"
    warm = verdict.bands[0]
    assert (warm.used, warm.remaining, warm.exceeded) == (80 * MIN, timedelta(0), True)
    assert warm.share == pytest.approx(80 / 60)


def test_a_budget_used_exactly_is_not_exceeded() -> None:
    profile = StabilityProfile(2, 8, (Allowance(8, 25, HOUR),))
    verdict = judge(every_10_min(5, *[12.0] * 6, 5), profile)  # 60 min at 12 °C
    assert verdict.bands[0].used == HOUR
    assert verdict.outcome == "conforming"


def test_carried_over_time_counts_against_its_band() -> None:
    points = every_10_min(5, 12, 12, 5)  # 20 min in 8–25
    verdict = judge(points, carried_over={"8..25": 71 * HOUR + 50 * MIN})
    assert verdict.bands[0].used == 72 * HOUR + 10 * MIN
    assert verdict.bands[0].carried_over == 71 * HOUR + 50 * MIN
    assert codes(verdict) == ["band_budget_exceeded"]
    assert "(incl. 71 h 50 min carried over)" in verdict.reasons[0].message


def test_carried_over_must_name_a_band_of_the_profile() -> None:
    with pytest.raises(ValueError, match=r"carried_over\['8\.\.30'\].*8\.\.25, 0\.\.2"):
        judge(every_10_min(5, 5), carried_over={"8..30": HOUR})
    with pytest.raises(ValueError, match=r"carried_over\['0\.\.2'\] must not be negative"):
        judge(every_10_min(5, 5), carried_over={"0..2": -MIN})


def test_a_zero_budget_means_never() -> None:
    profile = StabilityProfile(2, 8, (Allowance(None, 0, timedelta(0)),))
    assert judge(every_10_min(5, 5), profile).bands[0].share is None
    verdict = judge(every_10_min(5, -3, 5), profile)
    assert codes(verdict) == ["band_budget_exceeded"]
    assert verdict.reasons[0].message == "below 0 °C band: 10 min used of 0 min"
    assert verdict.bands[0].share is None


def test_time_outside_the_range_in_no_band_is_an_exception() -> None:
    points = every_10_min(5, 30, 30, 5)  # 30 °C: above the 8–25 band
    verdict = judge(points)
    assert codes(verdict) == ["outside_allowances"]
    assert verdict.time_uncovered == 20 * MIN
    assert verdict.reasons[0].message == (
        "20 min outside the storage range (2–8 °C) in no allowed band"
    )


def test_band_edges_are_half_open_and_the_storage_range_wins() -> None:
    # 8.0 is in the (inclusive) storage range, 25.0 is outside the [8, 25) band, 2.0 in range
    verdict = judge(every_10_min(8.0, 2.0, 25.0, 5))
    assert verdict.time_in_range == 20 * MIN
    assert verdict.bands[0].time_in_band == timedelta(0)
    assert verdict.time_uncovered == 10 * MIN
    assert codes(verdict) == ["outside_allowances"]


def test_a_data_gap_is_an_exception_and_counts_against_every_band() -> None:
    points = [*every_10_min(5, 5), *every_10_min(5, 5, start=70)]  # 60 min gap
    verdict = judge(points)
    assert verdict.time_gap == HOUR
    assert codes(verdict) == ["data_gap"]
    assert [b.used for b in verdict.bands] == [HOUR, HOUR]
    optimistic = judge(points, count_gaps_as_out=False)
    assert optimistic.outcome == "conforming"
    assert optimistic.time_gap == HOUR and [b.used for b in optimistic.bands] == [timedelta(0)] * 2


def test_silence_until_now_is_a_trailing_gap() -> None:
    points = every_10_min(5, 5, 5)
    verdict = judge(points, now=at_end(points) + 2 * HOUR)
    assert verdict.time_gap == 2 * HOUR
    assert verdict.span_end == at_end(points) + 2 * HOUR
    assert codes(verdict) == ["data_gap"]
    # within max_gap of the last reading, the device is not silent yet
    assert judge(points, now=at_end(points) + MAX_GAP).outcome == "conforming"


def test_readings_after_now_are_ignored() -> None:
    points = every_10_min(5, 5, 5, 30, 30)
    verdict = judge(points, now=T0 + 20 * MIN)
    assert verdict.outcome == "conforming" and verdict.n_readings == 3


def test_too_many_freeze_thaw_cycles() -> None:
    points = every_10_min(5, -1, 1, 5, -1, 5)  # frozen twice, thawed twice
    profile = StabilityProfile(None, None, max_freeze_thaw_cycles=1)
    verdict = judge(points, profile)
    assert (verdict.freeze_thaw_transitions, verdict.freeze_thaw_cycles) == (4, 2)
    assert codes(verdict) == ["freeze_thaw_cycles"]
    assert verdict.reasons[0].message == (
        "2 freeze–thaw cycles (at 0 °C, 4 transitions) of 1 allowed"
    )
    assert judge(points[:4], profile).outcome == "conforming"  # one cycle
    carried = judge(points[:4], profile, carried_cycles=1)
    assert carried.freeze_thaw_cycles == 2 and codes(carried) == ["freeze_thaw_cycles"]


def test_arriving_frozen_counts_as_a_cycle() -> None:
    profile = StabilityProfile(None, None, max_freeze_thaw_cycles=0)
    verdict = judge(every_10_min(5, 5, -2), profile)
    assert (verdict.freeze_thaw_transitions, verdict.freeze_thaw_cycles) == (1, 1)
    assert codes(verdict) == ["freeze_thaw_cycles"]


def test_noise_around_the_freeze_limit_is_one_cycle_not_dozens() -> None:
    noise = [0.1 if i % 2 else -0.1 for i in range(40)]
    assert freeze_thaw_transitions([4.0, *noise, 4.0]) == 2
    # without hysteresis every sign change of the noise is a transition (the first one freezes)
    assert freeze_thaw_transitions([4.0, *noise, 4.0], thaw_hysteresis_c=0) == len(noise)


def test_a_freeze_thaw_limit_of_none_is_not_judged() -> None:
    profile = StabilityProfile(None, None)
    verdict = judge(every_10_min(5, -1, 5, -1, 5), profile)
    assert verdict.freeze_thaw_cycles == 2 and verdict.outcome == "conforming"


def test_mkt_above_its_limit() -> None:
    points = every_10_min(5, 9, 9, 9, 9, 9, 9, 5)
    profile = StabilityProfile(None, None, mkt_limit_c=8.0)
    verdict = judge(points, profile)
    expected = mkt(points, weighting=Weighting.STEP, max_gap=MAX_GAP)
    assert expected is not None and verdict.mkt is not None
    assert verdict.mkt.mkt_c == pytest.approx(expected.mkt_c)
    assert codes(verdict) == ["mkt_above_limit"]
    assert f"MKT {expected.mkt_c:.2f} °C above its limit of 8 °C" in verdict.reasons[0].message
    lenient = StabilityProfile(None, None, mkt_limit_c=expected.mkt_c + 0.01)
    assert judge(points, lenient).outcome == "conforming"


def test_mkt_uses_the_products_delta_h() -> None:
    points = every_10_min(2, 15, 2, 15, 2)
    low, high = (
        judge(points, StabilityProfile(None, None, delta_h_j_mol=dh)).mkt
        for dh in (50_000.0, 150_000.0)
    )
    assert low is not None and high is not None and high.mkt_c > low.mkt_c


def test_mkt_unknown_when_no_time_is_covered() -> None:
    profile = StabilityProfile(None, None, mkt_limit_c=25.0)
    verdict = judge([Point(T0, 5.0)], profile)
    assert verdict.mkt is None and codes(verdict) == ["mkt_unknown"]


def test_open_excursions_passed_in_are_exceptions() -> None:
    later, earlier = T0 + HOUR, T0
    verdict = judge(every_10_min(5, 5), open_excursions=[("high", later), ("low", earlier)])
    assert codes(verdict) == ["open_excursion", "open_excursion"]
    assert verdict.open_excursions == (("low", earlier), ("high", later))
    assert (
        verdict.reasons[0].message == f"a low excursion since {earlier.isoformat()} is still open"
    )
    with pytest.raises(ValueError, match=r"open_excursions\[0\]: direction"):
        judge(every_10_min(5, 5), open_excursions=[("hot", T0)])
    with pytest.raises(ValueError, match=r"open_excursions\[1\] must be an excursion key"):
        judge(every_10_min(5, 5), open_excursions=[("high", T0), ("high", "2026-03-01")])
    with pytest.raises(ValueError, match=r"open_excursions\[0\]\.start must be timezone-aware"):
        judge(every_10_min(5, 5), open_excursions=[("high", datetime(2026, 3, 1))])


def test_no_readings_is_an_exception() -> None:
    verdict = judge([])
    assert codes(verdict) == ["no_readings"]
    assert verdict.first_reading is None and verdict.mkt is None


def test_several_reasons_are_all_given() -> None:
    profile = StabilityProfile(2, 8, (Allowance(8, 25, 10 * MIN),), max_freeze_thaw_cycles=0)
    points = [*every_10_min(5, 12, 12, -2, 5), *every_10_min(5, 5, start=100)]
    verdict = judge(points, profile, open_excursions=[("high", T0)])
    assert codes(verdict) == [
        "band_budget_exceeded",
        "outside_allowances",
        "data_gap",
        "freeze_thaw_cycles",
        "open_excursion",
    ]


# ---- serialisation ----------------------------------------------------------------------------


def test_to_dict_is_plain_json_with_the_band_figures() -> None:
    verdict = judge(every_10_min(5, 12, 12, 1, 5), carried_over={"0..2": HOUR})
    data = json.loads(json.dumps(verdict.to_dict()))
    assert data["outcome"] == "conforming" and data["reasons"] == []
    assert [b["key"] for b in data["bands"]] == ["8..25", "0..2"]
    warm, cool = data["bands"]
    assert (warm["label"], warm["time_in_band_s"], warm["budget_s"]) == ("8–25 °C", 1200, 259200)
    assert (cool["used_s"], cool["carried_over_s"]) == (4200, 3600)
    assert cool["share"] == pytest.approx(4200 / 43200)
    assert data["first_reading"] == T0.isoformat()
    assert data["mkt"]["weighting"] == "step"
    exception = judge(every_10_min(5, 30, 5)).to_dict()
    assert exception["reasons"][0]["code"] == "outside_allowances"
    assert json.loads(json.dumps(exception)) == exception


# ---- the profile's validation -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Allowance(25, 8, HOUR), r"Allowance\.low_c \(25\.0\) must be below high_c"),
        (lambda: Allowance(8, 25, -HOUR), r"Allowance\.budget must not be negative"),
        (lambda: Allowance(float("nan"), 25, HOUR), r"Allowance\.low_c must be a finite"),
        (lambda: StabilityProfile(8, 2), r"storage_low_c \(8\.0\) must be below storage_high_c"),
        (
            lambda: StabilityProfile(2, 8, (Allowance(8, 25, HOUR), Allowance(20, 30, HOUR))),
            r"allowances\[1\] \(20–30 °C\) overlaps allowances\[0\] \(8–25 °C\)",
        ),
        (
            lambda: StabilityProfile(2, 8, (Allowance(0, 2, HOUR), Allowance(None, 1, HOUR))),
            r"allowances\[0\] \(0–2 °C\) overlaps allowances\[1\] \(below 1 °C\)",
        ),
        (lambda: StabilityProfile(2, 8, max_freeze_thaw_cycles=-1), r"max_freeze_thaw_cycles"),
        (lambda: StabilityProfile(2, 8, max_freeze_thaw_cycles=1.5), r"max_freeze_thaw_cycles"),  # type: ignore[arg-type]
        (lambda: StabilityProfile(2, 8, thaw_hysteresis_c=-0.1), r"thaw_hysteresis_c"),
        (lambda: StabilityProfile(2, 8, mkt_limit_c=float("inf")), r"mkt_limit_c must be a finite"),
        (lambda: StabilityProfile(2, 8, delta_h_j_mol=0), r"delta_h_j_mol must be a positive"),
    ],
)
def test_a_bad_profile_is_refused_naming_the_field(make, message) -> None:
    with pytest.raises(ValueError, match=message):
        make()


def test_bands_may_touch_and_come_in_any_order() -> None:
    profile = StabilityProfile(2, 8, (Allowance(8, 25, HOUR), Allowance(None, 8, HOUR)))
    assert [a.key for a in profile.allowances] == ["8..25", "..8"]
    assert [a.label for a in profile.allowances] == ["8–25 °C", "below 8 °C"]
    assert Allowance(25, None, HOUR).label == "25 °C and above"


def test_evaluate_checks_its_arguments() -> None:
    with pytest.raises(ValueError, match="now must be timezone-aware"):
        evaluate(PROFILE, [], now=datetime(2026, 3, 1), max_gap=MAX_GAP)
    with pytest.raises(ValueError, match="max_gap must be a positive duration"):
        evaluate(PROFILE, [], now=T0, max_gap=timedelta(0))
    with pytest.raises(ValueError, match="carried_cycles"):
        evaluate(PROFILE, [], now=T0, max_gap=MAX_GAP, carried_cycles=-1)


# ---- properties --------------------------------------------------------------------------------

temps = st.floats(min_value=-30, max_value=45, allow_nan=False)
steps = st.integers(min_value=1, max_value=60)  # minutes between readings, some over MAX_GAP
bands = st.lists(
    st.tuples(st.integers(-30, 45), st.integers(1, 20), st.integers(0, 600)), max_size=4
)


def _series(draw_temps: list[float], draw_steps: list[int]) -> list[Point]:
    ts, points = T0, []
    for temp, step in zip(draw_temps, draw_steps, strict=False):
        points.append(Point(ts, temp))
        ts += step * MIN
    return points


def _profile(raw_bands: list[tuple[int, int, int]]) -> StabilityProfile:
    allowances: list[Allowance] = []
    taken: list[tuple[int, int]] = []
    for low, width, budget_min in raw_bands:
        if any(low < high and other_low < low + width for other_low, high in taken):
            continue  # keep the drawn bands disjoint
        taken.append((low, low + width))
        allowances.append(Allowance(low, low + width, budget_min * MIN))
    return StabilityProfile(2.0, 8.0, tuple(allowances), max_freeze_thaw_cycles=3)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(temps, min_size=1, max_size=40),
    st.lists(steps, min_size=40, max_size=40),
    bands,
    st.integers(min_value=0, max_value=180),
)
def test_time_adds_up_to_the_span_and_agrees_with_the_budget(
    draw_temps: list[float], draw_steps: list[int], raw_bands: list[tuple[int, int, int]], tail: int
) -> None:
    points = _series(draw_temps, draw_steps)
    profile = _profile(raw_bands)
    now = at_end(points) + tail * MIN
    verdict = evaluate(profile, points, now=now, max_gap=MAX_GAP)
    in_bands = sum((b.time_in_band for b in verdict.bands), timedelta(0))
    assert verdict.first_reading is not None and verdict.span_end is not None
    assert (
        verdict.time_in_range + in_bands + verdict.time_uncovered + verdict.time_gap
        == verdict.span_end - verdict.first_reading
    )
    assert verdict.time_uncovered >= timedelta(0)
    # the storage-range split is the stability budget's, to the microsecond
    budget = budget_usage(points, TempLimits(2.0, 8.0, None, MIN, MAX_GAP), HOUR, now=now)
    assert (verdict.time_in_range, verdict.time_outside, verdict.time_gap) == (
        budget.time_in,
        budget.time_out,
        budget.time_gap,
    )
    assert (verdict.outcome == "conforming") == (verdict.reasons == ())


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.floats(min_value=2, max_value=8), min_size=1, max_size=40),
    st.lists(st.integers(min_value=1, max_value=25), min_size=40, max_size=40),
)
def test_a_series_inside_the_storage_range_without_gaps_is_always_conforming(
    draw_temps: list[float], draw_steps: list[int]
) -> None:
    points = _series(draw_temps, draw_steps)
    verdict = evaluate(
        StabilityProfile(2.0, 8.0, (WARM, COOL), max_freeze_thaw_cycles=0),
        points,
        now=at_end(points),
        max_gap=MAX_GAP,
    )
    assert verdict.outcome == "conforming", verdict.reasons


@settings(max_examples=100, deadline=None)
@given(st.lists(temps, min_size=1, max_size=30), st.randoms(use_true_random=False))
def test_input_order_does_not_matter(draw_temps: list[float], rnd: random.Random) -> None:
    points = every_10_min(*draw_temps)
    shuffled = points[:]
    rnd.shuffle(shuffled)
    now = at_end(points)
    assert evaluate(PROFILE, shuffled, now=now, max_gap=MAX_GAP) == evaluate(
        PROFILE, points, now=now, max_gap=MAX_GAP
    )


@given(st.lists(st.floats(min_value=-0.4, max_value=0.5), max_size=50))
def test_noise_within_the_hysteresis_adds_at_most_one_transition(noise: list[float]) -> None:
    # Started thawed: after the first freeze, nothing below freeze_c + hysteresis can thaw it.
    assert freeze_thaw_transitions([5.0, *noise]) <= 1
    # ... and a return to 5 °C completes at most one cycle
    assert freeze_thaw_transitions([5.0, *noise, 5.0]) in (0, 2)
