"""Excursions and data gaps in a temperature series.

Contract (these are the semantics reports and alerts rely on)
-------------------------------------------------------------
Classification of one reading against :class:`TempLimits` (limits are inclusive):

* **high** when ``temp > high_c``;
* **low** when ``temp < low_c``, or when ``temp <= freeze_c`` (a freezing reading is always a low
  reading, also for a product with no ``low_c``); ``freeze_c`` must be below ``low_c``;
* in range otherwise. A ``None`` limit is not checked.

An **excursion** is a maximal run of consecutive readings classified in the same direction
("high" or "low"), with no data gap inside it:

* ``start``: ts of the first out-of-range reading; ``last_out_ts``: ts of the last one.
* ``end``: ts of the first reading that is no longer out in this direction (back in range, or out
  in the *other* direction, which starts a new excursion at that same ts).
  If a **data gap** (``dt > max_gap``) follows the last out-of-range reading we do not know what
  happened in the gap: the excursion ends there, ``end = last_out_ts`` and ``ended_by_gap=True``;
  out-of-range readings after the gap form a new excursion (``starts_after_gap=True``).
  If the last reading (at or before ``now``) is still out of range the excursion is **open**:
  ``end=None``. When ``now`` is more than ``max_gap`` after that last reading, the device has gone
  silent, so the excursion is ended by that trailing gap instead of being open.
* ``duration``: ``end - start``; for open excursions ``last_out_ts - start`` (time until the last
  reading, never extrapolated to ``now``). Measured to the first reading back in range, a closed
  duration is an upper bound, by at most one logging interval.
* ``degree_minutes``: time-integral of the distance beyond the breached limit (°C·min), step rule:
  each reading's value is held until the next reading; a reading followed by a gap, or by nothing,
  holds for zero time (unknown time is not credited). Hence the held time of an excursion's
  readings equals its ``duration`` exactly. The breached limit is ``high_c`` for high excursions
  and ``low_c`` (or ``freeze_c`` when there is no ``low_c``) for low ones.
* ``min_c``/``max_c``/``n_readings``/``readings_over_40`` (> 40 °C)/``readings_freezing``
  (<= ``freeze_c``, or <= 0 °C when ``freeze_c`` is None) are over the out-of-range readings.
* **Alarm**: ``alarm`` is true when ``duration >= alarm_delay``, or immediately when a reading is
  at or below a configured ``freeze_c`` (``freeze_alarm=True``; the 0 °C default of
  ``readings_freezing`` is a report statistic only and does not alarm by itself).
  ``alarm_at`` is the earliest of: the first reading (out-of-range readings, plus the closing
  reading of an excursion that came back in range) with ``ts - start >= alarm_delay``, and the
  first reading at or below ``freeze_c``. The excursion is recorded whether or not it alarms.

Evaluation is as of ``now``: readings stamped after ``now`` are ignored (the result is what was
knowable at ``now``, so replaying history gives the same answers). The input may arrive in any
order and may contain exact duplicates (see :mod:`coldchain.thermal.series` for the ordering
rule): the result is the same as if the readings had arrived in order. An excursion is identified by
``(direction, start)`` (:attr:`Excursion.key`), so a caller can diff the results of two
evaluations, e.g. before and after late readings arrive.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from coldchain.thermal.series import (
    Point,
    as_arrays,
    hold_us,
    require_aware,
    require_positive,
    sorted_unique,
)

__all__ = [
    "OVER_40_C",
    "Direction",
    "Excursion",
    "Gap",
    "TempLimits",
    "detect_excursions",
    "find_gaps",
]

Direction = Literal["high", "low"]

OVER_40_C = 40.0
# Reported as "below freezing" when the product has no freeze limit of its own.
DEFAULT_FREEZING_C = 0.0
_US_PER_MIN = 60_000_000


@dataclass(frozen=True, slots=True)
class TempLimits:
    """Range, freeze limit, alarm delay and gap threshold a series is judged against."""

    low_c: float | None
    high_c: float | None
    freeze_c: float | None
    alarm_delay: timedelta
    max_gap: timedelta

    def __post_init__(self) -> None:
        for name in ("low_c", "high_c", "freeze_c"):
            value = getattr(self, name)
            if value is None:
                continue
            if not math.isfinite(value):
                raise ValueError(f"TempLimits.{name} must be finite or None, got {value!r}")
            object.__setattr__(self, name, float(value))  # plain floats in every figure
        if self.low_c is not None and self.high_c is not None and self.low_c >= self.high_c:
            raise ValueError(
                f"TempLimits.low_c ({self.low_c}) must be below high_c ({self.high_c})"
            )
        if self.freeze_c is not None and self.low_c is not None and self.freeze_c >= self.low_c:
            # Otherwise a reading could be in range and freezing at the same time.
            raise ValueError(
                f"TempLimits.freeze_c ({self.freeze_c}) must be below low_c ({self.low_c})"
            )
        if self.alarm_delay < timedelta(0):
            raise ValueError(f"TempLimits.alarm_delay must not be negative, got {self.alarm_delay}")
        require_positive(self.max_gap, "TempLimits.max_gap")

    @property
    def low_bound_c(self) -> float | None:
        """The limit a low excursion breaches: ``low_c``, or ``freeze_c`` without a ``low_c``."""
        return self.low_c if self.low_c is not None else self.freeze_c

    def classify(self, temp_c: float) -> Direction | None:
        """ "high", "low" or None (in range) for one temperature."""
        if self.high_c is not None and temp_c > self.high_c:
            return "high"
        if (self.low_c is not None and temp_c < self.low_c) or self.is_freezing(temp_c):
            return "low"
        return None

    def is_freezing(self, temp_c: float) -> bool:
        """True when a freeze limit is configured and ``temp_c`` is at or below it."""
        return self.freeze_c is not None and temp_c <= self.freeze_c

    def out_masks(self, temp_c: NDArray[np.float64]) -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:
        """Vectorised :meth:`classify`: (is high, is low) per temperature."""
        high = temp_c > self.high_c if self.high_c is not None else np.zeros(len(temp_c), bool)
        low = np.zeros(len(temp_c), dtype=bool)
        if self.low_c is not None:
            low |= temp_c < self.low_c
        if self.freeze_c is not None:
            low |= temp_c <= self.freeze_c
        return high, low & ~high


@dataclass(frozen=True, slots=True)
class Excursion:
    """One excursion; field semantics are the module docstring's contract."""

    direction: Direction
    limit_c: float
    start: datetime
    end: datetime | None
    last_out_ts: datetime
    duration: timedelta
    min_c: float
    max_c: float
    degree_minutes: float
    n_readings: int
    readings_over_40: int
    readings_freezing: int
    alarm: bool
    alarm_at: datetime | None
    freeze_alarm: bool
    ended_by_gap: bool
    starts_after_gap: bool

    @property
    def key(self) -> tuple[Direction, datetime]:
        """Stable identity across re-evaluations: (direction, start)."""
        return (self.direction, self.start)

    @property
    def is_open(self) -> bool:
        """Still out of range at the last reading, and the device has not gone silent."""
        return self.end is None


