"""coldchain.thermal.excursions: hand-computed excursions, gaps, alarms, and order independence."""

from __future__ import annotations

import itertools
import math
import random
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coldchain.thermal.excursions import Excursion, Gap, TempLimits, detect_excursions, find_gaps
from coldchain.thermal.series import Point

T0 = datetime(2024, 6, 1, 8, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)
# Controlled cold, 10-min logging, gap after 25 min, alarm after 30 min.
COLD = TempLimits(low_c=2.0, high_c=8.0, freeze_c=0.0, alarm_delay=30 * MIN, max_gap=25 * MIN)


def t(minutes: float) -> datetime:
    return T0 + minutes * MIN


def every_10_min(*temps: float, start: float = 0) -> list[Point]:
    return [Point(t(start + 10 * i), temp) for i, temp in enumerate(temps)]


def only(excursions: list[Excursion]) -> Excursion:
    assert len(excursions) == 1, excursions
    return excursions[0]


class TestHandComputed:
    def test_simple_high_excursion(self) -> None:
        points = every_10_min(5, 5, 9, 9.5, 10, 9, 5, 5)
        e = only(detect_excursions(points, COLD, now=t(200)))
        assert (e.direction, e.limit_c) == ("high", 8.0)
        assert (e.start, e.end, e.last_out_ts) == (t(20), t(60), t(50))
        assert e.duration == 40 * MIN
        assert (e.min_c, e.max_c, e.n_readings) == (9.0, 10.0, 4)
        # each reading held 10 min: (1 + 1.5 + 2 + 1) °C * 10 min
        assert e.degree_minutes == pytest.approx(55.0)
        assert (e.readings_over_40, e.readings_freezing) == (0, 0)
        assert not (e.ended_by_gap or e.starts_after_gap or e.is_open)
        assert e.key == ("high", t(20))

    def test_degree_minutes_of_a_rectangle(self) -> None:
        # 10 °C for 30 min against an 8 °C limit: 2 °C * 30 min
        points = [Point(t(0), 10), Point(t(15), 10), Point(t(30), 5)]
        e = only(detect_excursions(points, COLD, now=t(30)))
        assert e.duration == 30 * MIN
        assert e.degree_minutes == pytest.approx(60.0)

    @pytest.mark.parametrize(
        ("temps", "alarm_at_min"),
        [
            # out at 20, 30, 40, 50: the 50-min reading is the first 30 min after start
            ((5, 5, 9, 9, 9, 9, 9, 5), 50),
            # out at 20, 30, 40, back in at 50: 30 min measured to the closing reading
            ((5, 5, 9, 9, 9, 5), 50),
            # out at 20, 30, back in at 40: only 20 min, no alarm
            ((5, 5, 9, 9, 5), None),
        ],
    )
    def test_alarm_delay(self, temps: tuple[float, ...], alarm_at_min: int | None) -> None:
        e = only(detect_excursions(every_10_min(*temps), COLD, now=t(100)))
        assert e.alarm is (alarm_at_min is not None)
        assert e.alarm_at == (None if alarm_at_min is None else t(alarm_at_min))
        assert not e.freeze_alarm

    def test_zero_alarm_delay_alarms_at_start(self) -> None:
        limits = TempLimits(2, 8, 0, timedelta(0), 25 * MIN)
        e = only(detect_excursions(every_10_min(5, 9, 5), limits, now=t(20)))
        assert e.alarm_at == t(10)

    def test_freezing_alarms_immediately(self) -> None:
        points = every_10_min(5, 1.5, -0.5, 1, 5)
        e = only(detect_excursions(points, COLD, now=t(40)))
        assert (e.direction, e.start, e.end) == ("low", t(10), t(40))
        assert e.duration == 30 * MIN
        assert e.freeze_alarm and e.alarm
        # the delay would be reached only at 40; the freezing reading at 20 alarms at once
        assert e.alarm_at == t(20)
        assert e.readings_freezing == 1
        # (2 - 1.5) * 10 + (2 - -0.5) * 10 + (2 - 1) * 10
        assert e.degree_minutes == pytest.approx(40.0)

    def test_short_freeze_alarms_although_shorter_than_delay(self) -> None:
        e = only(detect_excursions(every_10_min(5, -1, 5), COLD, now=t(20)))
        assert e.duration == 10 * MIN < COLD.alarm_delay
        assert e.alarm and e.freeze_alarm and e.alarm_at == t(10)

    def test_without_freeze_limit_zero_degrees_is_counted_but_does_not_alarm(self) -> None:
        limits = TempLimits(2, 8, None, 30 * MIN, 25 * MIN)
        e = only(detect_excursions(every_10_min(5, -1, 5), limits, now=t(20)))
        assert e.readings_freezing == 1
        assert not e.alarm and not e.freeze_alarm

    def test_freeze_limit_without_low_limit(self) -> None:
        room = TempLimits(None, 25, 0, 30 * MIN, 25 * MIN)
        e = only(detect_excursions(every_10_min(20, -2, 20), room, now=t(20)))
        assert (e.direction, e.limit_c, e.freeze_alarm) == ("low", 0.0, True)
        assert e.degree_minutes == pytest.approx(20.0)  # 2 °C below 0 °C for 10 min
        # a cold but not freezing reading is in range for this product
        assert detect_excursions(every_10_min(20, 1, 20), room, now=t(20)) == []

    def test_readings_over_40(self) -> None:
        room = TempLimits(15, 25, None, 30 * MIN, 25 * MIN)
        e = only(detect_excursions(every_10_min(20, 41, 45, 30, 40, 20), room, now=t(50)))
        assert (e.readings_over_40, e.max_c, e.n_readings) == (2, 45.0, 4)

    def test_direction_change_ends_one_and_starts_the_other(self) -> None:
        high, low = detect_excursions(every_10_min(9, 9, 1, 1, 5), COLD, now=t(40))
        assert (high.direction, high.start, high.end) == ("high", t(0), t(20))
        assert (low.direction, low.start, low.end) == ("low", t(20), t(40))

    def test_boundaries_are_in_range(self) -> None:
        assert detect_excursions(every_10_min(2, 8, 2, 8), COLD, now=t(30)) == []


