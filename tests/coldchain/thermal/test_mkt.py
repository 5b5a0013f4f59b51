"""coldchain.thermal.mkt: hand-computed MKT, its properties, accumulators and rolling windows."""

from __future__ import annotations

import math
import random
import time
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coldchain.thermal.mkt import (
    DEFAULT_DELTA_H_J_MOL,
    R_J_MOL_K,
    MKTAccumulator,
    Weighting,
    mkt,
    rolling_mkt,
    time_weighted_mean,
)
from coldchain.thermal.series import Point

T0 = datetime(2024, 6, 1, 8, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)
HOUR = timedelta(hours=1)
STEP, TRAPEZOID = Weighting.STEP, Weighting.TRAPEZOID


def t(minutes: float) -> datetime:
    return T0 + minutes * MIN


def by_hand(weighted: list[tuple[float, float]], delta_h: float = DEFAULT_DELTA_H_J_MOL) -> float:
    """USP formula written out directly: weighted (weight, °C) pairs -> MKT °C."""
    c = delta_h / R_J_MOL_K
    total = sum(w for w, _ in weighted)
    mean_term = sum(w * math.exp(-c / (temp + 273.15)) for w, temp in weighted) / total
    return c / -math.log(mean_term) - 273.15


class TestHandComputed:
    def test_delta_h_over_r_is_10000_kelvin(self) -> None:
        ratio = DEFAULT_DELTA_H_J_MOL / R_J_MOL_K
        assert ratio == pytest.approx(10_000.0, rel=1e-12)

    def test_two_readings_equal_weights_trapezoid(self) -> None:
        # the trapezoid gives both ends half of the one interval: equal weights
        expected = 10_000 / -math.log((math.exp(-10_000 / 275.15) + math.exp(-10_000 / 281.15)) / 2)
        result = mkt([Point(t(0), 2), Point(t(60), 8)], weighting=TRAPEZOID, max_gap=2 * HOUR)
        assert result is not None
        assert result.mkt_c == pytest.approx(expected - 273.15, abs=1e-9)
        assert 5.0 < result.mkt_c < 8.0  # above the arithmetic mean, below the max

    def test_step_equal_intervals(self) -> None:
        points = [Point(t(0), 2), Point(t(60), 8), Point(t(120), 30)]  # last one holds 0 time
        result = mkt(points, weighting=STEP, max_gap=2 * HOUR)
        assert result is not None
        assert result.mkt_c == pytest.approx(by_hand([(1, 2), (1, 8)]), abs=1e-9)
        assert result.duration_covered == 2 * HOUR
        assert result.n_readings == 3
        assert (result.window_start, result.window_end) == (t(0), t(120))

    def test_step_irregular_intervals_are_time_weighted(self) -> None:
        points = [Point(t(0), 2), Point(t(30), 8), Point(t(120), 5)]
        result = mkt(points, weighting=STEP, max_gap=2 * HOUR)
        assert result is not None
        assert result.mkt_c == pytest.approx(by_hand([(30, 2), (90, 8)]), abs=1e-9)

    def test_trapezoid_irregular_intervals(self) -> None:
        points = [Point(t(0), 2), Point(t(30), 8), Point(t(120), 5)]
        result = mkt(points, weighting=TRAPEZOID, max_gap=2 * HOUR)
        assert result is not None
        # reading weights (Δ before + Δ after) / 2 = 15, 60, 45
        assert result.mkt_c == pytest.approx(by_hand([(15, 2), (60, 8), (45, 5)]), abs=1e-9)

    def test_time_in_a_gap_is_not_credited(self) -> None:
        # the 25 °C reading is followed by a 90-min gap: it gets no weight under STEP
        points = [Point(t(0), 5), Point(t(10), 25), Point(t(100), 5), Point(t(110), 5)]
        result = mkt(points, weighting=STEP, max_gap=25 * MIN)
        assert result is not None
        assert result.mkt_c == pytest.approx(by_hand([(10, 5), (10, 5)]), abs=1e-9)
        assert result.duration_covered == 20 * MIN
        # under TRAPEZOID the 25 °C reading still shares the interval before it
        trap = mkt(points, weighting=TRAPEZOID, max_gap=25 * MIN)
        assert trap is not None
        assert trap.mkt_c == pytest.approx(by_hand([(5, 5), (5, 25), (10, 5)]), abs=1e-9)

    def test_result_records_its_parameters(self) -> None:
        result = mkt(
            [Point(t(0), 5), Point(t(10), 6)],
            weighting=TRAPEZOID,
            max_gap=HOUR,
            delta_h_j_mol=100_000,
        )
        assert result is not None
        assert (result.weighting, result.delta_h_j_mol, result.max_gap) == (
            TRAPEZOID,
            100_000,
            HOUR,
        )
        assert result.mkt_c == pytest.approx(by_hand([(1, 5), (1, 6)], delta_h=100_000), abs=1e-9)

    @pytest.mark.parametrize(
        "points",
        [[], [Point(t(0), 5)], [Point(t(0), 5), Point(t(120), 6)]],
        ids=["empty", "one reading", "only a gap"],
    )
    def test_no_covered_time_gives_none(self, points: list[Point]) -> None:
        assert mkt(points, weighting=STEP, max_gap=HOUR) is None
        assert time_weighted_mean(points, weighting=STEP, max_gap=HOUR) is None

    def test_time_weighted_mean(self) -> None:
        points = [Point(t(0), 2), Point(t(30), 8), Point(t(120), 5)]
        assert time_weighted_mean(points, weighting=STEP, max_gap=2 * HOUR) == pytest.approx(6.5)
        two = [Point(t(0), 2), Point(t(60), 8)]
        assert time_weighted_mean(two, weighting=TRAPEZOID, max_gap=HOUR) == pytest.approx(5.0)

    def test_huge_activation_energy_does_not_underflow(self) -> None:
        # exp(-ΔH/RT) underflows to 0 in a naive sum here; the log-domain sum does not
        points = [Point(t(m), 4.0 + (m % 3)) for m in range(0, 60, 10)]
        result = mkt(points, weighting=STEP, max_gap=HOUR, delta_h_j_mol=1e7)
        assert result is not None and math.isfinite(result.mkt_c)
        assert 4.0 <= result.mkt_c <= 6.0

    def test_bad_parameters(self) -> None:
        with pytest.raises(ValueError, match="delta_h"):
            mkt([], weighting=STEP, max_gap=HOUR, delta_h_j_mol=0)
        with pytest.raises(ValueError, match="max_gap"):
            mkt([], weighting=STEP, max_gap=timedelta(0))


