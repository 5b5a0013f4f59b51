"""Scenario files: what fleet to simulate, validated strictly, with errors naming file and field.

A scenario is TOML (or YAML) with these tables; every table is ``extra="forbid"``, so a misspelt
key is an error, not a silently ignored default::

    name = "demo"                 # letters, digits, "_" and "-"
    seed = 1                      # the default seed; the same seed gives the same bytes
    start = 2026-06-01T06:00:00Z  # or "auto": the runner picks a start (back-dated if needed)
    duration_h = 6
    ambient = "summer"            # built-in "summer"/"winter"/"mild", an inline profile, or a CSV

    [fleet]                       # shipments take routes and products round-robin
    shipments = 6
    loggers_per_shipment = 1
    interval_s = 60
    id_prefix = "DEMO"            # device ids DEMO-LOG-000001, references DEMO-SHP-00001

    [[products]]                  # GTIN with a valid GS1 check digit and the storage range
    gtin = "00614141000012"
    name = "Vaccine X"
    temp_min_c = 2.0
    temp_max_c = 8.0

    [[routes]]
    name = "BSL-ORD"
    packaging = "reefer_container"
    legs = [{ from = "Basel", to = "Frankfurt", mode = "road" },
            { from = "Frankfurt", to = "Chicago", mode = "air" }]

    [[events]]                    # shipments are numbered from 1
    kind = "reefer_failure"
    shipments = [1]
    at_min = 3
    duration_min = 35
    temp_c = 13.0

    [faults]
    duplicate_rate = 0.01
    malformed_rate = 0.001
    [faults.coverage_loss]
    devices = 0.2

:func:`load_scenario` takes a path or the name of a bundled scenario (``"demo"``) and raises
:class:`coldchain.errors.ConfigError` naming the file and each bad field.
"""

from __future__ import annotations

import difflib
import tomllib
from collections.abc import Mapping
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from coldchain.errors import ConfigError
from coldchain.gs1 import IdentifierError, normalize_gtin
from coldchain.timezones import check_zone
from coldchain.validation import format_validation_error
from simulator.physics import BUILTIN_PROFILES, PACKAGING, Packaging, load_profile_csv
from simulator.routes import (
    CITIES,
    MAX_SURFACE_KM,
    PLAUSIBLE_SPEED_KMH,
    City,
    Mode,
    great_circle_km,
)

EventKind = Literal[
    "door_opening", "reefer_failure", "tarmac_delay", "cold_exposure", "power_loss", "logger_death"
]
MalformedKind = Literal["bad_json", "wrong_type", "impossible_value", "wrong_device"]
MALFORMED_KINDS: tuple[MalformedKind, ...] = get_args(MalformedKind)

#: Events that change what surrounds the load; the others act on the logger itself.
EXPOSURE_EVENTS = frozenset({"door_opening", "reefer_failure", "tarmac_delay", "cold_exposure"})
LOGGER_EVENTS = frozenset({"power_loss", "logger_death"})
#: Default event durations in minutes (logger_death is permanent).
DEFAULT_EVENT_MIN: Mapping[str, float] = {
    "door_opening": 5.0,
    "reefer_failure": 120.0,
    "tarmac_delay": 90.0,
    "cold_exposure": 60.0,
    "power_loss": 60.0,
}

NonNeg = Annotated[float, Field(ge=0)]
Share = Annotated[float, Field(ge=0, le=1)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class ProductSpec(_Strict):
    """A product and its labelled storage conditions."""

    gtin: str
    name: str = Field(min_length=1)
    temp_min_c: float
    temp_max_c: float
    freeze_limit_c: float | None = None
    alarm_delay_min: NonNeg = 0.0
    stability_budget_h: NonNeg | None = None
    mkt_delta_h_kj_mol: float = Field(default=83.144, gt=0)
    mkt_limit_c: float | None = None
    company_prefix: str | None = Field(default=None, pattern=r"^[0-9]{6,12}$")
    shelf_life_days: int = Field(default=730, ge=1)

    @field_validator("gtin")
    @classmethod
    def _gtin(cls, v: str) -> str:
        try:
            return normalize_gtin(v)
        except IdentifierError as exc:
            raise ValueError(str(exc)) from None

    @model_validator(mode="after")
    def _range(self) -> ProductSpec:
        if self.temp_min_c >= self.temp_max_c:
            raise ValueError("temp_min_c must be below temp_max_c")
        if self.freeze_limit_c is not None and self.freeze_limit_c > self.temp_min_c:
            raise ValueError("freeze_limit_c must not be above temp_min_c")
        return self


class CitySpec(_Strict):
    """A place not in the built-in list."""

    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    time_zone: str = Field(default="UTC", description="IANA time zone, e.g. Europe/Zurich")

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, value: str) -> str:
        return check_zone(value)


