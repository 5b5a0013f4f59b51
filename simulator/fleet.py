"""The simulated fleet and its reading streams (pure and deterministic).

:func:`build_fleet` turns a :class:`~simulator.scenario.Scenario`, a seed and a start time into a
:class:`Fleet`: products, shipments with planned legs, loggers and their assignments, the
serialised units (per shipment one pallet SSCC holding cases, each holding SGTIN items) and the
event windows. :func:`generate_chunks` then produces every logger's readings, vectorised with
numpy over loggers and a block of logging steps at a time, so memory stays bounded at any scale.

Determinism: every random draw comes from a ``numpy.random.Generator`` seeded from the scenario
seed plus a stream tag and an index (per shipment, per logger, per event, for faults), never from
global state, and nothing reads the clock. Each logger draws its noise from its own generator, one
step at a time in a fixed order, so its stream does not depend on the block size or on the other
loggers. Times are integer milliseconds since the Unix epoch, exactly what the payload carries.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Final

import numpy as np
from numpy.typing import NDArray

from coldchain.errors import ConfigError
from coldchain.gs1 import GTIN, SGTIN, SSCC, check_digit
from simulator.physics import (
    BUILTIN_PROFILES,
    PACKAGING,
    AmbientProfile,
    Segment,
    battery_empty_after_s,
    battery_level,
    coolant_step,
    diurnal_phase,
    lag_factor,
    with_noise,
)
from simulator.routes import LegInput, RoutePlan, plan_route
from simulator.scenario import DEFAULT_EVENT_MIN, EXPOSURE_EVENTS, RepackSpec, Scenario

IntArray = NDArray[np.int64]
FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]

EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
#: Readings generated per block; fixed, because fault selection works per block and the bytes
#: must not depend on anything but the scenario, the seed and the start.
BLOCK_READINGS: Final = 20_000
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
class Unit:
    """A serialised unit: an SSCC (pallet, case) or an SGTIN item."""

    epc: str
    kind: str  # "sscc" or "sgtin"
    gtin: str | None
    serial: str | None
    sscc: str | None
    lot: str | None
    expiry: date | None
    commissioned_at: datetime


@dataclass(frozen=True, slots=True)
class Aggregation:
    """A child packed into a parent from ``start`` on (``end`` None: still packed)."""

    parent_epc: str
    child_epc: str
    start: datetime
    end: datetime | None


@dataclass(frozen=True, slots=True)
class ShipmentUnit:
    """A logistic unit riding in a shipment over [start, end)."""

    shipment_reference: str
    epc: str
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
    units = _UnitNumbering(fl.id_prefix, scenario.company_prefix)
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
        _serialise(
            units,
            product,
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

    aggregations = _repack(aggregations, shipment_units, shipments, fl.repacks, start, end)
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


class _UnitNumbering:
    """SSCC serial references: a tag from the fleet's id prefix, then a running number.

    The tag keeps two fleets with different id prefixes apart under one company prefix, and the
    same fleet gets the same numbers on every run (so provisioning is idempotent by EPC).
    """

    def __init__(self, id_prefix: str, company_prefix: str) -> None:
        self.id_prefix = id_prefix
        self.company_prefix = company_prefix
        free = 17 - len(company_prefix)  # extension digit + serial reference
        self.tag_digits = max(0, min(3, free - 6))
        self.counter_digits = free - self.tag_digits
        self.tag = zlib.crc32(id_prefix.encode()) % 10**self.tag_digits if self.tag_digits else 0
        self.next = 1

    def sscc(self) -> SSCC:
        if self.next >= 10**self.counter_digits:
            raise ConfigError(
                f"too many containers for company prefix {self.company_prefix}: "
                f"at most {10**self.counter_digits - 1} SSCCs"
            )
        body = f"{self.tag:0{self.tag_digits}d}" if self.tag_digits else ""
        body += f"{self.next:0{self.counter_digits}d}"
        self.next += 1
        # extension digit first, then company prefix, then the rest of the serial reference
        ext, rest = body[0], body[1:]
        digits17 = ext + self.company_prefix + rest
        return SSCC(digits17 + str(check_digit(digits17)))


def _serialise(
    numbering: _UnitNumbering,
    product: Product,
    reference: str,
    lot: str,
    expiry: date,
    start: datetime,
    end: datetime,
    cases: int,
    items: int,
    unit_rows: list[Unit],
    aggregations: list[Aggregation],
    shipment_units: list[ShipmentUnit],
    s: int,
) -> None:
    """One pallet SSCC holding ``cases`` case SSCCs holding ``items`` SGTINs each."""
    cp_len = len(product.company_prefix)
    made = start - timedelta(days=30)
    packed = start - timedelta(hours=2)
    pallet = numbering.sscc()
    pallet_epc = pallet.epc_uri(len(numbering.company_prefix))
    unit_rows.append(Unit(pallet_epc, "sscc", None, None, pallet.value, None, None, packed))
    shipment_units.append(ShipmentUnit(reference, pallet_epc, start, end))
    gtin = GTIN(product.gtin)
    for c in range(cases):
        case = numbering.sscc()
        case_epc = case.epc_uri(len(numbering.company_prefix))
        unit_rows.append(Unit(case_epc, "sscc", None, None, case.value, None, None, packed))
        aggregations.append(Aggregation(pallet_epc, case_epc, packed, None))
        for i in range(items):
            serial = f"{numbering.id_prefix[:6]}{s + 1:06d}{c * items + i + 1:04d}"
            item_epc = SGTIN(gtin, serial).epc_uri(cp_len)
            unit_rows.append(Unit(item_epc, "sgtin", product.gtin, serial, None, lot, expiry, made))
            aggregations.append(Aggregation(case_epc, item_epc, packed, None))


def _repack(
    aggregations: list[Aggregation],
    shipment_units: list[ShipmentUnit],
    shipments: list[Shipment],
    repacks: Sequence[RepackSpec],
    start: datetime,
    end: datetime,
) -> list[Aggregation]:
    """Move cases between pallets (scenario ``fleet.repacks``): the case leaves its pallet at
    ``start + at_min`` and joins the other shipment's pallet at that instant. A case is named by
    its position among the cases on the source pallet at that time."""
    out = list(aggregations)
    pallet_of = {su.shipment_reference: su.epc for su in shipment_units}
    for i, r in enumerate(sorted(repacks, key=lambda r: r.at_min)):
        at = start + timedelta(minutes=r.at_min)
        if not start < at < end:
            raise ConfigError(f"fleet.repacks[{i}].at_min falls outside the scenario's duration")
        source = pallet_of[shipments[r.from_shipment - 1].reference]
        target = pallet_of[shipments[r.to_shipment - 1].reference]
        on_source = [
            k
            for k, a in enumerate(out)
            if a.parent_epc == source and a.start <= at and (a.end is None or at < a.end)
        ]
        if r.case > len(on_source):
            raise ConfigError(
                f"fleet.repacks[{i}]: shipment {r.from_shipment}'s pallet holds "
                f"{len(on_source)} case(s) then, not {r.case}"
            )
        k = on_source[r.case - 1]
        moved = out[k]
        out[k] = replace(moved, end=at)
        out.append(Aggregation(target, moved.child_epc, at, None))
    return out


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


# --- the streams ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReadingChunk:
    """A block of logging steps for every logger; arrays are (loggers, steps).

    ``t_ms`` is the true measurement time, ``temp_true_c`` the noise-free product temperature
    (ground truth), the other arrays what the logger reports. ``recorded`` is False where the
    logger had no power or was dead. Every later chunk's readings are at or after ``horizon_ms``.
    """

    k0: int
    t_ms: IntArray
    recorded: BoolArray
    temp_true_c: FloatArray
    temp_c: FloatArray
    rh: FloatArray
    lat: FloatArray
    lon: FloatArray
    battery: FloatArray
    horizon_ms: int


def block_steps(fleet: Fleet) -> int:
    """Logging steps per chunk: about :data:`BLOCK_READINGS` readings per chunk."""
    return max(1, min(fleet.n_steps, BLOCK_READINGS // max(1, len(fleet.devices))))


def generate_chunks(fleet: Fleet) -> Iterator[ReadingChunk]:
    """Every logger's readings, one block of steps at a time, in time order (pure)."""
    return _StreamState(fleet).chunks()


