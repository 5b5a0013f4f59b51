"""A lane's risk from its finished shipments, and its risk score with the parts shown (pure).

The figures of a lane (or of one calendar month of it), from one row per finished shipment
(:class:`ShipmentFigures`) and the band of its readings (:class:`Band`, a percentile the database
computes):

* **excursion rate**: shipments with at least one excursion / shipments;
* **time out of range** per shipment: the sum of its excursions' durations (current versions,
  an open one up to its last reading out of range), mean and 90th percentile over the shipments;
* **temperature band**: the 5th and 95th percentiles of the lane's readings in transit (between
  the shipment's start and arrival), where 90% of them fall;
* **transit against plan**: arrival − planned arrival, median, and the share that arrived after
  the plan (over the shipments that have both);
* **alarm rate**: alerts raised per shipment.

The **risk score** (0–100, higher is riskier) adds four parts, each a share of its weight
(:data:`WEIGHTS`), so every point can be traced to a figure:

    40 × excursion rate
  + 20 × min(1, mean time out of range / 4 h)
  + 20 × share late
  + 20 × min(1, alerts per shipment)

A lane gets a score only once it has ``minimum`` finished shipments (README "Insight"; setting
``insight.min_shipments``, 5 by default); below that its figures are still shown, with a note
saying how many it has and how many a score needs. Percentiles interpolate linearly between
the two nearest ranks (PostgreSQL's ``percentile_cont``, numpy's default).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from statistics import median
from typing import Any, Final

#: Each part's weight in the score (they add up to 100).
WEIGHTS: Final[dict[str, float]] = {
    "excursions": 40.0,
    "time_out": 20.0,
    "late": 20.0,
    "alarms": 20.0,
}
#: Mean time out of range per shipment that counts as the whole time-out part.
TIME_OUT_FULL_S: Final = 4 * 3600.0
#: Alerts per shipment that count as the whole alarm part.
ALARMS_FULL: Final = 1.0

PART_LABELS: Final[dict[str, str]] = {
    "excursions": "excursion rate",
    "time_out": "time out of range",
    "late": "late arrivals",
    "alarms": "alarm rate",
}


@dataclass(frozen=True, slots=True)
class ShipmentFigures:
    """One finished shipment of a lane, as the database summarises it."""

    shipment_id: int
    reference: str
    lane: str
    arrived_at: datetime | None
    planned_arrival: datetime | None
    excursions: int
    time_out_s: float
    alerts: int


@dataclass(frozen=True, slots=True)
class Band:
    """Where 90% of the readings fall: their 5th and 95th percentiles, and how many there were."""

    low_c: float
    high_c: float
    readings: int


@dataclass(frozen=True, slots=True)
class ScorePart:
    """One part of the risk score: the figure it is from, and the points it gives."""

    name: str
    label: str
    figure: float
    weight: float
    points: float


@dataclass(frozen=True, slots=True)
class LaneRisk:
    """The figures of one lane (``month`` None) or of one calendar month of it (``YYYY-MM``)."""

    lane: str
    mode: str
    month: str | None
    shipments: int
    with_excursions: int
    excursion_rate: float | None
    time_out_mean_s: float | None
    time_out_p90_s: float | None
    band: Band | None
    with_plan: int
    delay_median_s: float | None
    late_share: float | None
    alerts: int
    alarm_rate: float | None
    minimum: int
    score: float | None
    parts: tuple[ScorePart, ...]
    note: str | None

    def to_dict(self) -> dict[str, Any]:
        """JSON values (the API's and the CSV's)."""
        return {
            "lane": self.lane,
            "mode": self.mode,
            "month": self.month,
            "shipments": self.shipments,
            "with_excursions": self.with_excursions,
            "excursion_rate": self.excursion_rate,
            "time_out_mean_s": self.time_out_mean_s,
            "time_out_p90_s": self.time_out_p90_s,
            "band_low_c": None if self.band is None else self.band.low_c,
            "band_high_c": None if self.band is None else self.band.high_c,
            "band_readings": 0 if self.band is None else self.band.readings,
            "with_plan": self.with_plan,
            "delay_median_s": self.delay_median_s,
            "late_share": self.late_share,
            "alerts": self.alerts,
            "alarm_rate": self.alarm_rate,
            "minimum": self.minimum,
            "score": self.score,
            "parts": [
                {
                    "name": p.name,
                    "label": p.label,
                    "figure": p.figure,
                    "weight": p.weight,
                    "points": p.points,
                }
                for p in self.parts
            ],
            "note": self.note,
        }


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0–1) of ``values``, interpolated linearly between the nearest ranks."""
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    at = q * (len(ordered) - 1)
    lo, hi = math.floor(at), math.ceil(at)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (at - lo)


