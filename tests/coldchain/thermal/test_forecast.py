"""Tests for coldchain.thermal.forecast: predicted breaches from linear and exponential trends."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coldchain.thermal.excursions import TempLimits
from coldchain.thermal.forecast import forecast_breach
from coldchain.thermal.series import Point

NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)
HOUR = timedelta(hours=1)
COLD = TempLimits(low_c=2.0, high_c=8.0, freeze_c=0.0, alarm_delay=30 * MIN, max_gap=15 * MIN)


def ramp(now_c: float, c_per_h: float, *, minutes: int = 60, every: int = 5) -> list[Point]:
    """Readings every ``every`` minutes over the last ``minutes``, ending at NOW with now_c."""
    return [Point(NOW - m * MIN, now_c - c_per_h * m / 60) for m in range(minutes, -1, -every)]


def test_linear_ramp_predicts_breach_in_three_hours() -> None:
    fc = forecast_breach(ramp(5.0, 1.0), COLD, now=NOW)
    assert fc is not None
    assert (fc.direction, fc.limit_c, fc.model) == ("high", 8.0, "linear")
    assert fc.slope_c_per_h == pytest.approx(1.0)
    assert fc.minutes_to_breach == pytest.approx(180.0, abs=0.01)
    assert fc.predicted_breach_at is not None
    assert abs(fc.predicted_breach_at - (NOW + 3 * HOUR)) < timedelta(seconds=1)
    assert (fc.n_points, fc.fit_start, fc.fit_end, fc.as_of) == (13, NOW - HOUR, NOW, NOW)


def test_falling_ramp_predicts_low_breach() -> None:
    fc = forecast_breach(ramp(5.0, -1.5), COLD, now=NOW)
    assert fc is not None
    assert (fc.direction, fc.limit_c) == ("low", 2.0)
    assert fc.minutes_to_breach == pytest.approx(120.0, abs=0.01)


def test_falling_toward_freezing_without_low_limit() -> None:
    room = TempLimits(None, 25.0, 0.0, 30 * MIN, 15 * MIN)
    fc = forecast_breach(ramp(3.0, -2.0), room, now=NOW)
    assert fc is not None
    assert (fc.direction, fc.limit_c) == ("low", 0.0)
    assert fc.minutes_to_breach == pytest.approx(90.0, abs=0.01)


def test_flat_series_predicts_nothing() -> None:
    fc = forecast_breach(ramp(5.0, 0.0), COLD, now=NOW)
    assert fc is not None
    assert fc.predicted_breach_at is None and fc.minutes_to_breach is None
    assert fc.direction is None and fc.limit_c is None
    assert fc.slope_c_per_h == pytest.approx(0.0, abs=1e-9)


def test_slow_drift_below_min_slope_predicts_nothing() -> None:
    fc = forecast_breach(ramp(5.0, 0.05), COLD, now=NOW)
    assert fc is not None and fc.predicted_breach_at is None
    fc = forecast_breach(ramp(5.0, 0.05), COLD, now=NOW, min_slope_c_per_h=0.01, horizon=100 * HOUR)
    assert fc is not None and fc.minutes_to_breach == pytest.approx(3600.0, abs=0.1)


def test_breach_beyond_horizon_is_not_predicted_but_the_trend_is_reported() -> None:
    fc = forecast_breach(ramp(5.0, 1.0), COLD, now=NOW, horizon=2 * HOUR)
    assert fc is not None
    assert fc.predicted_breach_at is None
    assert (fc.direction, fc.limit_c) == ("high", 8.0)


def test_reading_at_the_limit_breaches_now() -> None:
    fc = forecast_breach(ramp(8.0, 1.0), COLD, now=NOW)
    assert fc is not None
    assert fc.minutes_to_breach == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize(
    ("points", "kwargs"),
    [
        (ramp(5.0, 1.0, minutes=20), {}),  # 5 readings < min_points
        (ramp(5.0, 1.0, minutes=20, every=1), {}),  # 21 readings but only 20 min
        (ramp(9.0, 1.0), {}),  # already out of range: an excursion, not a forecast
        (ramp(-1.0, 1.0), {}),  # freezing now
        ([], {}),
    ],
    ids=["too few points", "too short", "out of range", "freezing", "no data"],
)
def test_refuses_to_predict(points: list[Point], kwargs: dict[str, object]) -> None:
    assert forecast_breach(points, COLD, now=NOW, **kwargs) is None  # type: ignore[arg-type]


def test_silent_device_is_not_forecast() -> None:
    assert forecast_breach(ramp(5.0, 1.0), COLD, now=NOW + 16 * MIN) is None
    assert forecast_breach(ramp(5.0, 1.0), COLD, now=NOW + 14 * MIN) is not None


def test_only_the_run_after_the_latest_gap_is_fitted() -> None:
    # an old falling trend, a 20-min gap, then a rising one: the fit must only see the rise
    before = [Point(NOW - m * MIN, 7.0 - (120 - m) / 60) for m in range(120, 60, -5)]
    after = ramp(5.0, 1.0, minutes=40)
    fc = forecast_breach(before + after, COLD, now=NOW, lookback=2 * HOUR)
    assert fc is not None
    assert fc.fit_start == NOW - 40 * MIN
    assert fc.direction == "high"
    # but a gap that leaves too little data means no forecast
    assert forecast_breach(before + ramp(5.0, 1.0, minutes=15), COLD, now=NOW) is None


def test_readings_after_now_are_ignored() -> None:
    future = [Point(NOW + m * MIN, 20.0) for m in (5, 10)]
    fc = forecast_breach(ramp(5.0, 1.0) + future, COLD, now=NOW)
    assert fc is not None and fc.minutes_to_breach == pytest.approx(180.0, abs=0.01)


def approach(asymptote: float, start: float, tau_h: float, *, minutes: int = 90) -> list[Point]:
    """First-order approach from ``start`` toward ``asymptote``, sampled up to NOW."""
    return [
        Point(
            NOW - (minutes - s) * MIN,
            asymptote - (asymptote - start) * math.exp(-s / 60 / tau_h),
        )
        for s in range(0, minutes + 1, 5)
    ]


def test_exponential_levelling_off_below_the_limit_predicts_no_breach() -> None:
    points = approach(7.0, 3.0, tau_h=0.75)
    fc = forecast_breach(points, COLD, now=NOW, lookback=2 * HOUR)
    assert fc is not None
    assert fc.model == "exponential"
    assert fc.asymptote_c == pytest.approx(7.0, abs=1e-3)
    assert fc.direction == "high" and fc.predicted_breach_at is None
    # a straight line through the same data would have cried wolf
    line = forecast_breach(points, COLD, now=NOW, lookback=2 * HOUR, model="linear")
    assert line is not None and line.predicted_breach_at is not None


def test_exponential_approach_beyond_the_limit_predicts_the_crossing() -> None:
    # T = 12 - 8·exp(-s/2h) crosses 8 °C at s = 2·ln 2 h; NOW is s = 1 h
    points = approach(12.0, 4.0, tau_h=2.0, minutes=60)
    fc = forecast_breach(points, COLD, now=NOW)
    assert fc is not None and fc.model == "exponential"
    expected_min = (2 * math.log(2) - 1) * 60
    assert fc.minutes_to_breach == pytest.approx(expected_min, abs=0.1)
    assert fc.slope_c_per_h == pytest.approx(4 * math.exp(-0.5), rel=1e-3)


def test_noisy_linear_ramp_stays_linear() -> None:
    rng = np.random.default_rng(3)
    points = [Point(p.ts, p.temp_c + float(rng.normal(0, 0.05))) for p in ramp(5.0, 1.0, every=2)]
    fc = forecast_breach(points, COLD, now=NOW)
    assert fc is not None and fc.model == "linear"
    assert fc.minutes_to_breach == pytest.approx(180.0, abs=20.0)


def test_exponential_fit_failure_falls_back_to_linear() -> None:
    # a straight line has no time constant to find: the forced exponential fit is rejected
    fc = forecast_breach(ramp(5.0, 1.0), COLD, now=NOW, model="exponential")
    assert fc is not None and fc.model == "linear"


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="min_points"):
        forecast_breach(ramp(5.0, 1.0), COLD, now=NOW, min_points=2)
    with pytest.raises(ValueError, match="now"):
        forecast_breach(ramp(5.0, 1.0), COLD, now=datetime(2024, 6, 1, 12))
    with pytest.raises(ValueError, match="horizon"):
        forecast_breach(ramp(5.0, 1.0), COLD, now=NOW, horizon=timedelta(0))


@settings(max_examples=40, deadline=None)
@given(st.floats(2.5, 7.5), st.floats(-6, 6).filter(lambda s: abs(s) > 0.2))
def test_linear_ramps_predict_the_arithmetic_crossing(now_c: float, c_per_h: float) -> None:
    fc = forecast_breach(ramp(now_c, c_per_h), COLD, now=NOW, horizon=48 * HOUR)
    assert fc is not None
    limit = 8.0 if c_per_h > 0 else 2.0
    assert fc.limit_c == limit
    assert fc.minutes_to_breach == pytest.approx((limit - now_c) / c_per_h * 60, abs=0.05)