@dataclass(frozen=True, slots=True)
class Gap:
    """Unknown time between two readings more than ``max_gap`` apart.

    ``start`` is the last reading before the gap, ``end`` the first reading after it; a trailing
    gap (device silent until ``now``) has ``end=now`` and ``open=True``.
    """

    start: datetime
    end: datetime
    open: bool = False

    @property
    def duration(self) -> timedelta:
        """Length of the unknown interval."""
        return self.end - self.start


def find_gaps(
    points: Iterable[Point], max_gap: timedelta, *, now: datetime | None = None
) -> list[Gap]:
    """Data gaps (``dt > max_gap``) in time order; with ``now``, also a trailing open gap.

    Readings after ``now`` are ignored when ``now`` is given. Input order does not matter.
    """
    require_positive(max_gap, "max_gap")
    if now is not None:
        require_aware(now, "now")
    series = sorted_unique(p for p in points if now is None or p.ts <= now)
    gaps = [
        Gap(start=before.ts, end=after.ts)
        for before, after in itertools.pairwise(series)
        if after.ts - before.ts > max_gap
    ]
    if now is not None and series and now - series[-1].ts > max_gap:
        gaps.append(Gap(start=series[-1].ts, end=now, open=True))
    return gaps


def detect_excursions(
    points: Iterable[Point], limits: TempLimits, *, now: datetime
) -> list[Excursion]:
    """All excursions of the series as of ``now``, in time order (see the module contract)."""
    require_aware(now, "now")
    series = sorted_unique(p for p in points if p.ts <= now)
    if not series:
        return []
    t_us, _ = as_arrays(series)
    held_us = hold_us(t_us, limits.max_gap)

    excursions: list[Excursion] = []
    run: list[int] = []
    run_direction: Direction | None = None
    run_after_gap = False

    def close(end: datetime | None, ended_by_gap: bool) -> None:
        assert run_direction is not None
        excursions.append(
            _summarise(
                series, held_us, run, run_direction, limits, end, ended_by_gap, run_after_gap
            )
        )
        run.clear()

    for i, point in enumerate(series):
        direction = limits.classify(point.temp_c)
        gap_before = i > 0 and point.ts - series[i - 1].ts > limits.max_gap
        if run and gap_before:
            close(end=series[run[-1]].ts, ended_by_gap=True)
        elif run and direction != run_direction:
            close(end=point.ts, ended_by_gap=False)
        if direction is not None:
            if not run:
                run_direction, run_after_gap = direction, gap_before
            run.append(i)

    if run:
        if now - series[-1].ts > limits.max_gap:
            close(end=series[run[-1]].ts, ended_by_gap=True)
        else:
            close(end=None, ended_by_gap=False)
    return excursions


