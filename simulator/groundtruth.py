"""What the simulation really did, to check the platform against (pure).

Computed from the **noise-free** product temperature at each logger's true logging times (only
where the logger recorded: not while it had no power or after it died), against the product's
range. Clock skew, transport faults and sensor noise do not enter: they are what the platform must
see through. The conventions match what the rules engine documents, but the code is independent on
purpose, so the two can be checked against each other:

* a reading is **high** above ``temp_max_c``, **low** below ``temp_min_c`` or at/below
  ``freeze_limit_c``; limits are inclusive;
* an excursion is a maximal run of readings out in one direction without a data gap
  (``dt > gap_factor × interval``); ``start`` is its first out-of-range reading, ``end`` the first
  reading back (or out the other way); a gap ends it at its last out-of-range reading
  (``ended_by_gap``); still out at the end of the run: ``end`` is None (open);
* degree-minutes and time weights use the step rule: a reading holds until the next one, unless
  a gap follows (then it holds for no time);
* ``alarm``: the duration reached the product's alarm delay, or a reading was at/below the freeze
  limit;
* MKT: ΔH per product, R = 8.3144 J/(mol·K), step-rule time weights.

:class:`GroundTruthBuilder` consumes the chunks as the simulation streams them, so it needs memory
per logger, not per reading. :func:`find_excursions` and :func:`mean_kinetic_temperature` are the
same rules on a plain series.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal

import numpy as np
from numpy.typing import NDArray

from simulator.fleet import NEVER, Fleet, Product, from_ms
from simulator.streams import ReadingChunk

if TYPE_CHECKING:
    from simulator.faults import FaultLog

R_J_MOL_K: Final = 8.3144
KELVIN: Final = 273.15
GAP_FACTOR: Final = 2.0
OVER_40_C: Final = 40.0
_REF_K: Final = 293.15  # Arrhenius terms are kept relative to this, so sums never underflow

Direction = Literal["high", "low"]
FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

RULES: Final = {
    "temperature": "noise-free product temperature at the logger's true logging times",
    "limits": "inclusive; high > temp_max_c; low < temp_min_c or <= freeze_limit_c",
    "gap": f"dt > {GAP_FACTOR:g} x logging interval ends an excursion (ended_by_gap)",
    "weighting": "step: a reading holds until the next one; none across a gap",
    "mkt": "time-weighted (step), delta H per product, R = 8.3144 J/(mol K)",
    "alarm": "duration >= alarm delay, or a reading at/below the freeze limit",
}


@dataclass(frozen=True, slots=True)
class TrueExcursion:
    """One true excursion of one logger."""

    direction: Direction
    start: datetime
    end: datetime | None  # None: still open when the run ended
    last_out: datetime
    ended_by_gap: bool
    min_c: float
    max_c: float
    degree_minutes: float
    n_readings: int
    readings_over_40: int
    readings_freezing: int
    alarm: bool

    @property
    def duration_s(self) -> float:
        """``end - start``; up to the last out-of-range reading when open."""
        stop = self.end or self.last_out
        return (stop - self.start).total_seconds()


@dataclass
class _Open:
    direction: Direction
    start: int
    last_out: int
    min_c: float
    max_c: float
    degree_minutes: float = 0.0
    n: int = 0
    over_40: int = 0
    freezing: int = 0
    pending_beyond: float = 0.0  # the last reading's distance past the limit, held until the next
    froze: bool = False


class ExcursionTracker:
    """Finds excursions in a series fed in time-ordered pieces (epoch ms, °C)."""

    def __init__(
        self,
        *,
        temp_min_c: float | None,
        temp_max_c: float | None,
        freeze_limit_c: float | None,
        alarm_delay_s: float,
        max_gap_ms: int,
    ) -> None:
        self.lo = -math.inf if temp_min_c is None else temp_min_c
        self.hi = math.inf if temp_max_c is None else temp_max_c
        self.freeze = -math.inf if freeze_limit_c is None else freeze_limit_c
        self.alarm_delay_ms = alarm_delay_s * 1000.0
        self.max_gap_ms = max_gap_ms
        self.last_t: int | None = None
        self.open: _Open | None = None
        self.done: list[TrueExcursion] = []

    def _classify(self, temps: FloatArray) -> NDArray[np.int8]:
        high = temps > self.hi
        low = (temps < self.lo) | (temps <= self.freeze)
        return np.where(high, 1, np.where(low, -1, 0)).astype(np.int8)

    def feed(self, t_ms: IntArray, temps: FloatArray) -> None:
        """Add readings (ascending times, after any fed before)."""
        if len(t_ms) == 0:
            return
        cls = self._classify(temps)
        if self.open is None and not cls.any():
            self.last_t = int(t_ms[-1])  # the common case: nothing out of range
            return
        prev = np.concatenate(([t_ms[0] if self.last_t is None else self.last_t], t_ms[:-1]))
        gap = (t_ms - prev) > self.max_gap_ms
        cuts = np.flatnonzero((np.diff(cls) != 0) | gap[1:]) + 1
        bounds = np.concatenate(([0], cuts, [len(cls)]))
        for a, b in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
            self._run(int(cls[a]), bool(gap[a]), t_ms[a:b], temps[a:b])
        self.last_t = int(t_ms[-1])

    def _run(self, c: int, gap_before: bool, t: IntArray, v: FloatArray) -> None:
        op = self.open
        direction: Direction | None = "high" if c > 0 else "low" if c < 0 else None
        if op is not None:
            if gap_before:
                self._close(op, end=None)
            elif direction != op.direction:
                op.degree_minutes += op.pending_beyond * (int(t[0]) - op.last_out) / 60_000
                self._close(op, end=int(t[0]))
            else:
                op.degree_minutes += op.pending_beyond * (int(t[0]) - op.last_out) / 60_000
        if direction is None:
            return
        if self.open is None:
            self.open = _Open(direction, int(t[0]), int(t[0]), math.inf, -math.inf)
        op = self.open
        limit = (
            self.hi if direction == "high" else (self.lo if math.isfinite(self.lo) else self.freeze)
        )
        beyond = np.abs(v - limit)
        op.degree_minutes += float(np.sum(beyond[:-1] * np.diff(t))) / 60_000
        op.pending_beyond = float(beyond[-1])
        op.last_out = int(t[-1])
        op.min_c = min(op.min_c, float(v.min()))
        op.max_c = max(op.max_c, float(v.max()))
        op.n += len(v)
        op.over_40 += int(np.count_nonzero(v > OVER_40_C))
        freezing_at = self.freeze if math.isfinite(self.freeze) else 0.0
        op.freezing += int(np.count_nonzero(v <= freezing_at))
        op.froze = op.froze or bool(np.any(v <= self.freeze))

    def _close(self, op: _Open, *, end: int | None) -> None:
        """End ``op`` at ``end`` (the first reading back), or at its last reading (a gap)."""
        stop = op.last_out if end is None else end
        alarm = (stop - op.start) >= self.alarm_delay_ms or op.froze
        self.done.append(
            TrueExcursion(
                direction=op.direction,
                start=from_ms(op.start),
                end=from_ms(stop),
                last_out=from_ms(op.last_out),
                ended_by_gap=end is None,
                min_c=op.min_c,
                max_c=op.max_c,
                degree_minutes=op.degree_minutes,
                n_readings=op.n,
                readings_over_40=op.over_40,
                readings_freezing=op.freezing,
                alarm=alarm,
            )
        )
        self.open = None

    def finish(self, end_ms: int) -> list[TrueExcursion]:
        """All excursions; one still out at ``end_ms`` is open, unless the logger fell silent."""
        op = self.open
        if op is not None:
            if self.last_t is not None and end_ms - self.last_t > self.max_gap_ms:
                self._close(op, end=None)
            else:
                self.done.append(
                    TrueExcursion(
                        direction=op.direction,
                        start=from_ms(op.start),
                        end=None,
                        last_out=from_ms(op.last_out),
                        ended_by_gap=False,
                        min_c=op.min_c,
                        max_c=op.max_c,
                        degree_minutes=op.degree_minutes,
                        n_readings=op.n,
                        readings_over_40=op.over_40,
                        readings_freezing=op.freezing,
                        alarm=(op.last_out - op.start) >= self.alarm_delay_ms or op.froze,
                    )
                )
                self.open = None
        return list(self.done)


def find_excursions(
    t_ms: Sequence[int] | IntArray,
    temps_c: Sequence[float] | FloatArray,
    *,
    temp_min_c: float | None,
    temp_max_c: float | None,
    interval_s: float,
    freeze_limit_c: float | None = None,
    alarm_delay_s: float = 0.0,
    end_ms: int | None = None,
) -> list[TrueExcursion]:
    """The excursions of a plain series (ascending epoch ms); ``end_ms`` defaults to the last time."""
    t = np.asarray(t_ms, dtype=np.int64)
    tracker = ExcursionTracker(
        temp_min_c=temp_min_c,
        temp_max_c=temp_max_c,
        freeze_limit_c=freeze_limit_c,
        alarm_delay_s=alarm_delay_s,
        max_gap_ms=round(GAP_FACTOR * interval_s * 1000),
    )
    tracker.feed(t, np.asarray(temps_c, dtype=np.float64))
    if end_ms is None:
        end_ms = int(t[-1]) if len(t) else 0
    return tracker.finish(end_ms)


def mean_kinetic_temperature(
    temps_c: Sequence[float] | FloatArray,
    weights: Sequence[float] | FloatArray | None = None,
    *,
    delta_h_j_mol: float = 83_144.0,
) -> float:
    """MKT in °C: ``(ΔH/R) / -ln(Σ w·exp(-ΔH/(R·T)) / Σ w)``, equal weights by default."""
    t_k = np.asarray(temps_c, dtype=np.float64) + KELVIN
    w = np.ones_like(t_k) if weights is None else np.asarray(weights, dtype=np.float64)
    if t_k.size == 0 or w.sum() <= 0:
        raise ValueError("MKT needs at least one reading with positive weight")
    e = delta_h_j_mol / R_J_MOL_K
    terms = np.exp(-e * (1.0 / t_k - 1.0 / _REF_K))
    mean = float(np.sum(w * terms) / np.sum(w))
    return e / (e / _REF_K - math.log(mean)) - KELVIN


# --- the whole run --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DeviceTruth:
    """One logger's truth."""

    device_id: str
    n_readings: int
    first_reading: datetime | None
    last_reading: datetime | None
    min_c: float | None
    max_c: float | None
    mkt_c: float | None
    time_out_of_range_s: float
    clock_skew_ms: int
    dies_at: datetime | None
    excursions: tuple[TrueExcursion, ...]