class LegSpec(_Strict):
    """One leg of a route."""

    origin: str = Field(alias="from")
    destination: str = Field(alias="to")
    mode: Mode
    speed_kmh: float | None = Field(default=None, gt=0)
    carrier: str | None = None

    @model_validator(mode="after")
    def _speed(self) -> LegSpec:
        lo, hi = PLAUSIBLE_SPEED_KMH[self.mode]
        if self.speed_kmh is not None and not lo <= self.speed_kmh <= hi:
            raise ValueError(
                f"speed_kmh {self.speed_kmh:g} is not plausible for {self.mode} ({lo:g}–{hi:g})"
            )
        if self.origin == self.destination:
            raise ValueError(f"leg goes from {self.origin!r} to itself")
        return self


class RouteSpec(_Strict):
    """A lane: its legs, packaging and conditions."""

    name: str = Field(min_length=1)
    legs: list[LegSpec] = Field(min_length=1)
    packaging: Packaging = "reefer_container"
    setpoint_c: float | None = None  # default: the middle of the product's range
    tau_min: float | None = Field(default=None, gt=0)  # default: the packaging's
    coolant_kh: NonNeg | None = None  # passive coolant capacity, default: the packaging's
    ambient: str | None = None  # default: the scenario's
    handoff_min: NonNeg = 90.0
    carrier: str | None = None
    # Its lane's code (default "{fleet.id_prefix}-{name}"): two routes may share a lane.
    lane: str | None = Field(default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")

    @model_validator(mode="after")
    def _connected(self) -> RouteSpec:
        for i in range(1, len(self.legs)):
            if self.legs[i].origin != self.legs[i - 1].destination:
                raise ValueError(
                    f"legs[{i}].from is {self.legs[i].origin!r} but legs[{i - 1}].to is "
                    f"{self.legs[i - 1].destination!r}: consecutive legs must connect"
                )
        return self


class RepackSpec(_Strict):
    """A case taken off one shipment's pallet and put on another's mid-journey (a cross-dock
    hand-over), so its items' passports span both shipments and both loggers."""

    from_shipment: int = Field(ge=1)  # numbered from 1
    to_shipment: int = Field(ge=1)
    case: int = Field(default=1, ge=1)  # which case of the source pallet, from 1
    at_min: NonNeg  # minutes after the scenario start

    @model_validator(mode="after")
    def _different(self) -> RepackSpec:
        if self.from_shipment == self.to_shipment:
            raise ValueError("from_shipment and to_shipment must differ")
        return self


class FleetSpec(_Strict):
    """How many shipments and loggers, and how the loggers log."""

    shipments: int = Field(ge=1, le=200_000)
    loggers_per_shipment: int = Field(default=1, ge=1, le=32)
    interval_s: int = Field(default=60, ge=1, le=86_400)
    departure_spread_min: NonNeg = 0.0
    id_prefix: str = Field(default="SIM", pattern=r"^[A-Z0-9]{1,12}$")
    logger_model: str = "SIM-TL1"
    cases_per_pallet: int = Field(default=2, ge=1, le=50)
    items_per_case: int = Field(default=3, ge=1, le=100)
    repacks: list[RepackSpec] = Field(default_factory=list)

    @model_validator(mode="after")
    def _repacks_fit(self) -> FleetSpec:
        for i, r in enumerate(self.repacks):
            if max(r.from_shipment, r.to_shipment) > self.shipments:
                raise ValueError(
                    f"repacks[{i}] names shipment {max(r.from_shipment, r.to_shipment)} but the "
                    f"fleet has {self.shipments}"
                )
            if r.case > self.cases_per_pallet:
                raise ValueError(
                    f"repacks[{i}].case is {r.case} but a pallet holds {self.cases_per_pallet}"
                )
        return self


class EventSpec(_Strict):
    """Something that happens to some shipments, at a time relative to their departure."""

    kind: EventKind
    shipments: list[Annotated[int, Field(ge=1)]] | None = None  # numbered from 1
    fraction: float | None = Field(default=None, gt=0, le=1)  # or a seeded share of the fleet
    logger: int | None = Field(default=None, ge=1)  # power_loss/logger_death: which logger
    at_leg: int | None = Field(default=None, ge=1)  # anchor: the departure of this leg
    at_min: float = 0.0
    duration_min: float | None = Field(default=None, gt=0)
    temp_c: float | None = Field(default=None, ge=-80, le=80)

    @model_validator(mode="after")
    def _target(self) -> EventSpec:
        if (self.shipments is None) == (self.fraction is None):
            raise ValueError("give exactly one of 'shipments' (a list) or 'fraction'")
        if self.logger is not None and self.kind not in LOGGER_EVENTS:
            raise ValueError(f"'logger' applies to power_loss and logger_death, not {self.kind}")
        if self.kind == "logger_death" and self.duration_min is not None:
            raise ValueError("logger_death is permanent: remove duration_min")
        if self.kind in LOGGER_EVENTS and self.temp_c is not None:
            raise ValueError(f"{self.kind} does not take temp_c")
        if self.at_leg is None and self.at_min < 0:
            raise ValueError("at_min may be negative only with at_leg (before that leg departs)")
        return self


class CoverageLossSpec(_Strict):
    """Loss of coverage: readings are buffered on the logger and uploaded later in batches."""

    devices: Share = 0.0  # share of loggers that lose coverage
    outages_per_device: int = Field(default=1, ge=1, le=50)
    min_duration_min: float = Field(default=30.0, gt=0)
    max_duration_min: float = Field(default=120.0, gt=0)
    upload_delay_s: NonNeg = 20.0  # from the first live reading after the outage to the backlog
    batch_max_readings: int = Field(default=100, ge=1, le=10_000)

    @model_validator(mode="after")
    def _durations(self) -> CoverageLossSpec:
        if self.min_duration_min > self.max_duration_min:
            raise ValueError("min_duration_min must not exceed max_duration_min")
        return self


class FaultsSpec(_Strict):
    """Transport faults injected on purpose; counts are exact: floor(rate × messages)."""

    coverage_loss: CoverageLossSpec = CoverageLossSpec()
    duplicate_rate: Share = 0.0  # share of live messages sent twice
    reupload_rate: Share = 0.0  # share of buffered batches uploaded twice
    clock_skew_devices: Share = 0.0  # share of loggers whose clock is off
    clock_skew_max_s: float = Field(default=90.0, gt=0, le=86_400)
    malformed_rate: Share = 0.0  # extra broken messages per live message
    malformed_kinds: list[MalformedKind] = Field(default=list(MALFORMED_KINDS), min_length=1)


class PhysicsSpec(_Strict):
    """Sensor and environment parameters shared by the fleet."""

    sensor_noise_c: NonNeg = 0.1
    rh_noise_pct: NonNeg = 1.0
    day_night_amplitude_c: NonNeg = 4.0
    day_night_rh_pct: NonNeg = 10.0
    reefer_rh_pct: float = Field(default=80.0, ge=0, le=100)
    tarmac_solar_gain_c: float = 10.0  # a pallet in the sun on the apron is warmer than the air
    battery_drain_per_day: NonNeg = 0.01
    initial_battery_min: float = Field(default=0.6, ge=0, le=1)
    initial_battery_max: float = Field(default=1.0, ge=0, le=1)

    @model_validator(mode="after")
    def _battery(self) -> PhysicsSpec:
        if self.initial_battery_min > self.initial_battery_max:
            raise ValueError("initial_battery_min must not exceed initial_battery_max")
        return self


class ProfileSpec(_Strict):
    """An inline ambient profile: rows of [duration_min, temp_c] or [duration_min, temp_c, rh]."""

    description: str = ""
    segments: list[tuple[float, float] | tuple[float, float, float]] = Field(min_length=1)

    @field_validator("segments")
    @classmethod
    def _rows(
        cls, v: list[tuple[float, float] | tuple[float, float, float]]
    ) -> list[tuple[float, float] | tuple[float, float, float]]:
        for i, row in enumerate(v):
            if row[0] <= 0:
                raise ValueError(f"segments[{i}]: duration_min must be > 0")
            if len(row) == 3 and not 0 <= row[2] <= 100:
                raise ValueError(f"segments[{i}]: rh must be within 0..100")
        return v


class HistoryLaneSpec(_Strict):
    """How one route fares over months of finished shipments (:mod:`simulator.history`)."""

    # The share of its trips that meet an incident (the surroundings at ``incident_temp_c`` for
    # ``incident_min`` minutes, at a random point of the trip).
    incident_share: Share = 0.0
    incident: EventKind = "reefer_failure"
    incident_temp_c: float = Field(default=20.0, ge=-80, le=80)
    incident_min: tuple[float, float] = (30.0, 180.0)
    # Mean extra hours in transit beyond the plan (exponentially distributed; 0: on time).
    delay_mean_h: NonNeg = 0.0

    @model_validator(mode="after")
    def _kinds(self) -> HistoryLaneSpec:
        if self.incident not in EXPOSURE_EVENTS:
            raise ValueError(f"incident must be one of {sorted(EXPOSURE_EVENTS)}")
        if not 0 < self.incident_min[0] <= self.incident_min[1]:
            raise ValueError("incident_min must be (shortest, longest) minutes, shortest > 0")
        return self


class HistorySpec(_Strict):
    """Months of finished shipments to back-fill (``coldchain history``; simulator/history.py)."""

    lanes: dict[str, HistoryLaneSpec] = Field(default_factory=dict)  # by route name


class Scenario(_Strict):
    """A whole simulated fleet: what :func:`simulator.fleet.build_fleet` turns into traffic."""

    name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    description: str = ""
    seed: int = Field(default=1, ge=0)
    start: datetime | Literal["auto"] = "auto"
    duration_h: float = Field(gt=0, le=24 * 120)
    # With start = "auto": how much of the scenario lies in the past when it starts. That part
    # plays at the chosen speed; the rest follows in real time. None: as much as keeps the
    # whole run, at the chosen speed, just behind the present.
    history_h: float | None = Field(default=None, ge=0)
    ambient: str = "summer"
    company_prefix: str = Field(default="0614141", pattern=r"^[0-9]{6,12}$")
    fleet: FleetSpec
    products: list[ProductSpec] = Field(min_length=1)
    routes: list[RouteSpec] = Field(min_length=1)
    cities: dict[str, CitySpec] = Field(default_factory=dict)
    ambient_profiles: dict[str, ProfileSpec] = Field(default_factory=dict)
    events: list[EventSpec] = Field(default_factory=list)
    faults: FaultsSpec = FaultsSpec()
    physics: PhysicsSpec = PhysicsSpec()
    history: HistorySpec | None = None

    @field_validator("start")
    @classmethod
    def _aware(cls, v: datetime | str) -> datetime | str:
        if isinstance(v, datetime) and v.tzinfo is None:
            raise ValueError("start needs a UTC offset, e.g. 2026-06-01T06:00:00Z")
        return v

    def city(self, name: str) -> City:
        """A built-in or scenario-defined city."""
        if name in self.cities:
            c = self.cities[name]
            return City(name, c.lat, c.lon, c.time_zone)
        return CITIES[name]

    def route_for(self, shipment: int) -> RouteSpec:
        """The route of shipment ``shipment`` (numbered from 0): round-robin over the routes."""
        return self.routes[(shipment // len(self.products)) % len(self.routes)]

    def product_for(self, shipment: int) -> ProductSpec:
        """The product of shipment ``shipment`` (numbered from 0): round-robin over the products."""
        return self.products[shipment % len(self.products)]

    @model_validator(mode="after")
    def _references(self) -> Scenario:
        problems: list[str] = []
        gtins = [p.gtin for p in self.products]
        if len(set(gtins)) != len(gtins):
            problems.append("products: the same gtin appears twice")
        if len({r.name for r in self.routes}) != len(self.routes):
            problems.append("routes: the same name appears twice")
        for i, p in enumerate(self.products):
            prefix = p.company_prefix or self.company_prefix
            if p.gtin[1 : 1 + len(prefix)] != prefix:
                problems.append(
                    f"products[{i}].gtin: {p.gtin} does not carry company prefix {prefix} "
                    "(set products[].company_prefix or the scenario's company_prefix)"
                )
        known = set(CITIES) | set(self.cities)
        profiles = set(BUILTIN_PROFILES) | set(self.ambient_profiles)
        if self.ambient not in profiles:
            problems.append(f"ambient: unknown profile {self.ambient!r}; known: {sorted(profiles)}")
        for i, r in enumerate(self.routes):
            if r.ambient is not None and r.ambient not in profiles:
                problems.append(f"routes[{i}].ambient: unknown profile {r.ambient!r}")
            for j, leg in enumerate(r.legs):
                for key, name in (("from", leg.origin), ("to", leg.destination)):
                    if name not in known:
                        close = difflib.get_close_matches(name, known, n=1)
                        hint = (
                            f"; did you mean {close[0]!r}?" if close else " (add it under [cities])"
                        )
                        problems.append(f"routes[{i}].legs[{j}].{key}: unknown city {name!r}{hint}")
                if leg.origin in known and leg.destination in known and leg.mode != "air":
                    km = great_circle_km(self.city(leg.origin), self.city(leg.destination))
                    if km > MAX_SURFACE_KM:
                        problems.append(
                            f"routes[{i}].legs[{j}].mode: {km:.0f} km by {leg.mode} is not "
                            "plausible; use an air leg"
                        )
        problems.extend(self._event_problems())
        routes = {r.name: r for r in self.routes}
        for name, lane in (self.history.lanes if self.history else {}).items():
            if name not in routes:
                problems.append(f"history.lanes.{name}: no route of that name")
            elif lane.incident == "reefer_failure" and not PACKAGING[routes[name].packaging].active:
                problems.append(
                    f"history.lanes.{name}.incident: {routes[name].packaging} has no reefer to fail"
                )
        if problems:
            # One problem per line; each already names its field (formatted below).
            raise ValueError("\n".join(problems))
        return self

    def _event_problems(self) -> list[str]:
        problems: list[str] = []
        n = self.fleet.shipments
        for i, ev in enumerate(self.events):
            targets = [s - 1 for s in ev.shipments or []]
            for s in targets:
                if s >= n:
                    problems.append(f"events[{i}].shipments: {s + 1} > fleet.shipments ({n})")
            valid = [s for s in targets if s < n]
            if ev.kind == "reefer_failure":
                for s in valid:
                    if not PACKAGING[self.route_for(s).packaging].active:
                        problems.append(
                            f"events[{i}].shipments: shipment {s + 1} travels in "
                            f"{self.route_for(s).packaging}, which has no reefer to fail"
                        )
            if ev.logger is not None and ev.logger > self.fleet.loggers_per_shipment:
                problems.append(f"events[{i}].logger: {ev.logger} > fleet.loggers_per_shipment")
            if ev.at_leg is not None:
                if ev.fraction is not None and all(ev.at_leg > len(r.legs) for r in self.routes):
                    problems.append(f"events[{i}].at_leg: no route has {ev.at_leg} legs")
                for s in valid:
                    r = self.route_for(s)
                    if ev.at_leg > len(r.legs):
                        problems.append(
                            f"events[{i}].at_leg: shipment {s + 1} (route {r.name!r}) has only "
                            f"{len(r.legs)} legs"
                        )
        return problems


# --- loading -------------------------------------------------------------------------------

BUNDLED_SCENARIOS = resources.files("simulator") / "scenarios"
BUNDLED_PROFILES = resources.files("simulator") / "profiles"


def bundled_scenarios() -> list[str]:
    """Names of the scenarios shipped in ``simulator/scenarios``."""
    return sorted(
        p.name.removesuffix(".toml")
        for p in BUNDLED_SCENARIOS.iterdir()
        if p.name.endswith(".toml")
    )


def load_scenario(name_or_path: str | Path) -> Scenario:
    """Load and validate a scenario file, or a bundled scenario by name (``"demo"``)."""
    path = Path(name_or_path)
    if path.is_file():
        return _load_file(path)
    name = str(name_or_path)
    bundled = BUNDLED_SCENARIOS / f"{name}.toml"
    if "/" not in name and bundled.is_file():
        return scenario_from_text(
            bundled.read_text("utf-8"), source=f"simulator/scenarios/{name}.toml"
        )
    raise ConfigError(
        f"scenario {name!r}: no such file, and not a bundled scenario "
        f"(bundled: {', '.join(bundled_scenarios())})"
    )


def _load_file(path: Path) -> Scenario:
    try:
        text = path.read_text("utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the scenario: {exc}") from None
    fmt: Literal["toml", "yaml"] = "yaml" if path.suffix.lower() in (".yaml", ".yml") else "toml"
    return scenario_from_text(text, source=str(path), fmt=fmt, base_dir=path.parent)


def scenario_from_text(
    text: str, *, source: str, fmt: Literal["toml", "yaml"] = "toml", base_dir: Path | None = None
) -> Scenario:
    """Parse and validate scenario text; ``source`` names the file in errors."""
    try:
        data: Any = tomllib.loads(text) if fmt == "toml" else yaml.safe_load(text)
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"{source}: not valid {fmt.upper()}: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: a scenario must be a table of settings")
    return scenario_from_dict(data, source=source, base_dir=base_dir)


def scenario_from_dict(
    data: Mapping[str, Any], *, source: str = "<scenario>", base_dir: Path | None = None
) -> Scenario:
    """Validate a scenario given as a dict, loading any CSV ambient profiles it names."""
    data = _with_csv_profiles(dict(data), source=source, base_dir=base_dir)
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, source, Scenario, what="scenario")) from None