class TestAccumulator:
    def test_adding_one_by_one_equals_one_pass(self) -> None:
        points = [Point(t(m), 5 + math.sin(m)) for m in (0, 7, 15, 60, 61, 70, 200, 205)]
        acc = MKTAccumulator.empty(weighting=TRAPEZOID, max_gap=30 * MIN)
        for p in points:
            acc = acc.add(p)
        one_pass = MKTAccumulator.from_points(points, weighting=TRAPEZOID, max_gap=30 * MIN)
        assert (acc.n_readings, acc.weight_us, acc.first, acc.last) == (
            one_pass.n_readings,
            one_pass.weight_us,
            one_pass.first,
            one_pass.last,
        )
        assert acc.log_sum == pytest.approx(one_pass.log_sum, rel=1e-14)

    def test_merge_in_either_order_and_empty_is_identity(self) -> None:
        a = MKTAccumulator.from_points(
            [Point(t(0), 3), Point(t(10), 4)], weighting=STEP, max_gap=HOUR
        )
        b = MKTAccumulator.from_points(
            [Point(t(20), 9), Point(t(30), 4)], weighting=STEP, max_gap=HOUR
        )
        empty = MKTAccumulator.empty(weighting=STEP, max_gap=HOUR)
        assert a.merge(b) == b.merge(a)
        assert a.merge(empty) == a == empty.merge(a)
        # the boundary interval 10 -> 20 min belongs to the 4 °C reading under STEP
        result = a.merge(b).result()
        assert result is not None
        assert result.mkt_c == pytest.approx(by_hand([(1, 3), (1, 4), (1, 9)]), abs=1e-9)

    def test_overlapping_parts_cannot_merge(self) -> None:
        a = MKTAccumulator.from_points(
            [Point(t(0), 3), Point(t(20), 4)], weighting=STEP, max_gap=HOUR
        )
        b = MKTAccumulator.from_points(
            [Point(t(10), 9), Point(t(30), 4)], weighting=STEP, max_gap=HOUR
        )
        with pytest.raises(ValueError, match="overlap"):
            a.merge(b)
        with pytest.raises(ValueError, match="overlap"):
            a.add(Point(t(20), 5))

    def test_different_parameters_cannot_merge(self) -> None:
        a = MKTAccumulator.empty(weighting=STEP, max_gap=HOUR)
        with pytest.raises(ValueError, match="different"):
            a.merge(MKTAccumulator.empty(weighting=TRAPEZOID, max_gap=HOUR))
        with pytest.raises(ValueError, match="different"):
            a.merge(MKTAccumulator.empty(weighting=STEP, max_gap=HOUR, delta_h_j_mol=1e5))


