"""Mean kinetic temperature (USP <1160>/<1079.2>), time-weighted for irregular logging.

    MKT[K] = (ΔH/R) / ( −ln( Σ wᵢ·exp(−ΔH/(R·Tᵢ)) / Σ wᵢ ) ),   Tᵢ[K] = °C + 273.15

with ΔH = 83.144 kJ/mol by default (configurable per product) and R = 8.3144 J/(mol·K).

Weighting (explicit, and recorded in every result)
--------------------------------------------------
The series is cut into the intervals between consecutive readings. An interval longer than
``max_gap`` is a data gap: it is credited to no reading and adds nothing to the weights (so the
covered duration is shorter than the span). Every other interval [tᵢ, tᵢ₊₁] of length Δ adds Δ to
Σ w and, to Σ w·exp(·):

* :attr:`Weighting.STEP`: Δ·exp(−ΔH/(R·Tᵢ)): the reading holds its value until the next one
  (the same step rule as degree-minutes and the stability budget). The last reading of a series,
  and a reading followed by a gap, get no weight.
* :attr:`Weighting.TRAPEZOID`: Δ·(exp(−ΔH/(R·Tᵢ)) + exp(−ΔH/(R·Tᵢ₊₁)))/2, the trapezoid rule on the
  Arrhenius terms (not on temperatures); equivalently reading i gets weight (Δᵢ₋₁ + Δᵢ)/2.

For readings at a constant interval both rules converge to the textbook equal-weight formula; the
difference is how the first/last reading and irregular spacing are treated.

:func:`time_weighted_mean` uses the same weights on temperatures, so by Jensen's inequality
MKT ≥ time-weighted mean for either rule.

Numerics
--------
Sums are kept in the log domain (log Σ w·exp(x) with x = −ΔH/(R·T)), evaluated as
``ref + log Σ w·exp(x − ref)`` with ``ref`` the largest term (log-sum-exp), so nothing overflows or
underflows for any ΔH or temperature. Weights are exact integer microseconds.

Merging (:class:`MKTAccumulator`)
---------------------------------
An accumulator holds the sums *of the intervals between its own readings*, plus its first and last
reading. Merging two accumulators of **adjacent** parts (no reading of the series lies between
them) adds the **boundary interval** (last reading of the earlier part → first reading of the later
part) exactly as a single pass would: by the weighting rule, or not at all when it exceeds
``max_gap``. So splitting a series anywhere and merging the parts back, neighbours with neighbours
in any grouping, gives the one-pass result. Merging non-adjacent parts treats them as adjacent
(it cannot know what lies between); overlapping parts are rejected.

Rolling windows (:func:`rolling_mkt`)
-------------------------------------
The window ending at reading j holds the readings with ``tⱼ − window ≤ ts ≤ tⱼ`` and its MKT is
that of this sub-series. The interval straddling the window's start is not included, so the covered
duration can be up to one logging interval shorter than ``window`` (it is reported per row).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from coldchain.thermal.series import (
    ABSOLUTE_ZERO_C,
    Point,
    datetime_from_us,
    require_positive,
    to_sorted_arrays,
    to_us,
)

__all__ = [
    "DEFAULT_DELTA_H_J_MOL",
    "KELVIN_OFFSET",
    "R_J_MOL_K",
    "MKTAccumulator",
    "MKTResult",
    "Weighting",
    "mkt",
    "rolling_mkt",
    "time_weighted_mean",
]

R_J_MOL_K = 8.3144
DEFAULT_DELTA_H_J_MOL = 83_144.0
KELVIN_OFFSET = 273.15
_LN2 = math.log(2.0)
# Rolling windows whose sum lost more than this factor to cancellation are recomputed directly.
_MAX_CANCELLATION = 1e8


class Weighting(StrEnum):
    """How interval time is attributed to readings (see module docstring)."""

    STEP = "step"
    TRAPEZOID = "trapezoid"


@dataclass(frozen=True, slots=True)
class MKTResult:
    """An MKT with everything a report must print next to it."""

    mkt_c: float
    delta_h_j_mol: float
    weighting: Weighting
    max_gap: timedelta
    duration_covered: timedelta
    n_readings: int
    window_start: datetime
    window_end: datetime


def _check_params(delta_h_j_mol: float, max_gap: timedelta) -> None:
    if not (math.isfinite(delta_h_j_mol) and delta_h_j_mol > 0):
        raise ValueError(f"delta_h_j_mol must be a positive activation energy, got {delta_h_j_mol}")
    require_positive(max_gap, "max_gap")


def _exponents(temp_c: NDArray[np.float64], delta_h_j_mol: float) -> NDArray[np.float64]:
    """x = −ΔH/(R·T) per reading."""
    return -(delta_h_j_mol / R_J_MOL_K) / (temp_c + KELVIN_OFFSET)


def _interval_terms(
    t_us: NDArray[np.int64],
    temp_c: NDArray[np.float64],
    weighting: Weighting,
    max_gap: timedelta,
    delta_h_j_mol: float,
) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """Per interval: weight in µs (0 for a gap) and the log of its mean Arrhenius term."""
    x = _exponents(temp_c, delta_h_j_mol)
    dt = np.diff(t_us)
    weight = np.where(dt <= to_us(max_gap), dt, 0)
    if weighting is Weighting.STEP:
        return weight, x[:-1]
    return weight, np.logaddexp(x[:-1], x[1:]) - _LN2


def _logsumexp(values: NDArray[np.float64]) -> float:
    if len(values) == 0:
        return -math.inf
    ref = float(values.max())
    return ref + math.log(float(np.exp(values - ref).sum()))


def _mkt_c(log_sum: float, weight_us: float, delta_h_j_mol: float) -> float:
    # log_sum − log(W) is the log of the weighted mean Arrhenius term; always negative.
    return (delta_h_j_mol / R_J_MOL_K) / -(log_sum - math.log(weight_us)) - KELVIN_OFFSET


@dataclass(frozen=True, slots=True)
class MKTAccumulator:
    """Mergeable MKT sums: Σ w (µs) and log Σ w·exp(−ΔH/(R·T)), plus the end readings.

    Immutable: :meth:`add` and :meth:`merge` return new accumulators. Build one with
    :meth:`empty` or :meth:`from_points`.
    """

    delta_h_j_mol: float
    weighting: Weighting
    max_gap: timedelta
    n_readings: int = 0
    weight_us: int = 0
    log_sum: float = -math.inf
    first: Point | None = None
    last: Point | None = None

    def __post_init__(self) -> None:
        _check_params(self.delta_h_j_mol, self.max_gap)

    @classmethod
    def empty(
        cls,
        *,
        weighting: Weighting,
        max_gap: timedelta,
        delta_h_j_mol: float = DEFAULT_DELTA_H_J_MOL,
    ) -> MKTAccumulator:
        """An accumulator holding no readings (the identity of :meth:`merge`)."""
        return cls(delta_h_j_mol=delta_h_j_mol, weighting=weighting, max_gap=max_gap)

    @classmethod
    def from_points(
        cls,
        points: Iterable[Point],
        *,
        weighting: Weighting,
        max_gap: timedelta,
        delta_h_j_mol: float = DEFAULT_DELTA_H_J_MOL,
    ) -> MKTAccumulator:
        """One vectorised pass over a series (any order; duplicates as in :mod:`.series`)."""
        _check_params(delta_h_j_mol, max_gap)
        t_us, temp_c = to_sorted_arrays(points)
        if len(t_us) == 0:
            return cls.empty(weighting=weighting, max_gap=max_gap, delta_h_j_mol=delta_h_j_mol)
        weight, log_term = _interval_terms(t_us, temp_c, weighting, max_gap, delta_h_j_mol)
        credited = weight > 0
        return cls(
            delta_h_j_mol=delta_h_j_mol,
            weighting=weighting,
            max_gap=max_gap,
            n_readings=len(t_us),
            weight_us=int(weight.sum()),
            log_sum=_logsumexp(np.log(weight[credited]) + log_term[credited]),
            first=Point(datetime_from_us(int(t_us[0])), float(temp_c[0])),
            last=Point(datetime_from_us(int(t_us[-1])), float(temp_c[-1])),
        )

    def add(self, point: Point) -> MKTAccumulator:
        """This accumulator extended by one reading later than all its readings."""
        single = MKTAccumulator(
            delta_h_j_mol=self.delta_h_j_mol,
            weighting=self.weighting,
            max_gap=self.max_gap,
            n_readings=1,
            first=point,
            last=point,
        )
        return self.merge(single)

    def merge(self, other: MKTAccumulator) -> MKTAccumulator:
        """Combine with the accumulator of an adjacent, non-overlapping part (either order).

        The boundary interval between the parts is credited as a single pass would credit it.
        """
        if (self.delta_h_j_mol, self.weighting, self.max_gap) != (
            other.delta_h_j_mol,
            other.weighting,
            other.max_gap,
        ):
            raise ValueError(
                "cannot merge MKT accumulators with different ΔH, weighting or max_gap: "
                f"({self.delta_h_j_mol}, {self.weighting}, {self.max_gap}) vs "
                f"({other.delta_h_j_mol}, {other.weighting}, {other.max_gap})"
            )
        if self.last is None:
            return other
        if other.first is None:
            return self
        assert self.first is not None and other.last is not None
        earlier, later = (self, other) if self.first.ts < other.first.ts else (other, self)
        assert earlier.last is not None and later.first is not None
        if earlier.last.ts >= later.first.ts:
            raise ValueError(
                "MKT accumulators overlap in time "
                f"({earlier.last.ts.isoformat()} >= {later.first.ts.isoformat()}); "
                "split a series into disjoint consecutive parts before accumulating"
            )
        boundary_us = to_us(later.first.ts - earlier.last.ts)
        log_sum = float(np.logaddexp(earlier.log_sum, later.log_sum))
        weight_us = earlier.weight_us + later.weight_us
        if boundary_us <= to_us(self.max_gap):
            ends = np.array([earlier.last.temp_c, later.first.temp_c], dtype=np.float64)
            x_before, x_after = _exponents(ends, self.delta_h_j_mol)
            if self.weighting is Weighting.STEP:
                log_term = float(x_before)
            else:
                log_term = float(np.logaddexp(x_before, x_after)) - _LN2
            log_sum = float(np.logaddexp(log_sum, math.log(boundary_us) + log_term))
            weight_us += boundary_us
        return MKTAccumulator(
            delta_h_j_mol=self.delta_h_j_mol,
            weighting=self.weighting,
            max_gap=self.max_gap,
            n_readings=earlier.n_readings + later.n_readings,
            weight_us=weight_us,
            log_sum=log_sum,
            first=earlier.first,
            last=later.last,
        )

    def result(self) -> MKTResult | None:
        """The MKT, or None when no time is covered (fewer than two readings, or only gaps)."""
        if self.weight_us == 0 or self.first is None or self.last is None:
            return None
        return MKTResult(
            mkt_c=_mkt_c(self.log_sum, self.weight_us, self.delta_h_j_mol),
            delta_h_j_mol=self.delta_h_j_mol,
            weighting=self.weighting,
            max_gap=self.max_gap,
            duration_covered=timedelta(microseconds=self.weight_us),
            n_readings=self.n_readings,
            window_start=self.first.ts,
            window_end=self.last.ts,
        )


def mkt(
    points: Iterable[Point],
    *,
    weighting: Weighting,
    max_gap: timedelta,
    delta_h_j_mol: float = DEFAULT_DELTA_H_J_MOL,
) -> MKTResult | None:
    """MKT of a series (any order), or None when no time is covered.

    ``weighting`` has no default on purpose: it changes the result and must appear in reports.
    """
    return MKTAccumulator.from_points(
        points, weighting=weighting, max_gap=max_gap, delta_h_j_mol=delta_h_j_mol
    ).result()


def time_weighted_mean(
    points: Iterable[Point], *, weighting: Weighting, max_gap: timedelta
) -> float | None:
    """Arithmetic mean °C with the same weights as :func:`mkt`; None when no time is covered."""
    require_positive(max_gap, "max_gap")
    t_us, temp_c = to_sorted_arrays(points)
    if len(t_us) < 2:
        return None
    dt = np.diff(t_us)
    weight = np.where(dt <= to_us(max_gap), dt, 0).astype(np.float64)
    total = float(weight.sum())
    if total == 0:
        return None
    # Same weights as mkt(): the step value, or the trapezoid's mean of both ends.
    values = temp_c[:-1] if weighting is Weighting.STEP else (temp_c[:-1] + temp_c[1:]) / 2.0
    return float(np.dot(weight, values) / total)


def rolling_mkt(
    points: Sequence[Point] | pd.Series,
    window: timedelta,
    *,
    weighting: Weighting,
    max_gap: timedelta,
    delta_h_j_mol: float = DEFAULT_DELTA_H_J_MOL,
) -> pd.DataFrame:
    """MKT of the window ending at each reading (see module docstring), vectorised.

    ``points`` is a sequence of :class:`Point` or, for large series, a float Series of °C on a
    timezone-aware DatetimeIndex (same ordering/duplicate rule). Returns a DataFrame indexed by
    reading time (UTC, "ts") with columns ``mkt_c`` (NaN when the window covers no time),
    ``duration_covered``, ``n_readings`` and ``window_start`` (first reading in the window); the
    parameters (ΔH, weighting, window, max_gap) are recorded in ``DataFrame.attrs``.
    """
    _check_params(delta_h_j_mol, max_gap)
    require_positive(window, "window")
    if isinstance(points, pd.Series):
        t_us, temp_c = _series_arrays(points)
    else:
        t_us, temp_c = to_sorted_arrays(points)
    n = len(t_us)
    index = np.arange(n)
    starts = np.searchsorted(t_us, t_us - to_us(window), side="left")

    mkt_c = np.full(n, np.nan)
    window_weight = np.zeros(n, dtype=np.int64)
    if n > 1:
        weight, log_term = _interval_terms(t_us, temp_c, weighting, max_gap, delta_h_j_mol)
        # Window j covers intervals starts[j] .. j-1 (the half-open range [starts[j], j)).
        cum_weight = np.concatenate(([0], np.cumsum(weight)))
        window_weight = cum_weight[index] - cum_weight[starts]
        credited = weight > 0
        ref = float(log_term[credited].max()) if credited.any() else 0.0
        terms = np.where(credited, weight * np.exp(log_term - ref), 0.0)
        covered = window_weight > 0
        sums = _range_sums(terms, starts, index, covered)
        with np.errstate(divide="ignore", invalid="ignore"):
            log_mean = ref + np.log(sums) - np.log(np.where(covered, window_weight, 1))
        # exp(term - ref) can only underflow for absurd ΔH or temperature spreads; those windows
        # are redone in the log domain rather than reported as absolute zero.
        for j in np.flatnonzero(covered & ~(sums > 0)):
            part = slice(starts[j], j)
            credited_part = credited[part]
            log_mean[j] = _logsumexp(
                np.log(weight[part][credited_part]) + log_term[part][credited_part]
            ) - math.log(window_weight[j])
        mkt_c = np.where(covered, (delta_h_j_mol / R_J_MOL_K) / -log_mean - KELVIN_OFFSET, np.nan)

    frame = pd.DataFrame(
        {
            "mkt_c": mkt_c,
            "duration_covered": pd.to_timedelta(window_weight, unit="us"),
            "n_readings": index - starts + 1,
            "window_start": pd.to_datetime(t_us[starts], unit="us", utc=True),
        },
        index=pd.DatetimeIndex(pd.to_datetime(t_us, unit="us", utc=True), name="ts"),
    )
    frame.attrs.update(
        delta_h_j_mol=delta_h_j_mol,
        weighting=str(weighting),
        window=window,
        max_gap=max_gap,
    )
    return frame


def _series_arrays(series: pd.Series) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    index = series.index
    if not isinstance(index, pd.DatetimeIndex) or index.tz is None:
        raise ValueError("rolling_mkt needs a Series on a timezone-aware DatetimeIndex")
    t_us = index.tz_convert("UTC").as_unit("us").asi8.astype(np.int64)
    temp_c = series.to_numpy(dtype=np.float64)
    if not np.all(np.isfinite(temp_c) & (temp_c > ABSOLUTE_ZERO_C)):
        raise ValueError("rolling_mkt: temperatures must be finite and above absolute zero")
    order = np.argsort(t_us, kind="stable")  # same keep-first rule as coldchain.thermal.series
    t_us, temp_c = t_us[order], temp_c[order]
    keep = np.ones(len(t_us), dtype=bool)
    keep[1:] = np.diff(t_us) != 0
    return t_us[keep], temp_c[keep]


def _range_sums(
    terms: NDArray[np.float64],
    lo: NDArray[np.intp],
    hi: NDArray[np.intp],
    covered: NDArray[np.bool_],
) -> NDArray[np.float64]:
    """Σ terms[lo[k]:hi[k]] for every k, in O(len) with little cancellation.

    ``covered[k]`` says the range holds a credited (weight > 0) interval; other ranges are 0.

    A global prefix sum would subtract two numbers as large as everything before the window,
    losing digits in proportion to the series length. Instead the terms are cut into blocks at
    least as long as the longest range, with prefix and suffix sums restarting in each block: a
    range then spans at most two blocks, and is either suffix + prefix (no subtraction) or a
    subtraction of at most one block's worth. Ranges that still lost too much are summed directly.
    """
    m = len(terms)
    lengths = hi - lo
    block = max(int(lengths.max(initial=0)), 1)
    # One spare block so that gathers at index m (empty ranges at the end) stay in bounds.
    n_blocks = m // block + 1
    padded = np.zeros(n_blocks * block)
    padded[:m] = terms
    grid = padded.reshape(n_blocks, block)
    prefix = np.cumsum(grid, axis=1).ravel()
    suffix = np.cumsum(grid[:, ::-1], axis=1)[:, ::-1].ravel()

    nonempty = (lengths > 0) & covered
    last = np.where(lengths > 0, hi - 1, lo)
    same_block = (lo // block) == (last // block)
    left_rest = np.where(lo % block == 0, 0.0, prefix[np.maximum(lo - 1, 0)])
    right_rest = np.where(hi % block == 0, 0.0, suffix[hi])
    within = np.where(left_rest <= right_rest, prefix[last] - left_rest, suffix[lo] - right_rest)
    across = suffix[lo] + prefix[last]
    sums = np.where(nonempty, np.where(same_block, within, across), 0.0)

    subtracted = np.where(same_block, np.minimum(left_rest, right_rest), 0.0)
    suspect = nonempty & ((sums < 0) | (subtracted > _MAX_CANCELLATION * np.abs(sums)))
    for k in np.flatnonzero(suspect):
        sums[k] = math.fsum(terms[lo[k] : hi[k]])
    return sums