def _with_csv_profiles(
    data: dict[str, Any], *, source: str, base_dir: Path | None
) -> dict[str, Any]:
    """Resolve profile names that are neither built in nor inline to CSV tables."""
    inline = data.get("ambient_profiles")
    if inline is not None and not isinstance(inline, dict):
        return data  # validation reports it
    profiles: dict[str, Any] = dict(inline or {})
    wanted: list[tuple[str, Any]] = [("ambient", data.get("ambient"))]
    routes = data.get("routes")
    if isinstance(routes, list):
        wanted += [
            (f"routes[{i}].ambient", r.get("ambient"))
            for i, r in enumerate(routes)
            if isinstance(r, dict)
        ]
    for field, name in wanted:
        if not isinstance(name, str) or name in BUILTIN_PROFILES or name in profiles:
            continue
        text = _find_profile_csv(name, base_dir)
        if text is None:
            continue  # the model reports the unknown name
        try:
            prof = load_profile_csv(name, text)
        except ValueError as exc:
            raise ConfigError(f"{source}: {field}: profile table {name!r}: {exc}") from None
        profiles[name] = {
            "description": f"loaded from {name}",
            "segments": [[s.duration_s / 60.0, s.temp_c, s.rh] for s in prof.segments],
        }
    if profiles:
        data["ambient_profiles"] = profiles
    return data


def _find_profile_csv(name: str, base_dir: Path | None) -> str | None:
    candidates = [name, f"{name}.csv"]
    if base_dir is not None:
        for c in candidates:
            p = base_dir / c
            if p.is_file():
                return p.read_text("utf-8")
    for c in candidates:
        p = Path(c)
        if p.is_absolute() and p.is_file():
            return p.read_text("utf-8")
        bundled = BUNDLED_PROFILES / Path(c).name
        if bundled.is_file():
            return bundled.read_text("utf-8")
    return None
