"""A unit's temperature passport, from its containment pieces and their readings (pure).

Input: the *pieces* of the unit's history (over [start, end) it inherits the readings of this
logger, through this chain of containers, in this shipment; see :mod:`db.queries.trace.containment`), the
readings of those windows, the product's stability profile and the temperature limits the rules
engine judges each of the unit's shipments by (:mod:`alerts.in_force`: product row, rules file
and stored rule versions, layered; not the product row alone). When the shipments' limits
differ, the passport judges by the strictest combination (:func:`passport_limits`) and says so. Output: the unit's series and
the figures the issue asks for, computed by the platform's own pure functions:
:func:`coldchain.thermal.excursions.detect_excursions`,
:func:`coldchain.thermal.budget.budget_usage` and :func:`coldchain.thermal.mkt.mkt` (step
weighting, the rules engine's default).

Tracks (several loggers at once)
--------------------------------
When a shipment carries several loggers, the pieces are split into **tracks**, each one coherent
series (:mod:`traceability.tracks`, which also defines the pieces and merges their windows).
Excursions are reported from every track; the budget and the MKT are those of the **worst**
track (most time counted against the budget, highest MKT): the conservative reading of "was this
box ever too warm?".

Time between two pieces of a track with no logger (a warehouse between two shipments) is longer
than ``max_gap`` and so is a *gap*: unknown, counted against the budget as worst case, never as
in range. When the unit's last piece has ended (it left the monitored chain), figures are taken
as of that end, so the time after it is not counted as a trailing gap.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from coldchain.thermal.budget import BudgetUsage, budget_usage
from coldchain.thermal.excursions import Excursion, TempLimits, detect_excursions
from coldchain.thermal.limits import Limits, strictest, temperature_limits
from coldchain.thermal.mkt import DEFAULT_DELTA_H_J_MOL, MKTResult, Weighting, mkt
from traceability.tracks import (
    Inherited,
    Piece,
    max_gap_for,
    piece_order,
    split_tracks,
    track_points,
)

__all__ = [
    "WEIGHTING",
    "Containment",
    "Figures",
    "Passport",
    "Profile",
    "RecordedExcursion",
    "Ride",
    "TrackFigures",
    "UnitInfo",
    "build_passport",
    "compute_figures",
    "passport_json",
    "passport_limits",
    "qa_cleared",
    "qa_state",
]

#: The MKT weighting rule of every passport (printed with it).
WEIGHTING = Weighting.STEP
# Without a stability budget the time out of range is still reported; the share is not.
_NOMINAL_BUDGET = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class UnitInfo:
    """The unit as stored."""

    epc: str
    kind: str
    gtin: str | None
    serial: str | None
    sscc: str | None
    lot: str | None
    expiry: date | None
    commissioned_at: datetime | None


@dataclass(frozen=True, slots=True)
class Profile:
    """The product's labelled range and stability data."""

    gtin: str
    name: str | None
    temp_min_c: float | None
    temp_max_c: float | None
    freeze_limit_c: float | None
    alarm_delay_s: int = 0
    stability_budget_s: int | None = None
    mkt_delta_h_j_mol: float = DEFAULT_DELTA_H_J_MOL
    mkt_limit_c: float | None = None


@dataclass(frozen=True, slots=True)
class Containment:
    """The unit was (transitively) inside ``container`` over [start, end)."""

    container: str
    kind: str
    depth: int
    chain: tuple[str, ...]
    start: datetime | None
    end: datetime | None


@dataclass(frozen=True, slots=True)
class Ride:
    """``container`` (the unit or one of its containers) rode in a shipment over [start, end),
    with the unit inside; ``legs`` are the shipment's legs planned to overlap that time."""

    container: str
    chain: tuple[str, ...]
    shipment_id: int
    shipment_reference: str
    start: datetime | None
    end: datetime | None
    legs: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True, slots=True)
class RecordedExcursion:
    """An excursion the rules engine recorded on a logger while the unit was in its shipment,
    with when the unit was exposed and the signed QA disposition that decides its clearance.

    ``review_*`` and ``disposition_*`` describe the disposition in force for the unit (the
    later signed of its shipment's whole-shipment record and its lot's record; None: nobody
    signed one); ``review_covers`` says it was signed on a report that held this excursion row.
    Cleared means released *and* covered: a release signed before late data superseded the row
    QA saw does not clear the new row.
    """

    id: int
    shipment_id: int
    shipment_reference: str
    device_id: str
    direction: str
    start_ts: datetime
    end_ts: datetime | None
    min_c: float
    max_c: float
    degree_minutes: float
    alarm: bool
    exposed_from: datetime
    exposed_to: datetime | None
    review_disposition: str | None = None
    reviewed_by: str | None = None
    reviewed_at: datetime | None = None
    disposition_id: int | None = None
    disposition_lot: str | None = None
    review_covers: bool = False

    @property
    def cleared(self) -> bool:
        """QA released it (see :func:`qa_cleared`)."""
        return qa_cleared(self.review_disposition, self.review_covers)

    @property
    def qa_state(self) -> str:
        """QA's position in a few words (see :func:`qa_state`)."""
        return qa_state(self.review_disposition, self.review_covers)


