"""Temperature series: the reading value type and the ordering and gap rules every module shares.

The rules (the contract the other :mod:`coldchain.thermal` modules build on)
---------------------------------------------------------------------------
* A :class:`Point` is one reading at the device's *measurement* time (timezone-aware) in °C.
  Naive datetimes, non-finite temperatures and temperatures at or below absolute zero are
  rejected with ``ValueError``: they are data errors, not readings.
* **Order and duplicates** (:func:`sorted_unique`): readings are sorted by ``ts`` with a *stable*
  sort, and of several readings with the same ``ts`` the **first one in input order is kept**.
  Exact re-uploads (same ``ts``, same value) therefore never matter; two *different* values for one
  instant are a device or ingest error, and keeping the first means a later upload cannot silently
  rewrite a history that was already reported. This is the only case in which input order can
  change a result: for inputs without conflicting duplicates, every function of
  :mod:`coldchain.thermal` gives the same answer for any ordering of its input.
* **Gaps**: two consecutive readings further apart than ``max_gap`` (strictly: ``dt > max_gap``)
  enclose a *data gap*. Time in a gap is *unknown*, neither in range nor out of range.
* **Step rule** (:func:`hold_us`): each reading's value is held from its own ``ts`` until the next
  reading. If the next reading is more than ``max_gap`` away the interval is a gap and the reading
  holds for zero time (the gap is not credited to it); the last reading also holds for zero time,
  because the next one has not been seen. So the held time of a run of readings is exactly the
  time from its first reading to the reading that follows it, and
  ``held time + gap time == last ts - first ts`` for any series.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "ABSOLUTE_ZERO_C",
    "EPOCH",
    "Point",
    "as_arrays",
    "datetime_from_us",
    "hold_us",
    "require_aware",
    "require_positive",
    "segments",
    "sorted_unique",
    "to_sorted_arrays",
    "to_us",
]

ABSOLUTE_ZERO_C = -273.15
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_US = timedelta(microseconds=1)


def require_aware(ts: datetime, name: str) -> None:
    """Raise ``ValueError`` unless ``ts`` is a timezone-aware datetime."""
    if ts.tzinfo is None or ts.utcoffset() is None:
        raise ValueError(
            f"{name} must be timezone-aware, got naive {ts.isoformat()}; "
            "attach the device's timezone (or UTC) at the parsing boundary"
        )


def require_positive(value: timedelta, name: str) -> None:
    """Raise ``ValueError`` unless ``value`` is a strictly positive duration."""
    if value <= timedelta(0):
        raise ValueError(f"{name} must be a positive duration, got {value}")


def to_us(value: timedelta) -> int:
    """A duration as an exact integer number of microseconds (datetime's own resolution)."""
    return value // _ONE_US


def datetime_from_us(us: int) -> datetime:
    """The UTC datetime ``us`` microseconds after the Unix epoch (inverse of :func:`as_arrays`)."""
    return EPOCH + timedelta(microseconds=int(us))


@dataclass(frozen=True, slots=True)
class Point:
    """One temperature reading: device measurement time (timezone-aware) and °C."""

    ts: datetime
    temp_c: float

    def __post_init__(self) -> None:
        require_aware(self.ts, "Point.ts")
        # Normalise ints (and numpy scalars) so downstream figures are plain floats.
        object.__setattr__(self, "temp_c", float(self.temp_c))
        if not math.isfinite(self.temp_c) or self.temp_c <= ABSOLUTE_ZERO_C:
            raise ValueError(
                f"Point.temp_c must be a finite temperature above absolute zero, "
                f"got {self.temp_c!r} at {self.ts.isoformat()}"
            )


def _ts(point: Point) -> datetime:
    return point.ts


def sorted_unique(points: Iterable[Point]) -> list[Point]:
    """Readings sorted by ``ts``; of equal ``ts`` the first in input order is kept (see module)."""
    unique: list[Point] = []
    # sorted() is stable, so among equal ts the input order survives and "first" is well defined.
    for point in sorted(points, key=_ts):
        if unique and unique[-1].ts == point.ts:
            continue
        unique.append(point)
    return unique


def segments(points: Sequence[Point], max_gap: timedelta) -> list[list[Point]]:
    """Split a sorted series into runs whose consecutive readings are at most ``max_gap`` apart.

    ``points`` must be strictly increasing in ``ts`` (use :func:`sorted_unique` first); the time
    between two runs is an unknown gap, not in range.
    """
    require_positive(max_gap, "max_gap")
    runs: list[list[Point]] = []
    previous: Point | None = None
    for point in points:
        if previous is not None and point.ts <= previous.ts:
            raise ValueError(
                f"segments() needs readings strictly increasing in ts, but {point.ts.isoformat()} "
                f"follows {previous.ts.isoformat()}; pass the series through sorted_unique() first"
            )
        if previous is None or point.ts - previous.ts > max_gap:
            runs.append([])
        runs[-1].append(point)
        previous = point
    return runs


def as_arrays(points: Sequence[Point]) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """Times as exact integer µs since the Unix epoch, and temperatures, in input order."""
    # Integer microseconds, not float seconds: window bounds and gap tests must compare exactly
    # the way the datetime-based code does, and float epoch seconds round at the µs level.
    t_us = np.fromiter(
        ((p.ts - EPOCH) // _ONE_US for p in points), dtype=np.int64, count=len(points)
    )
    temp_c = np.fromiter((p.temp_c for p in points), dtype=np.float64, count=len(points))
    return t_us, temp_c


def to_sorted_arrays(points: Iterable[Point]) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """:func:`as_arrays` of :func:`sorted_unique`, done in numpy so large series stay fast."""
    t_us, temp_c = as_arrays(points if isinstance(points, Sequence) else list(points))
    # A stable argsort keeps input order among equal ts, so "keep the first" matches sorted_unique.
    order = np.argsort(t_us, kind="stable")
    t_us, temp_c = t_us[order], temp_c[order]
    keep = np.ones(len(t_us), dtype=bool)
    keep[1:] = np.diff(t_us) != 0
    return t_us[keep], temp_c[keep]


def hold_us(t_us: NDArray[np.int64], max_gap: timedelta) -> NDArray[np.int64]:
    """Microseconds each reading holds its value under the step rule (see module docstring).

    ``t_us`` must be strictly increasing; intervals longer than ``max_gap`` and the last reading
    hold for zero time.
    """
    require_positive(max_gap, "max_gap")
    held = np.zeros(len(t_us), dtype=np.int64)
    if len(t_us) > 1:
        dt = np.diff(t_us)
        held[:-1] = np.where(dt <= to_us(max_gap), dt, 0)
    return held