class TestGaps:
    def test_gap_splits_an_excursion(self) -> None:
        points = [*every_10_min(9, 9, 9), *every_10_min(9, 9, 5, start=60)]
        first, second = detect_excursions(points, COLD, now=t(80))
        assert (first.start, first.end, first.last_out_ts) == (t(0), t(20), t(20))
        assert first.ended_by_gap and not first.starts_after_gap
        assert first.duration == 20 * MIN
        assert first.degree_minutes == pytest.approx(20.0)  # the gap is not credited
        assert (second.start, second.end) == (t(60), t(80))
        assert second.starts_after_gap and not second.ended_by_gap
        # neither part reaches 30 min on its own
        assert not first.alarm and not second.alarm

    def test_interval_of_exactly_max_gap_is_not_a_gap(self) -> None:
        points = [Point(t(0), 9), Point(t(25), 9), Point(t(30), 5)]
        e = only(detect_excursions(points, COLD, now=t(30)))
        assert (e.start, e.end, e.ended_by_gap) == (t(0), t(30), False)

    def test_open_excursion(self) -> None:
        points = every_10_min(5, 9, 9, 9)
        e = only(detect_excursions(points, COLD, now=t(35)))
        assert e.is_open and e.end is None and not e.ended_by_gap
        assert e.duration == 20 * MIN  # to the last reading, not to now

    def test_silent_device_ends_the_excursion_by_gap(self) -> None:
        points = every_10_min(5, 9, 9, 9)
        e = only(detect_excursions(points, COLD, now=t(30) + 25 * MIN + timedelta(seconds=1)))
        assert not e.is_open and e.ended_by_gap and e.end == t(30)

    def test_readings_after_now_are_ignored(self) -> None:
        points = every_10_min(5, 9, 9, 9, 5)
        e = only(detect_excursions(points, COLD, now=t(30)))
        assert e.is_open and e.last_out_ts == t(30)

    def test_find_gaps(self) -> None:
        points = [Point(t(m), 5) for m in (0, 10, 60, 70, 71)]
        assert find_gaps(points, 25 * MIN) == [Gap(t(10), t(60))]
        gaps = find_gaps(points, 25 * MIN, now=t(200))
        assert gaps == [Gap(t(10), t(60)), Gap(t(71), t(200), open=True)]
        assert gaps[1].duration == 129 * MIN
        assert find_gaps(points, 25 * MIN, now=t(80)) == [Gap(t(10), t(60))]