def qa_cleared(decision: str | None, covers: bool) -> bool:
    """An excursion is cleared when the disposition in force is ``release`` and was signed on a
    report that held the excursion row (``covers``)."""
    return decision == "release" and covers


def qa_state(decision: str | None, covers: bool) -> str:
    """QA's position on an excursion in a few words: ``released``, ``not reviewed``, the
    decision in force (``quarantine``, ``reject``, ``return``), or a release that predates it."""
    if decision is None:
        return "not reviewed"
    if qa_cleared(decision, covers):
        return "released"
    if decision == "release":
        return "released before this excursion was recorded; needs a new review"
    return decision


@dataclass(frozen=True, slots=True)
class TrackFigures:
    """Figures of one track (one coherent series)."""

    devices: tuple[str, ...]
    start: datetime | None
    end: datetime | None
    as_of: datetime
    n_readings: int
    excursions: tuple[Excursion, ...]
    usage: BudgetUsage | None
    mkt: MKTResult | None


@dataclass(frozen=True, slots=True)
class Figures:
    """The passport's figures: per track, and the conservative summary over tracks."""

    tracks: tuple[TrackFigures, ...]
    limits: TempLimits | None
    budget: timedelta | None
    max_gap: timedelta
    weighting: Weighting = WEIGHTING
    delta_h_j_mol: float = DEFAULT_DELTA_H_J_MOL
    sources: tuple[str, ...] = ()  # the rule layers the limits come from

    @property
    def excursions(self) -> list[tuple[int, Excursion]]:
        """Every excursion of every track, as (track index, excursion), in time order."""
        found = [(i, e) for i, t in enumerate(self.tracks) for e in t.excursions]
        return sorted(found, key=lambda ie: (ie[1].start, ie[0]))

    @property
    def worst_usage(self) -> BudgetUsage | None:
        """The track usage with the most time counted against the budget."""
        usages = [t.usage for t in self.tracks if t.usage is not None]
        return max(usages, key=lambda u: u.counted, default=None)

    @property
    def worst_mkt(self) -> MKTResult | None:
        """The highest MKT of any track."""
        results = [t.mkt for t in self.tracks if t.mkt is not None]
        return max(results, key=lambda m: m.mkt_c, default=None)


@dataclass(frozen=True, slots=True)
class Passport:
    """Everything known about one unit's conditions and custody."""

    unit: UnitInfo
    product: Profile | None
    path: tuple[Containment, ...]
    rides: tuple[Ride, ...]
    pieces: tuple[Piece, ...]
    readings: tuple[Inherited, ...]
    figures: Figures
    recorded_excursions: tuple[RecordedExcursion, ...] = ()
    now: datetime | None = None
    notes: tuple[str, ...] = field(default=())


# --- figures -----------------------------------------------------------------------------------


def passport_limits(
    shipment_limits: Mapping[int, Limits | None], product_limits: Limits | None
) -> tuple[Limits | None, tuple[str, ...]]:
    """The limits the passport judges by, and a note when the unit's shipments differ.

    Each shipment the unit rode in counts with the limits the rules engine judges it by; one
    without any (no product on the shipment) counts with the unit's product's own rules. Without
    shipments, the product's rules. Different limits: the strictest combination
    (:func:`coldchain.thermal.limits.strictest`), the conservative answer.
    """
    judged = [x if x is not None else product_limits for x in shipment_limits.values()]
    if not judged:
        judged = [product_limits]
    thresholds = {(x.low_c, x.high_c, x.freeze_c, x.alarm_delay) for x in judged if x is not None}
    notes: tuple[str, ...] = ()
    if len(thresholds) > 1:
        notes = (
            f"the unit's {len(judged)} shipments are judged by different limits; the passport "
            "uses the strictest of them",
        )
    return strictest(judged), notes