class TestRolling:
    def test_windows_by_hand(self) -> None:
        points = [Point(t(m), temp) for m, temp in [(0, 2), (60, 8), (120, 5), (180, 5)]]
        frame = rolling_mkt(points, 2 * HOUR, weighting=STEP, max_gap=2 * HOUR)
        assert list(frame.columns) == ["mkt_c", "duration_covered", "n_readings", "window_start"]
        assert math.isnan(frame["mkt_c"].iloc[0])  # one reading covers no time
        assert frame["mkt_c"].iloc[1] == pytest.approx(2.0, abs=1e-9)
        # the window ending at 120 min includes the reading at exactly 0 min
        assert frame["mkt_c"].iloc[2] == pytest.approx(by_hand([(1, 2), (1, 8)]), abs=1e-9)
        assert frame["n_readings"].tolist() == [1, 2, 3, 3]
        assert frame["window_start"].iloc[3] == pd.Timestamp(t(60))
        assert frame["duration_covered"].iloc[3] == pd.Timedelta(2 * HOUR)
        assert frame.index[3] == pd.Timestamp(t(180))
        assert frame.attrs == {
            "delta_h_j_mol": DEFAULT_DELTA_H_J_MOL,
            "weighting": "step",
            "window": 2 * HOUR,
            "max_gap": 2 * HOUR,
        }

    def test_series_input_matches_points(self) -> None:
        points = [Point(t(m), 5 + 3 * math.sin(m / 7)) for m in range(0, 300, 5)]
        series = pd.Series(
            [p.temp_c for p in points], index=pd.DatetimeIndex([p.ts for p in points])
        )
        from_points = rolling_mkt(points, HOUR, weighting=TRAPEZOID, max_gap=30 * MIN)
        from_series = rolling_mkt(series, HOUR, weighting=TRAPEZOID, max_gap=30 * MIN)
        pd.testing.assert_frame_equal(from_points, from_series)

    def test_series_needs_timezone_aware_index(self) -> None:
        naive = pd.Series([5.0, 6.0], index=pd.date_range("2024-01-01", periods=2, freq="min"))
        with pytest.raises(ValueError, match="timezone-aware"):
            rolling_mkt(naive, HOUR, weighting=STEP, max_gap=HOUR)

    def test_empty(self) -> None:
        assert rolling_mkt([], HOUR, weighting=STEP, max_gap=HOUR).empty

    @pytest.mark.parametrize("delta_h", [1e7, 3e7])
    def test_extreme_dynamic_range_matches_brute_force(self, delta_h: float) -> None:
        # Arrhenius terms 350 (1e7) and 1000 (3e7) e-folds apart: the first defeats prefix-sum
        # subtraction (direct re-summing), the second underflows exp (log-domain re-summing).
        # A burst of 1-min readings makes the blocks long, so cold windows sit between hot
        # readings of the same block.
        burst = [Point(t(i), 30.0) for i in range(40)]
        points = burst + [Point(t(40 + 10 * i), 30.0 if i % 14 < 6 else 5.0) for i in range(60)]
        frame = rolling_mkt(points, HOUR, weighting=STEP, max_gap=HOUR, delta_h_j_mol=delta_h)
        assert frame["mkt_c"].iloc[1:].between(5.0 - 1e-9, 30.0 + 1e-9).all()
        assert_matches_brute_force(points, frame, HOUR, STEP, HOUR, delta_h=delta_h)

    def test_one_and_a_half_million_points(self) -> None:
        n = 1_440_000
        rng = np.random.default_rng(7)
        index = pd.date_range("2024-01-01", periods=n, freq="min", tz="UTC")
        temps = 5 + 3 * np.sin(np.arange(n) / 500) + rng.normal(0, 0.3, n)
        temps[rng.integers(0, n, 200)] += 20  # door openings
        keep = np.ones(n, dtype=bool)
        keep[rng.integers(0, n, 5000)] = False  # dropped readings, some making gaps
        series = pd.Series(temps[keep], index=index[keep])
        started = time.perf_counter()
        frame = rolling_mkt(series, 24 * HOUR, weighting=STEP, max_gap=3 * MIN)
        elapsed = time.perf_counter() - started
        assert len(frame) == keep.sum()
        assert elapsed < 10, f"rolling_mkt took {elapsed:.1f} s for 1.44M points"
        for j in (1, 1440, 700_000, len(frame) - 1):
            window = series.iloc[max(0, j - 1441) : j + 1]
            window = window[window.index >= window.index[-1] - pd.Timedelta(hours=24)]
            points = [Point(ts.to_pydatetime(), float(v)) for ts, v in window.items()]
            expected = mkt(points, weighting=STEP, max_gap=3 * MIN)
            assert expected is not None
            assert frame["mkt_c"].iloc[j] == pytest.approx(expected.mkt_c, abs=1e-9)
            assert frame["n_readings"].iloc[j] == expected.n_readings