@dataclass(frozen=True, slots=True)
class ShipmentTruth:
    """One shipment's truth: its product range, loggers and injected events."""

    reference: str
    product_gtin: str
    temp_min_c: float
    temp_max_c: float
    freeze_limit_c: float | None
    planned_departure: datetime
    planned_arrival: datetime
    events: tuple[dict[str, Any], ...]
    devices: tuple[DeviceTruth, ...]

    @property
    def excursions(self) -> list[tuple[str, TrueExcursion]]:
        """(device_id, excursion) for every logger of the shipment."""
        return [(d.device_id, e) for d in self.devices for e in d.excursions]


@dataclass(frozen=True)
class GroundTruth:
    """The truth of a whole run; :meth:`to_json` is what ``ground_truth_path`` receives."""

    scenario: str
    seed: int
    start: datetime
    end: datetime
    interval_s: int
    complete: bool  # False when the run was stopped early
    shipments: tuple[ShipmentTruth, ...]
    faults: dict[str, Any] = field(default_factory=dict)
    rules: dict[str, str] = field(default_factory=lambda: dict(RULES))

    def shipment(self, reference: str) -> ShipmentTruth:
        """The truth of one shipment."""
        return next(s for s in self.shipments if s.reference == reference)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (datetimes as ISO 8601 text)."""
        out: dict[str, Any] = _jsonable(asdict(self))
        return out

    def to_json(self) -> str:
        """The ground truth file's text."""
        return json.dumps(self.to_dict(), indent=1, sort_keys=False)

    def write(self, path: Path) -> None:
        """Write :meth:`to_json` to ``path``."""
        path.write_text(self.to_json() + "\n", encoding="utf-8")


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, float):
        return round(value, 4)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