def score_parts(
    *, excursion_rate: float, time_out_mean_s: float, late_share: float | None, alarm_rate: float
) -> tuple[ScorePart, ...]:
    """The four parts of the risk score (see the module docstring); a lane with no planned
    arrival to compare with gets no points for lateness."""
    shares = {
        "excursions": (excursion_rate, excursion_rate),
        "time_out": (time_out_mean_s, min(1.0, time_out_mean_s / TIME_OUT_FULL_S)),
        "late": (late_share or 0.0, late_share or 0.0),
        "alarms": (alarm_rate, min(1.0, alarm_rate / ALARMS_FULL)),
    }
    return tuple(
        ScorePart(name, PART_LABELS[name], figure, WEIGHTS[name], WEIGHTS[name] * share)
        for name, (figure, share) in shares.items()
    )


def lane_risk(
    lane: str,
    mode: str,
    shipments: Sequence[ShipmentFigures],
    band: Band | None,
    *,
    minimum: int,
    month: str | None = None,
) -> LaneRisk:
    """The figures of ``lane`` from its finished ``shipments`` (see the module docstring)."""
    n = len(shipments)
    with_exc = sum(1 for s in shipments if s.excursions > 0)
    outs = [s.time_out_s for s in shipments]
    delays = [
        (s.arrived_at - s.planned_arrival).total_seconds()
        for s in shipments
        if s.arrived_at is not None and s.planned_arrival is not None
    ]
    alerts = sum(s.alerts for s in shipments)
    rate = with_exc / n if n else None
    mean_out = sum(outs) / n if n else None
    late = sum(1 for d in delays if d > 0) / len(delays) if delays else None
    alarm_rate = alerts / n if n else None
    parts: tuple[ScorePart, ...] = ()
    score = None
    note = None
    if n >= minimum and rate is not None and mean_out is not None and alarm_rate is not None:
        parts = score_parts(
            excursion_rate=rate, time_out_mean_s=mean_out, late_share=late, alarm_rate=alarm_rate
        )
        score = sum(p.points for p in parts)
    else:
        where = f"lane {lane}" + (f" in {month}" if month else "")
        note = (
            f"{where} has {n} finished shipment{'' if n == 1 else 's'}; "
            f"a risk score needs {minimum}"
        )
    return LaneRisk(
        lane=lane,
        mode=mode,
        month=month,
        shipments=n,
        with_excursions=with_exc,
        excursion_rate=rate,
        time_out_mean_s=mean_out,
        time_out_p90_s=percentile(outs, 0.9) if outs else None,
        band=band,
        with_plan=len(delays),
        delay_median_s=median(delays) if delays else None,
        late_share=late,
        alerts=alerts,
        alarm_rate=alarm_rate,
        minimum=minimum,
        score=score,
        parts=parts,
        note=note,
    )


def month_of(at: datetime) -> str:
    """The calendar month (UTC) of an instant, as ``YYYY-MM``."""
    return f"{at.year:04d}-{at.month:02d}"


def by_month(
    lane: str,
    mode: str,
    shipments: Iterable[ShipmentFigures],
    bands: Mapping[str, Band],
    *,
    minimum: int,
) -> list[LaneRisk]:
    """The lane's figures per calendar month of arrival, oldest first (seasonality); a shipment
    without an arrival time belongs to no month."""
    months: dict[str, list[ShipmentFigures]] = {}
    for s in shipments:
        if s.arrived_at is not None:
            months.setdefault(month_of(s.arrived_at), []).append(s)
    return [
        lane_risk(lane, mode, rows, bands.get(m), minimum=minimum, month=m)
        for m, rows in sorted(months.items())
    ]