def assert_matches_brute_force(
    points: list[Point],
    frame: pd.DataFrame,
    window: timedelta,
    weighting: Weighting,
    max_gap: timedelta,
    delta_h: float = DEFAULT_DELTA_H_J_MOL,
) -> None:
    unique = {p.ts: p for p in reversed(points)}  # first in input order wins
    for ts, row in frame.iterrows():
        assert isinstance(ts, pd.Timestamp)
        end = ts.to_pydatetime()
        inside = [p for p in unique.values() if end - window <= p.ts <= end]
        expected = mkt(inside, weighting=weighting, max_gap=max_gap, delta_h_j_mol=delta_h)
        assert row["n_readings"] == len(inside)
        if expected is None:
            assert math.isnan(row["mkt_c"])
        else:
            assert row["mkt_c"] == pytest.approx(expected.mkt_c, abs=1e-9)
            assert row["duration_covered"] == pd.Timedelta(expected.duration_covered)
            assert row["window_start"] == pd.Timestamp(expected.window_start)


# --- properties -----------------------------------------------------------------------------

series_st = st.dictionaries(
    st.integers(0, 2000), st.floats(-25, 45, allow_nan=False), max_size=40
).map(lambda rows: [Point(t(m), temp) for m, temp in rows.items()])
weighting_st = st.sampled_from([STEP, TRAPEZOID])
max_gap_st = st.integers(1, 240).map(lambda m: m * MIN)