def _track_figures(
    track: Sequence[Piece],
    readings: Sequence[Inherited],
    limits: TempLimits | None,
    budget: timedelta | None,
    *,
    max_gap: timedelta,
    delta_h_j_mol: float,
    now: datetime,
) -> TrackFigures:
    points = track_points(track, readings)
    end = track[-1].end
    # Once the unit has left the monitored chain, what follows is not this passport's to count.
    as_of = now if end is None else min(now, end)
    excursions: tuple[Excursion, ...] = ()
    usage: BudgetUsage | None = None
    if limits is not None and points:
        excursions = tuple(detect_excursions(points, limits, now=as_of))
        usage = budget_usage(points, limits, budget or _NOMINAL_BUDGET, max_gap=max_gap, now=as_of)
    result = (
        mkt(
            [p for p in points if p.ts <= as_of],
            weighting=WEIGHTING,
            max_gap=max_gap,
            delta_h_j_mol=delta_h_j_mol,
        )
        if points
        else None
    )
    return TrackFigures(
        devices=tuple(dict.fromkeys(p.device_id for p in track)),
        start=track[0].start,
        end=end,
        as_of=as_of,
        n_readings=len(points),
        excursions=excursions,
        usage=usage,
        mkt=result,
    )


def compute_figures(
    pieces: Sequence[Piece],
    readings: Sequence[Inherited],
    profile: Profile | None,
    *,
    limits: Limits | None,
    max_gap: timedelta,
    now: datetime,
) -> Figures:
    """Excursions, budget use and MKT of the unit's inherited series (see the module doc),
    excursions and budget judged by ``limits`` (None: no range to judge by)."""
    judged = None if limits is None else temperature_limits(limits, max_gap)
    budget = (
        timedelta(seconds=profile.stability_budget_s)
        if profile is not None and profile.stability_budget_s
        else None
    )
    delta_h = profile.mkt_delta_h_j_mol if profile is not None else DEFAULT_DELTA_H_J_MOL
    tracks = tuple(
        _track_figures(t, readings, judged, budget, max_gap=max_gap, delta_h_j_mol=delta_h, now=now)
        for t in split_tracks(pieces)
    )
    return Figures(
        tracks=tracks,
        limits=judged,
        budget=budget,
        max_gap=max_gap,
        delta_h_j_mol=delta_h,
        sources=() if limits is None else limits.sources,
    )


def build_passport(
    *,
    unit: UnitInfo,
    product: Profile | None,
    path: Sequence[Containment],
    rides: Sequence[Ride],
    pieces: Sequence[Piece],
    readings: Sequence[Inherited],
    recorded: Sequence[RecordedExcursion],
    shipment_limits: Mapping[int, Limits | None],
    product_limits: Limits | None,
    gap_factor: float,
    now: datetime,
) -> Passport:
    """Assemble a passport; the figures come from :func:`compute_figures`, judged by
    :func:`passport_limits` of the shipments' and the product's limits."""
    max_gap = max_gap_for(pieces, gap_factor=gap_factor)
    limits, limit_notes = passport_limits(shipment_limits, product_limits)
    figures = compute_figures(pieces, readings, product, limits=limits, max_gap=max_gap, now=now)
    notes: list[str] = list(limit_notes)
    if not pieces:
        notes.append("no logger watched this unit: it never rode in a monitored shipment")
    if len(figures.tracks) > 1:
        notes.append(
            f"{len(figures.tracks)} loggers watched this unit at the same time; budget and MKT "
            "are those of the worst series"
        )
    if product is None:
        notes.append("product unknown: no range, budget or MKT limit to judge against")
    elif figures.budget is None:
        notes.append("the product has no stability budget: time out of range is not judged")
    return Passport(
        unit=unit,
        product=product,
        path=tuple(path),
        rides=tuple(rides),
        pieces=tuple(sorted(pieces, key=piece_order)),
        readings=tuple(sorted(readings, key=lambda r: (r.ts, r.device_id))),
        figures=figures,
        recorded_excursions=tuple(recorded),
        now=now,
        notes=tuple(notes),
    )


# --- JSON --------------------------------------------------------------------------------------


def _s(value: timedelta | None) -> float | None:
    return None if value is None else value.total_seconds()


def _excursion_json(track: int, e: Excursion) -> dict[str, Any]:
    return {
        "track": track,
        "direction": e.direction,
        "limit_c": e.limit_c,
        "start": e.start,
        "end": e.end,
        "open": e.is_open,
        "duration_s": _s(e.duration),
        "min_c": e.min_c,
        "max_c": e.max_c,
        "degree_minutes": e.degree_minutes,
        "n_readings": e.n_readings,
        "alarm": e.alarm,
        "freeze_alarm": e.freeze_alarm,
        "ended_by_gap": e.ended_by_gap,
    }


def _usage_json(u: BudgetUsage | None, budget: timedelta | None) -> dict[str, Any] | None:
    if u is None:
        return None
    known = budget is not None
    return {
        "budget_s": _s(budget),
        "time_in_s": _s(u.time_in),
        "time_out_s": _s(u.time_out),
        "time_gap_s": _s(u.time_gap),
        "counted_s": _s(u.counted),
        "count_gaps_as_out": u.count_gaps_as_out,
        "remaining_s": _s(u.remaining) if known else None,
        "share_used": u.share_used if known else None,
        "status": u.status if known else None,
        "exhausted_at": u.exhausted_at if known else None,
    }