class GroundTruthBuilder:
    """Accumulates the truth chunk by chunk; :meth:`finish` gives the :class:`GroundTruth`."""

    def __init__(self, fleet: Fleet) -> None:
        self.fleet = fleet
        n = len(fleet.devices)
        interval_ms = fleet.interval_s * 1000
        self.max_gap_ms = round(GAP_FACTOR * interval_ms)
        products = [fleet.product_of_device(i) for i in range(n)]
        self.trackers = [_tracker(p, self.max_gap_ms) for p in products]
        self.e = np.array([p.mkt_delta_h_j_mol / R_J_MOL_K for p in products])
        self.sum_w = np.zeros(n)
        self.sum_wx = np.zeros(n)
        self.last_t = np.full(n, -1, dtype=np.int64)
        self.last_x = np.zeros(n)
        self.count = np.zeros(n, dtype=np.int64)
        self.first = np.full(n, NEVER, dtype=np.int64)
        self.vmin = np.full(n, np.inf)
        self.vmax = np.full(n, -np.inf)
        self.covered_until = fleet.start_ms
        self.lo = np.array([tr.lo for tr in self.trackers])
        self.hi = np.array([tr.hi for tr in self.trackers])
        self.freeze = np.array([tr.freeze for tr in self.trackers])
        self.is_open = np.zeros(n, dtype=bool)

    def observe(self, chunk: ReadingChunk) -> None:
        """Take in one chunk of the run."""
        rec, t, v = chunk.recorded, chunk.t_ms, chunk.temp_true_c
        self.covered_until = chunk.horizon_ms
        self.count += rec.sum(axis=1)
        self.first = np.minimum(self.first, np.where(rec, t, NEVER).min(axis=1))
        self.vmin = np.minimum(self.vmin, np.where(rec, v, np.inf).min(axis=1))
        self.vmax = np.maximum(self.vmax, np.where(rec, v, -np.inf).max(axis=1))
        before = self.last_t.copy()
        self._mkt(rec, t, v)
        out = rec & ((v > self.hi[:, None]) | (v < self.lo[:, None]) | (v <= self.freeze[:, None]))
        busy = out.any(axis=1) | self.is_open
        # Only loggers with something out of range (or an excursion open) need the run logic.
        for d in np.flatnonzero(busy).tolist():
            tracker = self.trackers[d]
            tracker.last_t = int(before[d]) if before[d] >= 0 else None
            row = rec[d]
            tracker.feed(t[d, row], v[d, row])
            self.is_open[d] = tracker.open is not None

    def _mkt(self, rec: NDArray[np.bool_], t: IntArray, v: FloatArray) -> None:
        """Step-rule sums, vectorised: each reading is weighted when the next one arrives."""
        x = -self.e[:, None] * (1.0 / (v + KELVIN) - 1.0 / _REF_K)
        n, m = t.shape
        # previous recorded column of each cell (-1: the one carried from the last chunk)
        idx = np.where(rec, np.arange(m)[None, :], -1)
        prev_col = np.maximum.accumulate(idx, axis=1)
        prev_col = np.concatenate((np.full((n, 1), -1), prev_col[:, :-1]), axis=1)
        has_prev = prev_col >= 0
        rows = np.arange(n)[:, None]
        pc = np.maximum(prev_col, 0)
        prev_t = np.where(has_prev, t[rows, pc], self.last_t[:, None])
        prev_x = np.where(has_prev, x[rows, pc], self.last_x[:, None])
        valid = rec & (prev_t >= 0)
        dt = (t - prev_t).astype(np.float64)
        w = np.where(valid & (dt <= self.max_gap_ms), dt, 0.0)
        self.sum_w += w.sum(axis=1)
        self.sum_wx += (w * np.exp(np.where(valid, prev_x, 0.0))).sum(axis=1)
        last_col = np.where(rec.any(axis=1), m - 1 - np.argmax(rec[:, ::-1], axis=1), -1)
        got = last_col >= 0
        lc = np.maximum(last_col, 0)
        self.last_t = np.where(got, t[np.arange(n), lc], self.last_t)
        self.last_x = np.where(got, x[np.arange(n), lc], self.last_x)

    def finish(self, faults: FaultLog | None = None, *, complete: bool = True) -> GroundTruth:
        """The truth of the run so far."""
        f = self.fleet
        end_ms = f.end_ms if complete else min(f.end_ms, self.covered_until)
        skews: dict[str, int] = dict(faults.clock_skew_ms) if faults is not None else {}
        per_ship: dict[int, list[DeviceTruth]] = {}
        for d, dev in enumerate(f.devices):
            tracker = self.trackers[d]
            tracker.last_t = int(self.last_t[d]) if self.last_t[d] >= 0 else None
            exc = tracker.finish(end_ms)
            mkt = None
            if self.sum_w[d] > 0:
                e = self.e[d]
                mkt = e / (e / _REF_K - math.log(self.sum_wx[d] / self.sum_w[d])) - KELVIN
            n = int(self.count[d])
            per_ship.setdefault(dev.shipment_index, []).append(
                DeviceTruth(
                    device_id=dev.device_id,
                    n_readings=n,
                    first_reading=from_ms(int(self.first[d])) if n else None,
                    last_reading=from_ms(int(self.last_t[d])) if n else None,
                    min_c=float(self.vmin[d]) if n else None,
                    max_c=float(self.vmax[d]) if n else None,
                    mkt_c=mkt,
                    time_out_of_range_s=sum(x.duration_s for x in exc),
                    clock_skew_ms=skews.get(dev.device_id, 0),
                    dies_at=from_ms(dev.dies_at_ms)
                    if dev.dies_at_ms is not None and dev.dies_at_ms < f.end_ms
                    else None,
                    excursions=tuple(exc),
                )
            )
        events: dict[int, list[dict[str, Any]]] = {}
        for ev in f.events:
            events.setdefault(ev.shipment_index, []).append(
                {
                    "kind": ev.kind,
                    "device_id": f.devices[ev.device_index].device_id
                    if ev.device_index is not None
                    else None,
                    "start": from_ms(ev.start_ms),
                    "end": from_ms(ev.end_ms) if ev.end_ms is not None else None,
                    "temp_c": ev.temp_c,
                    "offset_c": ev.offset_c,
                }
            )
        shipments = []
        for s in f.shipments:
            p = f.product(s.product_gtin)
            shipments.append(
                ShipmentTruth(
                    reference=s.reference,
                    product_gtin=s.product_gtin,
                    temp_min_c=p.temp_min_c,
                    temp_max_c=p.temp_max_c,
                    freeze_limit_c=p.freeze_limit_c,
                    planned_departure=s.planned_departure,
                    planned_arrival=s.planned_arrival,
                    events=tuple(events.get(s.index, [])),
                    devices=tuple(per_ship.get(s.index, [])),
                )
            )
        return GroundTruth(
            scenario=f.scenario.name,
            seed=f.seed,
            start=f.start,
            end=from_ms(end_ms),
            interval_s=f.interval_s,
            complete=complete,
            shipments=tuple(shipments),
            faults=faults.to_dict() if faults is not None else {},
        )


def _tracker(p: Product, max_gap_ms: int) -> ExcursionTracker:
    return ExcursionTracker(
        temp_min_c=p.temp_min_c,
        temp_max_c=p.temp_max_c,
        freeze_limit_c=p.freeze_limit_c,
        alarm_delay_s=p.alarm_delay_s,
        max_gap_ms=max_gap_ms,
    )