@settings(max_examples=100, deadline=None)
@given(
    st.floats(-40, 60, allow_nan=False),
    st.lists(st.integers(1, 600), min_size=1, max_size=50),
    weighting_st,
    st.sampled_from([40_000.0, DEFAULT_DELTA_H_J_MOL, 250_000.0]),
)
def test_mkt_of_a_constant_series_is_that_constant(
    temp_c: float, steps: list[int], weighting: Weighting, delta_h: float
) -> None:
    minutes = np.cumsum([0, *steps])
    points = [Point(t(int(m)), temp_c) for m in minutes]
    result = mkt(points, weighting=weighting, max_gap=300 * MIN, delta_h_j_mol=delta_h)
    if all(s > 300 for s in steps):
        assert result is None
    else:
        assert result is not None
        assert result.mkt_c == pytest.approx(temp_c, abs=1e-9)


@settings(max_examples=150, deadline=None)
@given(series_st, weighting_st, max_gap_st)
def test_mkt_is_at_least_the_time_weighted_mean(
    points: list[Point], weighting: Weighting, max_gap: timedelta
) -> None:
    result = mkt(points, weighting=weighting, max_gap=max_gap)
    mean = time_weighted_mean(points, weighting=weighting, max_gap=max_gap)
    assert (result is None) == (mean is None)
    if result is not None and mean is not None:
        assert result.mkt_c >= mean - 1e-9
        assert min(p.temp_c for p in points) - 1e-9 <= result.mkt_c
        assert result.mkt_c <= max(p.temp_c for p in points) + 1e-9


@settings(max_examples=150, deadline=None)
@given(series_st, weighting_st, max_gap_st, st.data())
def test_splitting_and_merging_equals_one_pass(
    points: list[Point], weighting: Weighting, max_gap: timedelta, data: st.DataObject
) -> None:
    ordered = sorted(points, key=lambda p: p.ts)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(ordered)), max_size=4)))
    parts = [ordered[a:b] for a, b in zip([0, *cuts], [*cuts, len(ordered)], strict=True)]
    accumulators = [
        MKTAccumulator.from_points(p, weighting=weighting, max_gap=max_gap) for p in parts
    ]
    # Merge neighbours in a random association order and argument order.
    rnd = data.draw(st.randoms(use_true_random=False))
    while len(accumulators) > 1:
        i = rnd.randrange(len(accumulators) - 1)
        left, right = accumulators[i], accumulators[i + 1]
        pair = left.merge(right) if rnd.random() < 0.5 else right.merge(left)
        accumulators[i : i + 2] = [pair]
    merged = accumulators[0]
    one_pass = MKTAccumulator.from_points(points, weighting=weighting, max_gap=max_gap)
    assert (merged.n_readings, merged.weight_us) == (one_pass.n_readings, one_pass.weight_us)
    merged_result, one_result = merged.result(), one_pass.result()
    assert (merged_result is None) == (one_result is None)
    if merged_result is not None and one_result is not None:
        assert merged_result.mkt_c == pytest.approx(one_result.mkt_c, abs=1e-9)
        assert merged_result.duration_covered == one_result.duration_covered


@settings(max_examples=100, deadline=None)
@given(series_st, weighting_st, max_gap_st, st.randoms(use_true_random=False))
def test_input_order_does_not_matter(
    points: list[Point], weighting: Weighting, max_gap: timedelta, rnd: random.Random
) -> None:
    shuffled = points + points[:3]
    rnd.shuffle(shuffled)
    # exact re-uploads and arrival order change nothing, not even the last bit
    assert mkt(shuffled, weighting=weighting, max_gap=max_gap) == mkt(
        points, weighting=weighting, max_gap=max_gap
    )


@settings(max_examples=80, deadline=None)
@given(series_st, weighting_st, max_gap_st, st.integers(1, 600).map(lambda m: m * MIN))
def test_rolling_equals_brute_force_per_window(
    points: list[Point], weighting: Weighting, max_gap: timedelta, window: timedelta
) -> None:
    frame = rolling_mkt(points, window, weighting=weighting, max_gap=max_gap)
    assert len(frame) == len({p.ts for p in points})
    assert_matches_brute_force(points, frame, window, weighting, max_gap)
