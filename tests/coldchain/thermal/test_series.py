"""coldchain.thermal.series: the value type, ordering/duplicate rule, gaps and the step rule."""

from __future__ import annotations

import itertools
import math
from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coldchain.thermal.series import (
    Point,
    as_arrays,
    datetime_from_us,
    hold_us,
    segments,
    sorted_unique,
    to_sorted_arrays,
    to_us,
)

T0 = datetime(2024, 6, 1, 8, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)


def at(minutes: float, temp_c: float) -> Point:
    return Point(T0 + minutes * MIN, temp_c)


class TestPoint:
    def test_naive_timestamp_is_rejected(self) -> None:
        with pytest.raises(ValueError, match="timezone-aware"):
            Point(datetime(2024, 6, 1, 8, 0), 5.0)

    @pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, -273.15, -300.0])
    def test_impossible_temperature_is_rejected(self, bad: float) -> None:
        with pytest.raises(ValueError, match="temp_c"):
            Point(T0, bad)

    def test_int_temperature_becomes_float(self) -> None:
        assert isinstance(Point(T0, 5).temp_c, float)

    def test_is_frozen(self) -> None:
        p = at(0, 5.0)
        with pytest.raises(AttributeError):
            p.temp_c = 6.0  # type: ignore[misc]


class TestSortedUnique:
    def test_sorts_by_time(self) -> None:
        points = [at(20, 3.0), at(0, 1.0), at(10, 2.0)]
        assert [p.temp_c for p in sorted_unique(points)] == [1.0, 2.0, 3.0]

    def test_equal_ts_keeps_first_in_input_order(self) -> None:
        first, conflicting = at(10, 4.0), at(10, 9.0)
        result = sorted_unique([at(20, 5.0), first, at(0, 5.0), conflicting])
        assert result == [at(0, 5.0), first, at(20, 5.0)]
        # and the other way round: the *first seen* wins, not the last
        assert sorted_unique([conflicting, first])[0].temp_c == 9.0

    def test_same_instant_in_other_timezone_is_a_duplicate(self) -> None:
        cest = timezone(timedelta(hours=2))
        a = Point(T0, 5.0)
        b = Point(T0.astimezone(cest), 6.0)
        assert sorted_unique([a, b]) == [a]

    @settings(max_examples=60, deadline=None)
    @given(
        st.lists(st.tuples(st.integers(0, 30), st.floats(-30, 50, allow_nan=False)), max_size=25),
    )
    def test_arrays_follow_the_same_rule(self, rows: list[tuple[int, float]]) -> None:
        points = [at(m, t) for m, t in rows]
        t_us, temp_c = to_sorted_arrays(points)
        expected = sorted_unique(points)
        assert [datetime_from_us(int(u)) for u in t_us] == [p.ts for p in expected]
        assert temp_c.tolist() == [p.temp_c for p in expected]


class TestSegments:
    def test_splits_only_on_gaps_longer_than_max_gap(self) -> None:
        points = [at(0, 5), at(10, 5), at(20, 5), at(45, 5), at(55, 5), at(80, 5)]
        runs = segments(points, max_gap=timedelta(minutes=25))
        # 20 -> 45 is exactly 25 min: not a gap; 55 -> 80 also 25 min; nothing splits
        assert [len(r) for r in runs] == [6]
        runs = segments(points, max_gap=timedelta(minutes=24))
        assert [[p.ts for p in r] for r in runs] == [
            [at(0, 5).ts, at(10, 5).ts, at(20, 5).ts],
            [at(45, 5).ts, at(55, 5).ts],
            [at(80, 5).ts],
        ]

    def test_empty(self) -> None:
        assert segments([], max_gap=MIN) == []

    def test_unsorted_input_is_rejected(self) -> None:
        with pytest.raises(ValueError, match="strictly increasing"):
            segments([at(10, 5), at(0, 5)], max_gap=MIN)
        with pytest.raises(ValueError, match="strictly increasing"):
            segments([at(0, 5), at(0, 6)], max_gap=MIN)

    def test_non_positive_max_gap_is_rejected(self) -> None:
        with pytest.raises(ValueError, match="max_gap"):
            segments([at(0, 5)], max_gap=timedelta(0))

    @settings(max_examples=60, deadline=None)
    @given(st.sets(st.integers(0, 500), max_size=40), st.integers(1, 60))
    def test_segments_partition_the_series(self, minutes: set[int], gap_min: int) -> None:
        points = sorted_unique(at(m, 5.0) for m in minutes)
        max_gap = timedelta(minutes=gap_min)
        runs = segments(points, max_gap)
        assert [p for r in runs for p in r] == points
        for run in runs:
            assert all(b.ts - a.ts <= max_gap for a, b in itertools.pairwise(run))
        for before, after in itertools.pairwise(runs):
            assert after[0].ts - before[-1].ts > max_gap


class TestArraysAndHold:
    def test_as_arrays_exact_microseconds(self) -> None:
        p = Point(datetime(2024, 6, 1, 8, 0, 0, 123457, tzinfo=UTC), 4.5)
        t_us, temp_c = as_arrays([p])
        assert datetime_from_us(int(t_us[0])) == p.ts
        assert temp_c.tolist() == [4.5]

    def test_to_us(self) -> None:
        assert to_us(timedelta(minutes=1, microseconds=3)) == 60_000_003

    def test_hold_step_rule(self) -> None:
        t_us, _ = as_arrays([at(0, 5), at(10, 5), at(40, 5), at(50, 5)])
        held = hold_us(t_us, max_gap=timedelta(minutes=20))
        # 10 min, then the 30 min interval is a gap (0), then 10 min, then last reading (0)
        assert held.tolist() == [to_us(10 * MIN), 0, to_us(10 * MIN), 0]

    @settings(max_examples=60, deadline=None)
    @given(st.sets(st.integers(0, 1000), min_size=1, max_size=40), st.integers(1, 100))
    def test_held_plus_gap_time_is_the_span(self, minutes: set[int], gap_min: int) -> None:
        t_us, _ = as_arrays(sorted_unique(at(m, 5.0) for m in minutes))
        max_gap = timedelta(minutes=gap_min)
        dt = np.diff(t_us)
        gap_time = int(dt[dt > to_us(max_gap)].sum())
        assert int(hold_us(t_us, max_gap).sum()) + gap_time == int(t_us[-1] - t_us[0])
