"""The simulated fleet (pure and deterministic).

:func:`build_fleet` turns a :class:`~simulator.scenario.Scenario`, a seed and a start time into a
:class:`Fleet`: products, shipments with planned legs, loggers and their assignments, the
serialised units (per shipment one pallet SSCC holding cases, each holding SGTIN items;
:mod:`simulator.units`) and the event windows. :func:`simulator.streams.generate_chunks` then
produces every logger's readings, vectorised with numpy over loggers and a block of logging steps
at a time, so memory stays bounded at any scale.

Determinism: every random draw comes from a ``numpy.random.Generator`` seeded from the scenario
seed plus a stream tag and an index (per shipment, per logger, per event, for faults), never from
global state, and nothing reads the clock. Each logger draws its noise from its own generator, one
step at a time in a fixed order, so its stream does not depend on the block size or on the other
loggers. Times are integer milliseconds since the Unix epoch, exactly what the payload carries.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Final

import numpy as np
from numpy.typing import NDArray

from coldchain.errors import ConfigError
from simulator.physics import (
    BUILTIN_PROFILES,
    PACKAGING,
    AmbientProfile,
    Segment,
    battery_empty_after_s,
)
from simulator.routes import LegInput, RoutePlan, plan_route
from simulator.scenario import DEFAULT_EVENT_MIN, EXPOSURE_EVENTS, Scenario
from simulator.units import Aggregation, ShipmentUnit, Unit, UnitNumbering, repack, serialise

IntArray = NDArray[np.int64]
FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]

EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
NEVER: Final = np.iinfo(np.int64).max

# Seed stream tags: independent generators per purpose.
STREAM_SHIPMENT, STREAM_DEVICE, STREAM_EVENT, STREAM_FAULT, STREAM_NOISE = 1, 2, 3, 4, 5


def rng_for(seed: int, stream: int, index: int = 0) -> np.random.Generator:
    """The generator for one purpose and index, derived from the scenario seed."""
    return np.random.default_rng(np.random.SeedSequence([seed, stream, index]))


def to_ms(ts: datetime) -> int:
    """Milliseconds since the Unix epoch (exact, truncating sub-millisecond parts)."""
    return (ts - EPOCH) // timedelta(milliseconds=1)


def from_ms(ms: int) -> datetime:
    """The UTC datetime of an epoch-milliseconds value (exact)."""
    return EPOCH + timedelta(milliseconds=int(ms))


# --- the fleet description ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Product:
    """A product and its storage conditions, as provisioned."""

    gtin: str
    name: str
    temp_min_c: float
    temp_max_c: float
    freeze_limit_c: float | None
    alarm_delay_s: int
    stability_budget_s: int | None
    mkt_delta_h_j_mol: float
    mkt_limit_c: float | None
    company_prefix: str


@dataclass(frozen=True, slots=True)
class Leg:
    """A planned leg of a shipment."""

    seq: int
    mode: str
    origin: str
    destination: str
    carrier: str | None
    planned_departure: datetime
    planned_arrival: datetime
    distance_km: float


@dataclass(frozen=True, slots=True)
class Shipment:
    """A shipment of one product along one route, carrying one or more loggers."""

    index: int  # from 0
    reference: str
    product_gtin: str
    route: str
    packaging: str
    setpoint_c: float
    tau_s: float
    coolant_kh: float  # passive coolant capacity (0 in a reefer)
    origin: str
    destination: str
    carrier: str | None
    planned_departure: datetime
    planned_arrival: datetime
    legs: tuple[Leg, ...]
    device_ids: tuple[str, ...]
    lot: str
    expiry: date


@dataclass(frozen=True, slots=True)
class Device:
    """A logger: identity, calibration and the parameters of its stream."""

    index: int
    device_id: str
    shipment_index: int
    model: str
    calibration_cert: str
    calibration_due: date
    interval_s: int
    phase_ms: int  # offset of its logging clock within the interval
    initial_battery: float
    dies_at_ms: int | None  # logger_death event or empty battery


@dataclass(frozen=True, slots=True)
class Assignment:
    """A logger rides in a shipment over [start, end)."""

    device_id: str
    shipment_reference: str
    start: datetime
    end: datetime


@dataclass(frozen=True, slots=True)
class EventWindow:
    """One injected event on one shipment (and, for logger events, one logger)."""

    kind: str
    shipment_index: int
    device_index: int | None  # logger events only
    start_ms: int
    end_ms: int | None  # None: permanent (logger_death)
    temp_c: float | None  # exposure temperature; None: the ambient (+ offset_c)
    offset_c: float = 0.0
    source: int = 0  # index in scenario.events


@dataclass(frozen=True)
class Fleet:
    """Everything the simulator will do, decided up front; the streams follow from it."""

    scenario: Scenario
    seed: int
    start: datetime
    duration_ms: int
    interval_s: int
    products: tuple[Product, ...]
    shipments: tuple[Shipment, ...]
    devices: tuple[Device, ...]
    assignments: tuple[Assignment, ...]
    units: tuple[Unit, ...]
    aggregations: tuple[Aggregation, ...]
    shipment_units: tuple[ShipmentUnit, ...]
    events: tuple[EventWindow, ...]
    plans: Mapping[str, RoutePlan]
    profiles: Mapping[str, AmbientProfile]

    @property
    def start_ms(self) -> int:
        """Scenario start in epoch milliseconds."""
        return to_ms(self.start)

    @property
    def end_ms(self) -> int:
        """Scenario end in epoch milliseconds."""
        return self.start_ms + self.duration_ms

    @property
    def end(self) -> datetime:
        """Scenario end."""
        return from_ms(self.end_ms)

    @property
    def n_steps(self) -> int:
        """Logging steps per logger (every logger's phase is below one interval)."""
        return self.duration_ms // (self.interval_s * 1000)

    def product(self, gtin: str) -> Product:
        """The product with this GTIN."""
        return next(p for p in self.products if p.gtin == gtin)

    def product_of_device(self, device_index: int) -> Product:
        """The product a logger watches."""
        return self.product(self.shipments[self.devices[device_index].shipment_index].product_gtin)


def build_fleet(
    scenario: Scenario, *, seed: int | None = None, start: datetime | None = None
) -> Fleet:
    """Decide the whole fleet: identities, plans, units and event windows (pure)."""
    seed = scenario.seed if seed is None else seed
    if start is None:
        if scenario.start == "auto":
            raise ValueError(f"scenario {scenario.name!r} has start = 'auto': pass start=")
        start = scenario.start
    if start.tzinfo is None:
        raise ValueError("start must be timezone-aware")
    start = start.astimezone(UTC).replace(microsecond=start.microsecond // 1000 * 1000)
    start_ms = to_ms(start)
    duration_ms = round(scenario.duration_h * 3_600_000)
    end = from_ms(start_ms + duration_ms)
    fl = scenario.fleet
    if duration_ms < fl.interval_s * 1000:
        raise ConfigError(f"scenario {scenario.name!r}: duration_h is shorter than one interval")

    profiles: dict[str, AmbientProfile] = dict(BUILTIN_PROFILES)
    for name, spec in scenario.ambient_profiles.items():
        profiles[name] = AmbientProfile(
            name,
            tuple(Segment(r[0] * 60.0, r[1], r[2] if len(r) == 3 else 60.0) for r in spec.segments),
        )
    plans = {
        r.name: plan_route(
            [
                LegInput(
                    scenario.city(leg.origin),
                    scenario.city(leg.destination),
                    leg.mode,
                    leg.speed_kmh,
                    leg.carrier or r.carrier,
                )
                for leg in r.legs
            ],
            handoff_s=r.handoff_min * 60.0,
        )
        for r in scenario.routes
    }
    products = tuple(
        Product(
            gtin=p.gtin,
            name=p.name,
            temp_min_c=p.temp_min_c,
            temp_max_c=p.temp_max_c,
            freeze_limit_c=p.freeze_limit_c,
            alarm_delay_s=round(p.alarm_delay_min * 60),
            stability_budget_s=None
            if p.stability_budget_h is None
            else round(p.stability_budget_h * 3600),
            mkt_delta_h_j_mol=p.mkt_delta_h_kj_mol * 1000.0,
            mkt_limit_c=p.mkt_limit_c,
            company_prefix=p.company_prefix or scenario.company_prefix,
        )
        for p in scenario.products
    )
    by_gtin = {p.gtin: p for p in products}

    n_ship, per = fl.shipments, fl.loggers_per_shipment
    width = max(5, len(str(n_ship)))
    dwidth = max(6, len(str(n_ship * per)))
    units = UnitNumbering(fl.id_prefix, scenario.company_prefix)
    shipments: list[Shipment] = []
    devices: list[Device] = []
    assignments: list[Assignment] = []
    unit_rows: list[Unit] = []
    aggregations: list[Aggregation] = []
    shipment_units: list[ShipmentUnit] = []
    depart_ms: list[int] = []

    for s in range(n_ship):
        rng = rng_for(seed, STREAM_SHIPMENT, s)
        route = scenario.route_for(s)
        product = by_gtin[scenario.product_for(s).gtin]
        plan = plans[route.name]
        spread_s = round(fl.departure_spread_min * 60)
        dep = start_ms + int(rng.integers(0, spread_s + 1)) * 1000
        depart_ms.append(dep)
        reference = f"{fl.id_prefix}-SHP-{s + 1:0{width}d}"
        legs = tuple(
            Leg(
                seq=lp.seq,
                mode=lp.mode,
                origin=lp.origin.name,
                destination=lp.destination.name,
                carrier=lp.carrier,
                planned_departure=from_ms(dep + round(lp.depart_s) * 1000),
                planned_arrival=from_ms(dep + round(lp.arrive_s) * 1000),
                distance_km=round(lp.distance_km, 1),
            )
            for lp in plan.legs
        )
        pack = PACKAGING[route.packaging]
        setpoint = (
            route.setpoint_c
            if route.setpoint_c is not None
            else (product.temp_min_c + product.temp_max_c) / 2
        )
        tau_s = route.tau_min * 60.0 if route.tau_min is not None else pack.tau_s
        lot = f"{fl.id_prefix}-L{s + 1:0{width}d}"
        # Part of the shelf life is used up before the lot ships.
        shelf_days = scenario.product_for(s).shelf_life_days
        expiry = start.date() + timedelta(days=max(1, shelf_days - int(rng.integers(30, 181))))
        ids = tuple(f"{fl.id_prefix}-LOG-{s * per + j + 1:0{dwidth}d}" for j in range(per))
        shipments.append(
            Shipment(
                index=s,
                reference=reference,
                product_gtin=product.gtin,
                route=route.name,
                packaging=route.packaging,
                setpoint_c=setpoint,
                tau_s=tau_s,
                coolant_kh=0.0
                if pack.active
                else (route.coolant_kh if route.coolant_kh is not None else pack.coolant_kh),
                origin=legs[0].origin,
                destination=legs[-1].destination,
                carrier=route.carrier or legs[0].carrier,
                planned_departure=legs[0].planned_departure,
                planned_arrival=legs[-1].planned_arrival,
                legs=legs,
                device_ids=ids,
                lot=lot,
                expiry=expiry,
            )
        )
        for j, device_id in enumerate(ids):
            drng = rng_for(seed, STREAM_DEVICE, s * per + j)
            devices.append(
                Device(
                    index=s * per + j,
                    device_id=device_id,
                    shipment_index=s,
                    model=fl.logger_model,
                    calibration_cert=f"CAL-{device_id}",
                    calibration_due=start.date() + timedelta(days=int(drng.integers(30, 366))),
                    interval_s=fl.interval_s,
                    phase_ms=int(drng.integers(0, fl.interval_s * 1000)),
                    initial_battery=round(
                        float(
                            drng.uniform(
                                scenario.physics.initial_battery_min,
                                scenario.physics.initial_battery_max,
                            )
                        ),
                        3,
                    ),
                    dies_at_ms=None,  # filled in below, once the events are known
                )
            )
            assignments.append(Assignment(device_id, reference, start, end))
        serialise(
            units,
            product.gtin,
            product.company_prefix,
            reference,
            lot,
            expiry,
            start,
            end,
            fl.cases_per_pallet,
            fl.items_per_case,
            unit_rows,
            aggregations,
            shipment_units,
            s,
        )

    references = [sh.reference for sh in shipments]
    aggregations = repack(aggregations, shipment_units, references, fl.repacks, start, end)
    events = _event_windows(scenario, seed, depart_ms, plans)
    devices = _with_deaths(devices, events, start_ms, scenario.physics.battery_drain_per_day)
    return Fleet(
        scenario=scenario,
        seed=seed,
        start=start,
        duration_ms=duration_ms,
        interval_s=fl.interval_s,
        products=products,
        shipments=tuple(shipments),
        devices=tuple(devices),
        assignments=tuple(assignments),
        units=tuple(unit_rows),
        aggregations=tuple(aggregations),
        shipment_units=tuple(shipment_units),
        events=events,
        plans=plans,
        profiles=profiles,
    )


def _event_windows(
    scenario: Scenario, seed: int, depart_ms: list[int], plans: Mapping[str, RoutePlan]
) -> tuple[EventWindow, ...]:
    per = scenario.fleet.loggers_per_shipment
    out: list[EventWindow] = []
    for ei, ev in enumerate(scenario.events):
        if ev.shipments is not None:
            targets = sorted({s - 1 for s in ev.shipments})
        else:
            # A share of the shipments the event can happen to: reefer failures need a reefer,
            # an event anchored at leg N needs a route with N legs.
            eligible = [
                s
                for s in range(scenario.fleet.shipments)
                if (
                    ev.kind != "reefer_failure" or PACKAGING[scenario.route_for(s).packaging].active
                )
                and (ev.at_leg is None or ev.at_leg <= len(scenario.route_for(s).legs))
            ]
            k = min(len(eligible), max(1, round((ev.fraction or 0.0) * len(eligible))))
            chosen = rng_for(seed, STREAM_EVENT, ei).choice(len(eligible), size=k, replace=False)
            targets = sorted(eligible[int(i)] for i in chosen)
        for s in targets:
            anchor = depart_ms[s]
            if ev.at_leg is not None:
                anchor += (
                    round(plans[scenario.route_for(s).name].legs[ev.at_leg - 1].depart_s) * 1000
                )
            begin = anchor + round(ev.at_min * 60_000)
            end: int | None = None
            if ev.kind != "logger_death":
                end = begin + round((ev.duration_min or DEFAULT_EVENT_MIN[ev.kind]) * 60_000)
            if ev.kind in EXPOSURE_EVENTS:
                offset = scenario.physics.tarmac_solar_gain_c if ev.kind == "tarmac_delay" else 0.0
                out.append(
                    EventWindow(
                        ev.kind,
                        s,
                        None,
                        begin,
                        end,
                        ev.temp_c,
                        offset if ev.temp_c is None else 0.0,
                        ei,
                    )
                )
            else:
                loggers = [ev.logger - 1] if ev.logger is not None else list(range(per))
                out.extend(
                    EventWindow(ev.kind, s, s * per + j, begin, end, None, 0.0, ei) for j in loggers
                )
    return tuple(out)


def _with_deaths(
    devices: list[Device], events: tuple[EventWindow, ...], start_ms: int, drain: float
) -> list[Device]:
    """Each logger's death: a logger_death event or an empty battery, whichever comes first."""
    killed = {e.device_index: e.start_ms for e in events if e.kind == "logger_death"}
    out = []
    for d in devices:
        empty_s = float(battery_empty_after_s(np.asarray(d.initial_battery), drain))
        times = [
            killed.get(d.index),
            start_ms + int(empty_s * 1000) if np.isfinite(empty_s) else None,
        ]
        known = [t for t in times if t is not None]
        out.append(replace(d, dies_at_ms=min(known) if known else None))
    return out