class TestValidation:
    @pytest.mark.parametrize(
        "kwargs",
        [
            {"low_c": 8.0, "high_c": 8.0},
            {"low_c": 2.0, "freeze_c": 2.0},
            {"alarm_delay": -MIN},
            {"max_gap": timedelta(0)},
            {"high_c": math.nan},
        ],
    )
    def test_bad_limits(self, kwargs: dict[str, object]) -> None:
        base: dict[str, object] = {
            "low_c": 2.0,
            "high_c": 8.0,
            "freeze_c": 0.0,
            "alarm_delay": 30 * MIN,
            "max_gap": 25 * MIN,
        }
        with pytest.raises(ValueError, match="TempLimits"):
            TempLimits(**{**base, **kwargs})  # type: ignore[arg-type]

    def test_naive_now(self) -> None:
        with pytest.raises(ValueError, match="now"):
            detect_excursions([], COLD, now=datetime(2024, 6, 1))

    def test_no_readings(self) -> None:
        assert detect_excursions([], COLD, now=T0) == []
        assert find_gaps([], 25 * MIN, now=T0) == []


# --- properties -----------------------------------------------------------------------------

temps = st.one_of(
    st.sampled_from([-3.0, 0.0, 1.0, 2.0, 5.0, 8.0, 8.5, 12.0, 41.0]),
    st.floats(-5, 45, allow_nan=False),
)
series = st.dictionaries(st.integers(0, 400), temps, max_size=40).map(
    lambda rows: [Point(t(m), temp) for m, temp in rows.items()]
)
limits = st.builds(
    TempLimits,
    low_c=st.sampled_from([None, 2.0]),
    high_c=st.sampled_from([None, 8.0]),
    freeze_c=st.sampled_from([None, 0.0, -1.0]),
    alarm_delay=st.integers(0, 60).map(lambda m: m * MIN),
    max_gap=st.integers(1, 40).map(lambda m: m * MIN),
)


@settings(max_examples=150, deadline=None)
@given(series, limits, st.randoms(use_true_random=False))
def test_any_arrival_order_gives_the_same_excursions(
    points: list[Point], lim: TempLimits, rnd: random.Random
) -> None:
    now = t(500)
    expected = detect_excursions(points, lim, now=now)
    # late, out-of-order delivery, exact re-uploads, and another timezone for the same instants
    cest = timezone(timedelta(hours=2))
    shuffled = [Point(p.ts.astimezone(cest), p.temp_c) for p in points] + points[: len(points) // 3]
    rnd.shuffle(shuffled)
    assert detect_excursions(shuffled, lim, now=now) == expected


@settings(max_examples=150, deadline=None)
@given(series, limits)
def test_excursion_invariants(points: list[Point], lim: TempLimits) -> None:
    found = detect_excursions(points, lim, now=t(500))
    out = [p for p in points if lim.classify(p.temp_c) is not None]
    assert sum(e.n_readings for e in found) == len(out)
    assert len({e.key for e in found}) == len(found)
    for before, after in itertools.pairwise(found):
        assert before.end is not None and before.end <= after.start
    for e in found:
        assert e.start <= e.last_out_ts
        assert e.duration == (e.end or e.last_out_ts) - e.start
        assert e.alarm == (e.duration >= lim.alarm_delay or e.freeze_alarm)
        assert (e.alarm_at is not None) == e.alarm
        # held time equals duration, so degree-minutes lie between min and max distance * duration
        distances = [abs(p.temp_c - e.limit_c) for p in out if e.start <= p.ts <= e.last_out_ts]
        minutes = e.duration / MIN
        assert min(distances) * minutes - 1e-9 <= e.degree_minutes
        assert e.degree_minutes <= max(distances) * minutes + 1e-9


@settings(max_examples=150, deadline=None)
@given(series, limits, st.integers(0, 400))
def test_late_readings_do_not_change_finished_excursions(
    points: list[Point], lim: TempLimits, cut: int
) -> None:
    """An excursion that had ended in the data seen so far is unchanged by later data."""
    earlier = [p for p in points if p.ts <= t(cut)]
    before = detect_excursions(earlier, lim, now=t(cut))
    after = {e.key: e for e in detect_excursions(points, lim, now=t(500))}
    for e in before:
        if e.end is not None:
            assert after[e.key] == e