def _mkt_json(m: MKTResult | None) -> dict[str, Any] | None:
    if m is None:
        return None
    return {
        "mkt_c": m.mkt_c,
        "delta_h_j_mol": m.delta_h_j_mol,
        "weighting": str(m.weighting),
        "max_gap_s": _s(m.max_gap),
        "duration_covered_s": _s(m.duration_covered),
        "n_readings": m.n_readings,
        "window_start": m.window_start,
        "window_end": m.window_end,
    }


def passport_json(p: Passport, *, include_readings: bool = True) -> dict[str, Any]:
    """The passport as plain JSON-able values (datetimes stay datetimes, durations in s)."""
    f = p.figures
    worst_mkt = f.worst_mkt
    product = p.product
    return {
        "unit": {
            "epc": p.unit.epc,
            "kind": p.unit.kind,
            "gtin": p.unit.gtin,
            "serial": p.unit.serial,
            "sscc": p.unit.sscc,
            "lot": p.unit.lot,
            "expiry": p.unit.expiry,
            "commissioned_at": p.unit.commissioned_at,
        },
        "product": None
        if product is None
        else {
            "gtin": product.gtin,
            "name": product.name,
            "temp_min_c": product.temp_min_c,
            "temp_max_c": product.temp_max_c,
            "freeze_limit_c": product.freeze_limit_c,
            "stability_budget_s": product.stability_budget_s,
            "mkt_limit_c": product.mkt_limit_c,
        },
        "as_of": p.now,
        "containers": [
            {
                "container": c.container,
                "kind": c.kind,
                "depth": c.depth,
                "chain": list(c.chain),
                "start": c.start,
                "end": c.end,
            }
            for c in p.path
        ],
        "custody": [
            {
                "container": r.container,
                "chain": list(r.chain),
                "shipment_id": r.shipment_id,
                "shipment_reference": r.shipment_reference,
                "start": r.start,
                "end": r.end,
                "legs": [dict(leg) for leg in r.legs],
            }
            for r in p.rides
        ],
        "pieces": [
            {
                "device_id": pc.device_id,
                "shipment_id": pc.shipment_id,
                "shipment_reference": pc.shipment_reference,
                "container": pc.container,
                "chain": list(pc.chain),
                "start": pc.start,
                "end": pc.end,
            }
            for pc in p.pieces
        ],
        "figures": {
            "limits": None
            if f.limits is None
            else {
                "low_c": f.limits.low_c,
                "high_c": f.limits.high_c,
                "freeze_c": f.limits.freeze_c,
                "alarm_delay_s": _s(f.limits.alarm_delay),
                "sources": list(f.sources),
            },
            "max_gap_s": _s(f.max_gap),
            "weighting": str(f.weighting),
            "delta_h_j_mol": f.delta_h_j_mol,
            "n_readings": len(p.readings),
            "tracks": [
                {
                    "devices": list(t.devices),
                    "start": t.start,
                    "end": t.end,
                    "as_of": t.as_of,
                    "n_readings": t.n_readings,
                    "budget": _usage_json(t.usage, f.budget),
                    "mkt": _mkt_json(t.mkt),
                }
                for t in f.tracks
            ],
            "budget": _usage_json(f.worst_usage, f.budget),
            "mkt": _mkt_json(worst_mkt),
            "mkt_above_limit": None
            if worst_mkt is None or product is None or product.mkt_limit_c is None
            else worst_mkt.mkt_c > product.mkt_limit_c,
            "excursions": [_excursion_json(i, e) for i, e in f.excursions],
        },
        "recorded_excursions": [
            {
                "id": e.id,
                "shipment_id": e.shipment_id,
                "shipment_reference": e.shipment_reference,
                "device_id": e.device_id,
                "direction": e.direction,
                "start_ts": e.start_ts,
                "end_ts": e.end_ts,
                "min_c": e.min_c,
                "max_c": e.max_c,
                "degree_minutes": e.degree_minutes,
                "alarm": e.alarm,
                "exposed_from": e.exposed_from,
                "exposed_to": e.exposed_to,
                "review_disposition": e.review_disposition,
                "reviewed_by": e.reviewed_by,
                "reviewed_at": e.reviewed_at,
                "disposition_id": e.disposition_id,
                "disposition_lot": e.disposition_lot,
                "review_covers": e.review_covers,
                "cleared": e.cleared,
                "qa_state": e.qa_state,
            }
            for e in p.recorded_excursions
        ],
        "readings": [
            {
                "device_id": r.device_id,
                "ts": r.ts,
                "temp_c": r.temp_c,
                "rh": r.rh,
                "lat": r.lat,
                "lon": r.lon,
            }
            for r in p.readings
        ]
        if include_readings
        else None,
        "notes": list(p.notes),
    }