def _summarise(
    series: Sequence[Point],
    held_us: NDArray[np.int64],
    run: Sequence[int],
    direction: Direction,
    limits: TempLimits,
    end: datetime | None,
    ended_by_gap: bool,
    starts_after_gap: bool,
) -> Excursion:
    readings = [series[i] for i in run]
    start, last_out_ts = readings[0].ts, readings[-1].ts
    limit_c = limits.high_c if direction == "high" else limits.low_bound_c
    assert limit_c is not None  # a reading can only be out in a direction that has a limit
    sign = 1.0 if direction == "high" else -1.0
    degree_minutes = math.fsum(
        sign * (series[i].temp_c - limit_c) * (int(held_us[i]) / _US_PER_MIN) for i in run
    )
    freezing_c = limits.freeze_c if limits.freeze_c is not None else DEFAULT_FREEZING_C

    # Readings at which the elapsed time can be observed; the closing in-range reading counts
    # because duration is measured to it, and alarm must agree with duration >= alarm_delay.
    observed = [p.ts for p in readings]
    if end is not None and not ended_by_gap:
        observed.append(end)
    delay_at = next((ts for ts in observed if ts - start >= limits.alarm_delay), None)
    freeze_at = next((p.ts for p in readings if limits.is_freezing(p.temp_c)), None)
    alarm_at = min((ts for ts in (delay_at, freeze_at) if ts is not None), default=None)

    return Excursion(
        direction=direction,
        limit_c=limit_c,
        start=start,
        end=end,
        last_out_ts=last_out_ts,
        duration=(end if end is not None else last_out_ts) - start,
        min_c=min(p.temp_c for p in readings),
        max_c=max(p.temp_c for p in readings),
        degree_minutes=degree_minutes,
        n_readings=len(readings),
        readings_over_40=sum(1 for p in readings if p.temp_c > OVER_40_C),
        readings_freezing=sum(1 for p in readings if p.temp_c <= freezing_c),
        alarm=alarm_at is not None,
        alarm_at=alarm_at,
        freeze_alarm=freeze_at is not None,
        ended_by_gap=ended_by_gap,
        starts_after_gap=starts_after_gap,
    )
