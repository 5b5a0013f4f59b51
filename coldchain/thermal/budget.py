"""Cumulative time out of range against a product's stability budget.

Contract
--------
Time is attributed with the same **step rule** as degree-minutes
(:mod:`coldchain.thermal.series`): each interval between consecutive readings belongs to its
earlier reading, and counts as

* **out of range** when that reading is out of range (high or low, freezing included, as
  classified by :class:`~coldchain.thermal.excursions.TempLimits`),
* **in range** when that reading is in range,
* **gap** (unknown) when the interval is longer than ``max_gap``, whatever the readings say.

The last reading holds for zero time: nothing is credited after it until the next one arrives.
With ``now``, readings after ``now`` are ignored and, if the device has been silent for more than
``max_gap``, the time from the last reading to ``now`` is a (trailing) gap. So
``time_in + time_out + time_gap`` is exactly the span from the first reading to the last one
(or to ``now`` when a trailing gap is counted).

Counted against the budget: ``carried_over`` (from earlier legs or shipments) + ``time_out``, plus
``time_gap`` when ``count_gaps_as_out`` (the default: unknown time is treated as worst case).
``share_used = counted / budget`` (may exceed 1); status is "exhausted" at ``share_used >= 1``,
"warning" at ``share_used >= warning_share``, else "ok".

``warning_at`` / ``exhausted_at`` are the measurement times at which the counted time reached the
warning share / the whole budget (within the interval being counted, so alerts carry the data's
own time). If ``carried_over`` alone already reached a threshold, it is the first reading's ts.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from coldchain.thermal.excursions import TempLimits
from coldchain.thermal.series import (
    EPOCH,
    Point,
    datetime_from_us,
    require_aware,
    require_positive,
    to_sorted_arrays,
    to_us,
)

__all__ = ["DEFAULT_WARNING_SHARE", "BudgetStatus", "BudgetUsage", "budget_usage"]

BudgetStatus = Literal["ok", "warning", "exhausted"]
DEFAULT_WARNING_SHARE = 0.8


@dataclass(frozen=True, slots=True)
class BudgetUsage:
    """Where a series (plus what was carried over) stands against a stability budget."""

    budget: timedelta
    carried_over: timedelta
    time_in: timedelta
    time_out: timedelta
    time_gap: timedelta
    counted: timedelta
    remaining: timedelta
    share_used: float
    status: BudgetStatus
    warning_share: float
    count_gaps_as_out: bool
    warning_at: datetime | None
    exhausted_at: datetime | None


def budget_usage(
    points: Iterable[Point],
    limits: TempLimits,
    budget: timedelta,
    *,
    max_gap: timedelta | None = None,
    count_gaps_as_out: bool = True,
    carried_over: timedelta = timedelta(0),
    warning_share: float = DEFAULT_WARNING_SHARE,
    now: datetime | None = None,
) -> BudgetUsage:
    """Time out of range, in gaps and in range, and the budget share used (see module contract).

    ``max_gap`` defaults to ``limits.max_gap``; the range is ``limits``' (low, high, freeze).
    """
    t_us, temp_c = to_sorted_arrays(points)
    return budget_from_arrays(
        t_us,
        temp_c,
        limits,
        budget,
        max_gap=max_gap,
        count_gaps_as_out=count_gaps_as_out,
        carried_over=carried_over,
        warning_share=warning_share,
        now=now,
    )


def budget_from_arrays(
    t_us: NDArray[np.int64],
    temp_c: NDArray[np.float64],
    limits: TempLimits,
    budget: timedelta,
    *,
    max_gap: timedelta | None = None,
    count_gaps_as_out: bool = True,
    carried_over: timedelta = timedelta(0),
    warning_share: float = DEFAULT_WARNING_SHARE,
    now: datetime | None = None,
) -> BudgetUsage:
    """:func:`budget_usage` of a strictly increasing series given as arrays (µs since the epoch,
    °C): the rules engine's form, without building a point per reading."""
    require_positive(budget, "budget")
    if carried_over < timedelta(0):
        raise ValueError(f"carried_over must not be negative, got {carried_over}")
    if not 0 < warning_share <= 1:
        raise ValueError(f"warning_share must be in (0, 1], got {warning_share}")
    gap_limit = limits.max_gap if max_gap is None else max_gap
    require_positive(gap_limit, "max_gap")
    if now is not None:
        require_aware(now, "now")
        now_us = to_us(now - EPOCH)
        keep = t_us <= now_us
        t_us, temp_c = t_us[keep], temp_c[keep]

    # Per interval (start reading index k): its length and what it counts as.
    dt = np.diff(t_us)
    high, low = limits.out_masks(temp_c[:-1])
    is_gap = dt > to_us(gap_limit)
    is_out = (high | low) & ~is_gap
    starts_us = t_us[:-1]
    if now is not None and len(t_us) and now_us - int(t_us[-1]) > to_us(gap_limit):
        dt = np.append(dt, now_us - int(t_us[-1]))
        is_gap = np.append(is_gap, True)
        is_out = np.append(is_out, False)
        starts_us = t_us.copy()

    time_out = int(dt[is_out].sum())
    time_gap = int(dt[is_gap].sum())
    time_in = int(dt[~is_out & ~is_gap].sum())
    counted_mask = is_out | is_gap if count_gaps_as_out else is_out
    carried_us = to_us(carried_over)
    counted = carried_us + time_out + (time_gap if count_gaps_as_out else 0)
    budget_us = to_us(budget)
    share = counted / budget_us

    contribution = np.where(counted_mask, dt, 0)
    first_us = int(t_us[0]) if len(t_us) else None
    warning_at = _crossing(warning_share * budget_us, carried_us, starts_us, contribution, first_us)
    exhausted_at = _crossing(float(budget_us), carried_us, starts_us, contribution, first_us)

    status: BudgetStatus
    if share >= 1:
        status = "exhausted"
    elif share >= warning_share:
        status = "warning"
    else:
        status = "ok"
    return BudgetUsage(
        budget=budget,
        carried_over=carried_over,
        time_in=timedelta(microseconds=time_in),
        time_out=timedelta(microseconds=time_out),
        time_gap=timedelta(microseconds=time_gap),
        counted=timedelta(microseconds=counted),
        remaining=timedelta(microseconds=max(budget_us - counted, 0)),
        share_used=share,
        status=status,
        warning_share=warning_share,
        count_gaps_as_out=count_gaps_as_out,
        warning_at=warning_at,
        exhausted_at=exhausted_at,
    )


def _crossing(
    threshold_us: float,
    carried_us: int,
    starts_us: NDArray[np.int64],
    contribution_us: NDArray[np.int64],
    first_us: int | None,
) -> datetime | None:
    """When the running count first reaches ``threshold_us``, interpolated inside its interval."""
    if carried_us >= threshold_us:
        return None if first_us is None else datetime_from_us(first_us)
    running = carried_us + np.cumsum(contribution_us)
    reached = np.flatnonzero(running >= threshold_us)
    if len(reached) == 0:
        return None
    k = int(reached[0])
    before = int(running[k] - contribution_us[k])
    # Counted time grows one-for-one with clock time inside a counted interval.
    return datetime_from_us(int(starts_us[k]) + math.ceil(threshold_us - before))
