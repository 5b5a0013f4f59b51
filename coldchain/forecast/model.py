"""A shipment in transit: when it arrives, and how likely trouble is before then.

The model (every figure comes from the lane's finished shipments or from the shipment's own
readings; nothing is a constant of ours except the trend weight, which is a setting)
-----------------------------------------------------------------------------------------------

**History.** A lane's history is its *finished* shipments (:data:`coldchain.lifecycle.FINISHED`: arrived, whatever
QA made of them since), each with its transit time (``arrived_at - started_at``) and its
excursions as they were recorded, clipped to the transit. Each past shipment is put on one scale,
its **progress** from 0 (start) to 1 (arrival), so that a 6 h and an 8 h trip compare. With fewer
than :data:`MIN_HISTORY` finished shipments there is no history-based figure: the forecast says
so, gives the plan's arrival and only the trend (below).

**Progress now.** From the latest position when the lane's two sites have coordinates: the share
of the great-circle distance origin → destination already covered (``1 - remaining / total``,
clipped to [0, 1]). Else from the elapsed time: ``elapsed / (elapsed + median remaining)``, with
the remaining time taken from the past shipments that were still travelling at this elapsed time.

**Expected arrival.** The remaining transit is, for each past shipment, its transit time × the
share of the route still to go (position), or its transit time minus the elapsed time (elapsed,
over the past shipments that took longer than that); the arrival is now + the median, with the
10th–90th percentile interval. A shipment later than every past one is *overdue*: arrival "now",
no interval.

**Chance of an excursion before arrival** (the next one, if one is under way: then 100 %).

- *History*: among the past shipments like this one so far (without an excursion before this
  progress, if this one has had none; all of them otherwise), the share that had an excursion
  starting between this progress and arrival. It is a plain share: the fewer the past shipments,
  the coarser the steps, and the forecast carries the number it rests on.
- *Trend*: :func:`coldchain.thermal.forecast.forecast_breach` fitted by the caller on the recent
  readings. If it predicts a breach before the expected arrival (the distance of the current
  temperature to the limit over the fitted slope), the trend counts with the weight
  ``trend_weight`` (a setting, checked by ``bench/forecast_calibration.py``).
- Combined as two independent ways to get there: ``1 - (1 - history) × (1 - trend)``.

**Chance of exhausting the stability budget before arrival.** The budget left is the product's
budget minus the time out of range so far; the chance is the share of past shipments whose time
out of range between this progress and arrival was at least that much, combined with the trend
as above when the predicted breach leaves at least the budget left before arrival. No budget: no
figure.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final, Literal

import numpy as np

from coldchain.geo import distance_m

#: Finished shipments a lane needs before its history is used.
MIN_HISTORY: Final = 5
#: The interval of the expected arrival: these percentiles of the past shipments' remaining time.
INTERVAL_PERCENTILES: Final = (10.0, 90.0)

Basis = Literal["history", "plan"]
ProgressBasis = Literal["position", "elapsed"]


def _require_aware(value: datetime, name: str) -> None:
    if value.tzinfo is None:
        raise ValueError(f"{name} must be timezone-aware, got {value!r}")


@dataclass(frozen=True, slots=True)
class PastShipment:
    """A finished shipment of the lane: its transit and its excursions (start, end) in it."""

    started_at: datetime
    arrived_at: datetime
    excursions: tuple[tuple[datetime, datetime], ...] = ()

    def __post_init__(self) -> None:
        _require_aware(self.started_at, "started_at")
        _require_aware(self.arrived_at, "arrived_at")
        if self.arrived_at <= self.started_at:
            raise ValueError(
                f"arrived_at ({self.arrived_at}) must be after started_at ({self.started_at})"
            )

    @property
    def transit_s(self) -> float:
        return (self.arrived_at - self.started_at).total_seconds()

    def progress_at(self, ts: datetime) -> float:
        """Where ``ts`` falls in the transit, 0 (start) to 1 (arrival), clipped."""
        return min(1.0, max(0.0, (ts - self.started_at).total_seconds() / self.transit_s))

    def excursion_spans(self) -> list[tuple[float, float]]:
        """Each excursion as (start, end) progress, clipped to the transit; empty ones dropped."""
        spans = [(self.progress_at(a), self.progress_at(b)) for a, b in self.excursions]
        return [(a, b) for a, b in spans if b > a or 0.0 < a < 1.0]

    def excursion_after(self, progress: float) -> bool:
        """Whether an excursion started after ``progress`` and before arrival."""
        return any(progress < a < 1.0 for a, _ in self.excursion_spans())

    def excursion_before(self, progress: float) -> bool:
        """Whether an excursion started at or before ``progress``."""
        return any(a <= progress for a, _ in self.excursion_spans())

    def out_of_range_after_s(self, progress: float) -> float:
        """Seconds out of range between ``progress`` and arrival."""
        share = sum(max(0.0, b - max(a, progress)) for a, b in self.excursion_spans())
        return share * self.transit_s


@dataclass(frozen=True, slots=True)
class LaneHistory:
    """The finished shipments of one lane (``lane``: its code, for the words)."""

    lane: str
    shipments: tuple[PastShipment, ...]

    @property
    def enough(self) -> bool:
        return len(self.shipments) >= MIN_HISTORY

    def shortfall(self) -> str:
        """Why there is no history-based figure, in the words the pages show."""
        n = len(self.shipments)
        return (
            f"lane {self.lane} has {n} finished shipment{'s' if n != 1 else ''}; "
            f"a forecast from history needs {MIN_HISTORY}"
        )


@dataclass(frozen=True, slots=True)
class InTransit:
    """What is known of a shipment in transit at ``now`` (read by the caller)."""

    started_at: datetime
    planned_arrival: datetime | None = None
    position: tuple[float, float] | None = None  # latest (lat, lon) of its loggers
    origin: tuple[float, float] | None = None  # the lane's sites (lat, lon)
    destination: tuple[float, float] | None = None
    had_excursion: bool = False
    excursion_open: bool = False
    out_of_range_s: float = 0.0  # time out of range so far (its excursions)
    budget_s: float | None = None  # the product's stability budget
    trend_breach_at: datetime | None = None  # from coldchain.thermal.forecast, None: none


@dataclass(frozen=True, slots=True)
class ShipmentForecast:
    """The forecast of one shipment as of ``as_of``; figures are None when they cannot be
    given, and ``notes`` say why."""

    as_of: datetime
    basis: Basis
    lane: str | None
    history_n: int
    progress: float | None
    progress_basis: ProgressBasis | None
    eta: datetime | None
    eta_low: datetime | None
    eta_high: datetime | None
    excursion_chance: float | None
    excursion_history: float | None  # the history part alone
    trend_breach_at: datetime | None
    trend_counts: bool  # the trend predicts a breach before the expected arrival
    budget_chance: float | None
    budget_left_s: float | None
    notes: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        """Plain JSON values (times as ISO 8601)."""
        out: dict[str, Any] = {}
        for name in self.__slots__:
            value = getattr(self, name)
            out[name] = value.isoformat() if isinstance(value, datetime) else value
        out["notes"] = list(self.notes)
        out["min_history"] = MIN_HISTORY
        return out


def progress_by_position(state: InTransit) -> float | None:
    """The share of the route covered, from the latest position (None without coordinates)."""
    if state.position is None or state.origin is None or state.destination is None:
        return None
    total = distance_m(*state.origin, *state.destination)
    if total <= 0:
        return None
    left = distance_m(*state.position, *state.destination)
    return min(1.0, max(0.0, 1.0 - left / total))


def _percentiles(values: Sequence[float]) -> tuple[float, float, float]:
    low, mid, high = np.percentile(np.asarray(values, dtype=float), [
        INTERVAL_PERCENTILES[0], 50.0, INTERVAL_PERCENTILES[1]
    ])  # fmt: skip
    return float(low), float(mid), float(high)


def _combine(history: float, trend: float) -> float:
    return 1.0 - (1.0 - history) * (1.0 - trend)


def forecast_shipment(
    state: InTransit,
    history: LaneHistory | None,
    *,
    now: datetime,
    trend_weight: float,
) -> ShipmentForecast:
    """The forecast of a shipment in transit (the model: module docstring)."""
    _require_aware(now, "now")
    if not 0.0 <= trend_weight <= 1.0:
        raise ValueError(f"trend_weight must be between 0 and 1, got {trend_weight}")
    notes: list[str] = []
    elapsed_s = max(0.0, (now - state.started_at).total_seconds())
    lane = history.lane if history is not None else None
    n = len(history.shipments) if history is not None else 0
    budget_left = None if state.budget_s is None else state.budget_s - state.out_of_range_s

    if history is None or not history.enough:
        notes.append(history.shortfall() if history is not None else "the shipment has no lane")
        eta = state.planned_arrival
        notes.append(
            "expected arrival: the plan's" if eta is not None else "no planned arrival either"
        )
        trend_counts = state.trend_breach_at is not None and (
            eta is None or state.trend_breach_at <= eta
        )
        return ShipmentForecast(
            as_of=now, basis="plan", lane=lane, history_n=n,
            progress=progress_by_position(state),
            progress_basis="position" if progress_by_position(state) is not None else None,
            eta=eta, eta_low=None, eta_high=None,
            excursion_chance=1.0 if state.excursion_open else None, excursion_history=None,
            trend_breach_at=state.trend_breach_at, trend_counts=trend_counts,
            budget_chance=1.0 if budget_left is not None and budget_left <= 0 else None,
            budget_left_s=budget_left, notes=tuple(notes),
        )  # fmt: skip

    past = history.shipments
    transits = [p.transit_s for p in past]
    by_position = progress_by_position(state)
    eta_low = eta_high = None
    if by_position is not None:
        progress: float = by_position
        basis: ProgressBasis = "position"
        low, mid, high = _percentiles([t * (1.0 - progress) for t in transits])
    else:
        basis = "elapsed"
        longer = [t - elapsed_s for t in transits if t > elapsed_s]
        if longer:
            low, mid, high = _percentiles(longer)
            progress = elapsed_s / (elapsed_s + mid)
        else:
            notes.append(f"overdue: longer in transit than every one of the {n} past shipments")
            low = mid = high = 0.0
            progress = 1.0
    eta = now + timedelta(seconds=mid)
    if mid > 0:
        eta_low, eta_high = now + timedelta(seconds=low), now + timedelta(seconds=high)

    # Excursion before arrival: the share of comparable past shipments that had one after here.
    comparable = [p for p in past if state.had_excursion or not p.excursion_before(progress)]
    if comparable:
        hist_chance = sum(p.excursion_after(progress) for p in comparable) / len(comparable)
    else:
        hist_chance = 1.0  # every past shipment had one by now
        notes.append("every past shipment of the lane had an excursion by this point")
    trend_counts = state.trend_breach_at is not None and state.trend_breach_at <= eta
    trend = trend_weight if trend_counts else 0.0
    chance = 1.0 if state.excursion_open else _combine(hist_chance, trend)
    if state.excursion_open:
        notes.append("an excursion is under way")

    budget_chance = None
    if budget_left is not None:
        if budget_left <= 0:
            budget_chance = 1.0
            notes.append("the stability budget is used up")
        else:
            hist_budget = sum(p.out_of_range_after_s(progress) >= budget_left for p in past) / n
            breach_left = (
                (eta - state.trend_breach_at).total_seconds()
                if trend_counts and state.trend_breach_at is not None
                else -math.inf
            )
            budget_trend = trend_weight if breach_left >= budget_left else 0.0
            budget_chance = _combine(hist_budget, budget_trend)
    return ShipmentForecast(
        as_of=now, basis="history", lane=lane, history_n=n, progress=progress,
        progress_basis=basis, eta=eta, eta_low=eta_low, eta_high=eta_high,
        excursion_chance=chance, excursion_history=hist_chance,
        trend_breach_at=state.trend_breach_at, trend_counts=trend_counts,
        budget_chance=budget_chance, budget_left_s=budget_left, notes=tuple(notes),
    )  # fmt: skip
