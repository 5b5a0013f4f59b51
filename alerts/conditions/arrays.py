"""One logger's readings as arrays, and the excursions in them, vectorised.

:func:`excursions_from_arrays` (and :func:`coldchain.thermal.budget.budget_from_arrays`, which
the budget rule uses) give exactly the results of
:func:`coldchain.thermal.excursions.detect_excursions` and
:func:`coldchain.thermal.budget.budget_usage` (same contract, same floating-point operations;
property tests compare them on random series) without building a
:class:`~coldchain.thermal.series.Point` per reading, which is what makes a 1.44 M-reading
replay fast.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
from numpy.typing import NDArray

from coldchain.thermal.excursions import DEFAULT_FREEZING_C, OVER_40_C, Excursion, TempLimits
from coldchain.thermal.series import EPOCH, datetime_from_us, hold_us, to_us

__all__ = ["Series", "epoch_us", "excursions_from_arrays"]

_US_PER_MIN = 60_000_000


def epoch_us(ts: datetime) -> int:
    """Microseconds since the epoch: the time axis of :class:`Series`."""
    return to_us(ts - EPOCH)


@dataclass(frozen=True, slots=True)
class Series:
    """One logger's readings in one shipment: times (µs since the epoch, strictly increasing)
    and one array per measurement, NaN where a reading has no such value."""

    t_us: NDArray[np.int64]
    temp_c: NDArray[np.float64]
    rh: NDArray[np.float64]
    battery: NDArray[np.float64]

    @classmethod
    def from_rows(
        cls, rows: Sequence[tuple[datetime, float | None, float | None, float | None]]
    ) -> Series:
        """From ``(ts, temp_c, rh, battery)`` rows in any order (first of equal ts kept)."""
        t = np.fromiter((epoch_us(r[0]) for r in rows), dtype=np.int64, count=len(rows))

        def column(i: int) -> NDArray[np.float64]:
            return np.array([np.nan if r[i] is None else r[i] for r in rows], dtype=np.float64)

        temp, rh, battery = column(1), column(2), column(3)
        order = np.argsort(t, kind="stable")
        t, temp, rh, battery = t[order], temp[order], rh[order], battery[order]
        keep = np.ones(len(t), dtype=bool)
        keep[1:] = np.diff(t) != 0
        return cls(t[keep], temp[keep], rh[keep], battery[keep])

    def metric(self, name: str, *, until_us: int) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
        """Times and values of one measurement, readings without it and after ``until_us`` left out."""
        values: NDArray[np.float64] = getattr(self, name)
        keep = ~np.isnan(values) & (self.t_us <= until_us)
        return self.t_us[keep], values[keep]

    def since(self, from_us: int | None) -> Series:
        """The readings at or after ``from_us`` (all of them for None)."""
        if from_us is None:
            return self
        k = int(np.searchsorted(self.t_us, from_us, side="left"))
        return Series(self.t_us[k:], self.temp_c[k:], self.rh[k:], self.battery[k:])

    def __len__(self) -> int:
        return len(self.t_us)


def excursions_from_arrays(
    t_us: NDArray[np.int64], values: NDArray[np.float64], limits: TempLimits, *, now: datetime
) -> list[Excursion]:
    """:func:`~coldchain.thermal.excursions.detect_excursions` of a strictly increasing series,
    vectorised."""
    now_us = epoch_us(now)
    keep = t_us <= now_us
    t, v = t_us[keep], values[keep]
    n = len(t)
    if n == 0:
        return []
    max_gap_us = to_us(limits.max_gap)
    high, low = limits.out_masks(v)
    direction = np.where(high, 1, np.where(low, 2, 0)).astype(np.int8)
    gap_before = np.zeros(n, dtype=bool)
    gap_before[1:] = np.diff(t) > max_gap_us
    out = direction != 0
    # A run starts where the direction changes or a gap precedes; it ends before either.
    changes = np.zeros(n, dtype=bool)
    changes[1:] = (direction[1:] != direction[:-1]) | gap_before[1:]
    starts_mask = out.copy()
    starts_mask[1:] &= changes[1:]
    starts = np.flatnonzero(starts_mask)
    ends_mask = out.copy()
    ends_mask[:-1] &= changes[1:]
    ends = np.flatnonzero(ends_mask)
    if len(starts) == 0:
        return []
    held = hold_us(t, limits.max_gap)
    silent = now_us - int(t[-1]) > max_gap_us
    freezing_c = limits.freeze_c if limits.freeze_c is not None else DEFAULT_FREEZING_C
    delay_us = to_us(limits.alarm_delay)
    found: list[Excursion] = []
    for s, e in zip(starts.tolist(), ends.tolist(), strict=True):
        is_high = direction[s] == 1
        end_us: int | None
        if e == n - 1:
            end_us, by_gap = (int(t[e]), True) if silent else (None, False)
        elif gap_before[e + 1]:
            end_us, by_gap = int(t[e]), True
        else:
            end_us, by_gap = int(t[e + 1]), False
        limit_c = limits.high_c if is_high else limits.low_bound_c
        assert limit_c is not None
        sign = 1.0 if is_high else -1.0
        vs, ts = v[s : e + 1], t[s : e + 1]
        # Same operations, term by term, as the reference: (sign·(T − limit))·(held/µs per min).
        degree_minutes = math.fsum((sign * (vs - limit_c)) * (held[s : e + 1] / _US_PER_MIN))
        start_us = int(ts[0])
        k = int(np.searchsorted(ts, start_us + delay_us, side="left"))
        delay_at: int | None = int(ts[k]) if k < len(ts) else None
        if delay_at is None and end_us is not None and not by_gap and end_us - start_us >= delay_us:
            delay_at = end_us
        freeze_at: int | None = None
        if limits.freeze_c is not None:
            frozen = np.flatnonzero(vs <= limits.freeze_c)
            freeze_at = int(ts[frozen[0]]) if len(frozen) else None
        alarm_candidates = [x for x in (delay_at, freeze_at) if x is not None]
        alarm_at = min(alarm_candidates) if alarm_candidates else None
        last_out_us = int(ts[-1])
        found.append(
            Excursion(
                direction="high" if is_high else "low",
                limit_c=limit_c,
                start=datetime_from_us(start_us),
                end=None if end_us is None else datetime_from_us(end_us),
                last_out_ts=datetime_from_us(last_out_us),
                duration=timedelta(
                    microseconds=(end_us if end_us is not None else last_out_us) - start_us
                ),
                min_c=float(vs.min()),
                max_c=float(vs.max()),
                degree_minutes=degree_minutes,
                n_readings=e - s + 1,
                readings_over_40=int((vs > OVER_40_C).sum()),
                readings_freezing=int((vs <= freezing_c).sum()),
                alarm=alarm_at is not None,
                alarm_at=None if alarm_at is None else datetime_from_us(alarm_at),
                freeze_alarm=freeze_at is not None,
                ended_by_gap=by_gap,
                starts_after_gap=bool(gap_before[s]),
            )
        )
    return found