class _StreamState:
    """Per-logger arrays and the state carried from one block to the next."""

    def __init__(self, fleet: Fleet) -> None:
        self.fleet = fleet
        sc = fleet.scenario
        devs = fleet.devices
        ships = fleet.shipments
        n = len(devs)
        self.n = n
        self.ship = np.array([d.shipment_index for d in devs], dtype=np.int64)
        self.phase = np.array([d.phase_ms for d in devs], dtype=np.int64)
        self.depart = np.array(
            [to_ms(ships[d.shipment_index].planned_departure) for d in devs], dtype=np.int64
        )
        route_names = [s.route for s in ships]
        self.route_rows = {
            name: np.flatnonzero(np.array([route_names[d.shipment_index] == name for d in devs]))
            for name in dict.fromkeys(route_names)
        }
        self.route_dur_s = np.array(
            [fleet.plans[route_names[d.shipment_index]].duration_s for d in devs]
        )
        self.route_profile = {r.name: fleet.profiles[r.ambient or sc.ambient] for r in sc.routes}
        pack = [PACKAGING[ships[d.shipment_index].packaging] for d in devs]
        self.active = np.array([p.active for p in pack], dtype=bool)
        self.setpoint = np.array([ships[d.shipment_index].setpoint_c for d in devs])
        self.factor = np.asarray(
            lag_factor(
                float(fleet.interval_s), np.array([ships[d.shipment_index].tau_s for d in devs])
            )
        )
        self.coolant = np.array([ships[d.shipment_index].coolant_kh for d in devs])
        self.passive_any = bool((~self.active).any())
        self.battery0 = np.array([d.initial_battery for d in devs])
        self.death = np.array(
            [NEVER if d.dies_at_ms is None else d.dies_at_ms for d in devs], dtype=np.int64
        )
        self.rngs = [rng_for(fleet.seed, STREAM_NOISE, d.index) for d in devs]
        per = sc.fleet.loggers_per_shipment
        exposure = [e for e in fleet.events if e.kind in EXPOSURE_EVENTS]
        self.exposure = exposure
        self.exp_start = np.array([e.start_ms for e in exposure], dtype=np.int64)
        self.exp_end = np.array([e.end_ms or NEVER for e in exposure], dtype=np.int64)
        self.per = per
        power = [e for e in fleet.events if e.kind == "power_loss"]
        self.power = power
        self.pow_start = np.array([e.start_ms for e in power], dtype=np.int64)
        self.pow_end = np.array([e.end_ms or NEVER for e in power], dtype=np.int64)
        # State carried across blocks
        self.temp = self.setpoint.copy()
        self.rh: FloatArray | None = None
        self.capacity = self.coolant.copy()

    def chunks(self) -> Iterator[ReadingChunk]:
        f = self.fleet
        m = block_steps(f)
        for k0 in range(0, f.n_steps, m):
            yield self._chunk(k0, min(f.n_steps, k0 + m))

    def _chunk(self, k0: int, k1: int) -> ReadingChunk:
        f = self.fleet
        ph = f.scenario.physics
        interval_ms = f.interval_s * 1000
        steps = np.arange(k0, k1, dtype=np.int64)
        t = f.start_ms + self.phase[:, None] + steps[None, :] * interval_ms
        elapsed_s = (t - self.depart[:, None]) / 1000.0

        lat = np.empty(t.shape)
        lon = np.empty(t.shape)
        amb = np.empty(t.shape)
        amb_rh = np.empty(t.shape)
        for name, rows in self.route_rows.items():
            lat[rows], lon[rows] = f.plans[name].position_at(elapsed_s[rows])
            amb[rows], amb_rh[rows] = self.route_profile[name].at(elapsed_s[rows])
        cycle = diurnal_phase(t / 1000.0, lon)
        amb += ph.day_night_amplitude_c * cycle
        amb_rh = np.clip(amb_rh - ph.day_night_rh_pct * cycle, 0.0, 100.0)

        in_transit = (elapsed_s >= 0) & (elapsed_s < self.route_dur_s[:, None])
        exposed = in_transit & ~self.active[:, None]
        sur = np.where(exposed, amb, self.setpoint[:, None])
        sur_rh = np.where(exposed, amb_rh, ph.reefer_rh_pct)
        t_lo, t_hi = int(t.min()), int(t.max())
        if self.exposure:
            for i in np.flatnonzero((self.exp_start <= t_hi) & (self.exp_end > t_lo)):
                ev = self.exposure[i]
                rs = slice(ev.shipment_index * self.per, (ev.shipment_index + 1) * self.per)
                hit = (t[rs] >= ev.start_ms) & (t[rs] < (ev.end_ms or NEVER))
                value = (
                    amb[rs] + ev.offset_c if ev.temp_c is None else np.full(hit.shape, ev.temp_c)
                )
                sur[rs] = np.where(hit, value, sur[rs])
                sur_rh[rs] = np.where(hit, amb_rh[rs], sur_rh[rs])

        m = k1 - k0
        temp_true = np.empty(t.shape)
        rh_true = np.empty(t.shape)
        if self.rh is None:
            self.rh = sur_rh[:, 0].copy()
        dt = float(f.interval_s)
        for j in range(m):
            target = sur[:, j]
            if self.passive_any:
                held, left = coolant_step(self.capacity, self.setpoint, target, dt)
                target = np.where(self.active, target, held)
                self.capacity = np.where(self.active, self.capacity, left)
            temp_true[:, j] = self.temp
            rh_true[:, j] = self.rh
            self.temp = target + (self.temp - target) * self.factor
            self.rh = sur_rh[:, j] + (self.rh - sur_rh[:, j]) * self.factor

        noise = np.empty((self.n, m, 2))
        for d, g in enumerate(self.rngs):
            noise[d] = g.standard_normal((m, 2))
        temp = with_noise(temp_true, noise[:, :, 0], ph.sensor_noise_c, 2)
        rh = np.clip(with_noise(rh_true, noise[:, :, 1], ph.rh_noise_pct, 1), 0.0, 100.0)
        battery = np.round(
            battery_level(
                self.battery0[:, None], (t - f.start_ms) / 1000.0, ph.battery_drain_per_day
            ),
            3,
        )

        recorded = t < self.death[:, None]
        if self.power:
            for i in np.flatnonzero((self.pow_start <= t_hi) & (self.pow_end > t_lo)):
                ev = self.power[i]
                d = int(ev.device_index or 0)  # logger events always name their logger
                recorded[d] &= ~((t[d] >= ev.start_ms) & (t[d] < (ev.end_ms or NEVER)))
        horizon = f.start_ms + k1 * interval_ms + int(self.phase.min())
        return ReadingChunk(
            k0=k0,
            t_ms=t,
            recorded=recorded,
            temp_true_c=temp_true,
            temp_c=temp,
            rh=rh,
            lat=np.round(lat, 5),
            lon=np.round(lon, 5),
            battery=battery,
            horizon_ms=horizon,
        )
