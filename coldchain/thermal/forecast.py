"""Short-horizon breach forecast: will the current trend cross a limit soon?

Contract
--------
Fit data: the readings in ``[now - lookback, now]`` that belong to the latest run without a data
gap (``dt > limits.max_gap``); readings after ``now`` are ignored. No forecast (``None``) when:

* fewer than ``min_points`` readings, or they span less than ``min_span``;
* the device is silent (``now - last reading > limits.max_gap``);
* the last reading is not in range: that is an excursion, not a forecast.

Models (times in hours):

* ``"linear"``: least-squares line.
* ``"exponential"``: first-order approach to an asymptote, T(s) = A − B·exp(−k·s) (a box warming
  or cooling toward its surroundings), fitted with ``scipy.optimize.curve_fit`` with the time
  constant 1/k bounded to [span/20, 20·span] of the fit data. Falls back to the line when the fit
  fails to converge, ends at a bound of the time constant, or has non-finite or very uncertain
  parameters (ill-conditioned).
* ``"auto"`` (default): the exponential is kept only when it is also significantly better than the
  line (F-test on the residuals, p < 0.01); otherwise the line. An exponential that levels off
  before a limit predicts no breach where a line would.

Trend and prediction: the slope is the model's rate of change at ``now``. If it is above
``min_slope_c_per_h`` toward a limit (``high_c`` when rising; ``low_c``, or ``freeze_c`` without a
``low_c``, when falling), the breach time is where the model crosses that limit, counted from
``now``; if the model is already past the limit at ``now`` (the last reading is in range but the
fitted trend is not), the breach is predicted for ``now``. A breach later than ``horizon`` is not
predicted (``predicted_breach_at=None``) but direction and limit are still reported.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

import numpy as np
from numpy.typing import NDArray
from scipy import optimize, stats

from coldchain.thermal.excursions import Direction, TempLimits
from coldchain.thermal.series import (
    EPOCH,
    Point,
    datetime_from_us,
    require_aware,
    require_positive,
    to_sorted_arrays,
    to_us,
)

__all__ = ["Forecast", "ForecastModel", "forecast_breach"]

ForecastModel = Literal["linear", "exponential"]
_US_PER_H = 3_600_000_000
# Exponential time constant allowed relative to the span of the fit data: shorter is noise,
# longer is indistinguishable from a straight line.
_TAU_MIN_SPANS = 1 / 20
_TAU_MAX_SPANS = 20.0
_F_TEST_P = 0.01
# Relative standard error of k above which the exponential fit is considered ill-conditioned.
_MAX_REL_ERR_K = 0.5
_BOUND_MARGIN = 1e-3


@dataclass(frozen=True, slots=True)
class Forecast:
    """A trend fitted as of ``as_of`` and the limit breach it predicts, if any."""

    predicted_breach_at: datetime | None
    minutes_to_breach: float | None
    limit_c: float | None
    direction: Direction | None
    slope_c_per_h: float
    model: ForecastModel
    fitted_now_c: float
    asymptote_c: float | None
    n_points: int
    fit_start: datetime
    fit_end: datetime
    as_of: datetime


@dataclass(frozen=True, slots=True)
class _Fit:
    """A fitted model in hours since the first fitted reading (s); ``s_now`` is ``now``."""

    model: ForecastModel
    params: tuple[float, ...]  # linear: (b, m) for b + m·s; exponential: (A, B, k)
    s_now: float
    sse: float

    def value(self, s: float) -> float:
        if self.model == "linear":
            b, m = self.params
            return b + m * s
        a, b, k = self.params
        return a - b * math.exp(-k * s)

    @property
    def now_c(self) -> float:
        return self.value(self.s_now)

    @property
    def slope_c_per_h(self) -> float:
        if self.model == "linear":
            return self.params[1]
        _, b, k = self.params
        return k * b * math.exp(-k * self.s_now)

    @property
    def asymptote_c(self) -> float | None:
        return self.params[0] if self.model == "exponential" else None

    def hours_until(self, limit_c: float) -> float | None:
        """Hours from now until the model reaches ``limit_c``; 0 if already past, None if never."""
        if self.model == "linear":
            b, m = self.params
            if m == 0:
                return None
            s_cross = (limit_c - b) / m
        else:
            a, b, k = self.params
            ratio = (a - limit_c) / b if b != 0 else 0.0
            if ratio <= 0:  # the asymptote stops short of the limit
                return None
            s_cross = -math.log(ratio) / k
        return max(s_cross - self.s_now, 0.0)


def _fit_line(s: NDArray[np.float64], temp_c: NDArray[np.float64], s_now: float) -> _Fit:
    design = np.column_stack((np.ones_like(s), s))
    (b, m), *_ = np.linalg.lstsq(design, temp_c, rcond=None)
    residuals = temp_c - (b + m * s)
    return _Fit("linear", (float(b), float(m)), s_now, float(residuals @ residuals))


def _exponential(s: NDArray[np.float64], a: float, b: float, k: float) -> NDArray[np.float64]:
    return a - b * np.exp(-k * s)


def _fit_exponential(
    s: NDArray[np.float64], temp_c: NDArray[np.float64], s_now: float, line: _Fit
) -> _Fit | None:
    """Least-squares T = A − B·exp(−k·s), or None when the fit fails or is ill-conditioned."""
    span = float(s[-1])
    k_min, k_max = 1 / (_TAU_MAX_SPANS * span), 1 / (_TAU_MIN_SPANS * span)
    # Start from the line: a time constant of one span with the line's slope at s = 0.
    k0 = 1 / span
    b0 = line.params[1] / k0 if line.params[1] != 0 else 1e-3
    a0 = line.params[0] + b0
    try:
        with warnings.catch_warnings():
            # An OptimizeWarning means the covariance could not be estimated: ill-conditioned.
            warnings.simplefilter("error", optimize.OptimizeWarning)
            popt, pcov = optimize.curve_fit(
                _exponential,
                s,
                temp_c,
                p0=(a0, b0, k0),
                bounds=((-np.inf, -np.inf, k_min), (np.inf, np.inf, k_max)),
                max_nfev=2000,
            )
    except (RuntimeError, ValueError, optimize.OptimizeWarning, FloatingPointError):
        return None
    a, b, k = (float(v) for v in popt)
    if not all(math.isfinite(v) for v in (a, b, k)):
        return None
    # Pinned at a bound means the data has no time constant in the allowed range (for example a
    # straight line): the bound, not the data, would set the curvature.
    if not k_min * (1 + _BOUND_MARGIN) < k < k_max * (1 - _BOUND_MARGIN):
        return None
    k_err = math.sqrt(pcov[2, 2]) if np.isfinite(pcov[2, 2]) and pcov[2, 2] >= 0 else math.inf
    if k_err > _MAX_REL_ERR_K * k:
        return None
    residuals = temp_c - _exponential(s, a, b, k)
    return _Fit("exponential", (a, b, k), s_now, float(residuals @ residuals))


def _significantly_better(curve: _Fit, line: _Fit, n: int) -> bool:
    """F-test of the extra parameter: does the curve explain significantly more than the line?"""
    dof = n - 3
    if dof <= 0 or curve.sse >= line.sse:
        return False
    if curve.sse == 0:
        return True
    f_stat = (line.sse - curve.sse) / (curve.sse / dof)
    return bool(f_stat > stats.f.ppf(1 - _F_TEST_P, 1, dof))


def forecast_breach(
    points: Iterable[Point],
    limits: TempLimits,
    *,
    now: datetime,
    lookback: timedelta = timedelta(hours=1),
    horizon: timedelta = timedelta(hours=4),
    min_points: int = 6,
    min_span: timedelta = timedelta(minutes=30),
    min_slope_c_per_h: float = 0.1,
    model: Literal["auto", "linear", "exponential"] = "auto",
) -> Forecast | None:
    """Fit the recent trend and predict when it crosses a limit (see module contract)."""
    require_aware(now, "now")
    for name, value in (("lookback", lookback), ("horizon", horizon), ("min_span", min_span)):
        require_positive(value, name)
    if min_points < 3:
        raise ValueError(f"min_points must be at least 3 to fit a trend, got {min_points}")
    if min_slope_c_per_h < 0:
        raise ValueError(f"min_slope_c_per_h must not be negative, got {min_slope_c_per_h}")

    now_us = to_us(now - EPOCH)
    t_us, temp_c = to_sorted_arrays(points)
    in_window = (t_us <= now_us) & (t_us >= now_us - to_us(lookback))
    t_us, temp_c = t_us[in_window], temp_c[in_window]
    if len(t_us) == 0 or now_us - int(t_us[-1]) > to_us(limits.max_gap):
        return None
    gap_after = np.flatnonzero(np.diff(t_us) > to_us(limits.max_gap))
    if len(gap_after):  # only the run after the latest gap describes the current trend
        t_us, temp_c = t_us[gap_after[-1] + 1 :], temp_c[gap_after[-1] + 1 :]
    if len(t_us) < min_points or int(t_us[-1] - t_us[0]) < to_us(min_span):
        return None
    if limits.classify(float(temp_c[-1])) is not None:
        return None

    # Hours relative to the first fitted reading keep the exponential well scaled.
    s = (t_us - t_us[0]) / _US_PER_H
    s_now = (now_us - int(t_us[0])) / _US_PER_H
    line = _fit_line(s, temp_c, s_now)
    fit = line
    if model != "linear":
        curve = _fit_exponential(s, temp_c, s_now, line)
        if curve is not None and (
            model == "exponential" or _significantly_better(curve, line, len(s))
        ):
            fit = curve

    direction: Direction | None = None
    limit_c: float | None = None
    if fit.slope_c_per_h > min_slope_c_per_h:
        direction, limit_c = "high", limits.high_c
    elif fit.slope_c_per_h < -min_slope_c_per_h:
        direction, limit_c = "low", limits.low_bound_c

    hours: float | None = None
    if limit_c is not None:
        hours = fit.hours_until(limit_c)
        if hours is not None and hours * _US_PER_H > to_us(horizon):
            hours = None
    breach_at = None if hours is None else now + timedelta(microseconds=round(hours * _US_PER_H))
    return Forecast(
        predicted_breach_at=breach_at,
        minutes_to_breach=None if hours is None else hours * 60.0,
        limit_c=limit_c,
        direction=direction,
        slope_c_per_h=fit.slope_c_per_h,
        model=fit.model,
        fitted_now_c=fit.now_c,
        asymptote_c=fit.asymptote_c,
        n_points=len(t_us),
        fit_start=datetime_from_us(int(t_us[0])),
        fit_end=datetime_from_us(int(t_us[-1])),
        as_of=now,
    )
