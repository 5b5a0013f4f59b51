"""Real cities, great-circle geometry and leg timing for simulated shipments (pure).

A route is a list of legs between cities, each by road, air, rail or sea. :func:`plan_route` turns
it into a :class:`RoutePlan`: when each leg departs and arrives (relative to the shipment's
departure), and :meth:`RoutePlan.position_at` gives the position at any elapsed time, vectorised.

Timing rules (plausible, not a routing engine):

* The distance travelled is the great-circle distance times a detour factor per mode, because
  roads and shipping lanes are longer than the great circle.
* Road legs stop for a 45 min break after every 4.5 h of driving (the EU drivers' hours rule,
  Regulation (EC) No 561/2006); the position holds during a break.
* Air legs add a fixed 45 min for taxi, climb and approach.
* Between legs there is a hand-off (cross-dock, airport acceptance, customs) during which the
  shipment stands at the city.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Literal

import numpy as np
from numpy.typing import NDArray

Mode = Literal["road", "air", "rail", "sea"]
FloatArray = NDArray[np.float64]

EARTH_RADIUS_KM: Final = 6371.0088

#: Average speeds including traffic, taxiing and port time, in km/h.
DEFAULT_SPEED_KMH: Final[Mapping[str, float]] = {
    "road": 65.0,
    "air": 800.0,
    "rail": 70.0,
    "sea": 30.0,
}
#: What a scenario may set per mode; outside this a speed is a typo, not a vehicle.
PLAUSIBLE_SPEED_KMH: Final[Mapping[str, tuple[float, float]]] = {
    "road": (20.0, 110.0),
    "air": (300.0, 950.0),
    "rail": (30.0, 200.0),
    "sea": (10.0, 60.0),
}
#: Path length over great-circle distance: roads and lanes wind, aircraft route around airspace.
DETOUR_FACTOR: Final[Mapping[str, float]] = {"road": 1.25, "air": 1.05, "rail": 1.2, "sea": 1.3}
#: A surface leg this long (great circle) is almost certainly a missing air or sea leg.
MAX_SURFACE_KM: Final = 5000.0

AIR_OVERHEAD_S: Final = 45 * 60.0
DRIVE_BLOCK_S: Final = 4.5 * 3600.0
DRIVE_BREAK_S: Final = 45 * 60.0


@dataclass(frozen=True, slots=True)
class City:
    """A place a leg starts or ends, with WGS 84 coordinates in degrees and its IANA time zone
    (its site's local times are shown in it: :mod:`coldchain.timezones`)."""

    name: str
    lat: float
    lon: float
    time_zone: str = "UTC"


def _cities(*rows: tuple[str, float, float, str]) -> dict[str, City]:
    return {name: City(name, lat, lon, zone) for name, lat, lon, zone in rows}


#: Pharma hubs and gateway airports (city-centre coordinates, rounded to 0.01°; time zone).
CITIES: Final[Mapping[str, City]] = _cities(
    ("Amsterdam", 52.37, 4.90, "Europe/Amsterdam"),
    ("Antwerp", 51.22, 4.40, "Europe/Brussels"),
    ("Athens", 37.98, 23.73, "Europe/Athens"),
    ("Atlanta", 33.75, -84.39, "America/New_York"),
    ("Barcelona", 41.39, 2.17, "Europe/Madrid"),
    ("Basel", 47.56, 7.59, "Europe/Zurich"),
    ("Beijing", 39.90, 116.40, "Asia/Shanghai"),
    ("Berlin", 52.52, 13.40, "Europe/Berlin"),
    ("Boston", 42.36, -71.06, "America/New_York"),
    ("Brussels", 50.85, 4.35, "Europe/Brussels"),
    ("Cairo", 30.04, 31.24, "Africa/Cairo"),
    ("Chicago", 41.88, -87.63, "America/Chicago"),
    ("Copenhagen", 55.68, 12.57, "Europe/Copenhagen"),
    ("Dubai", 25.20, 55.27, "Asia/Dubai"),
    ("Dublin", 53.35, -6.26, "Europe/Dublin"),
    ("Frankfurt", 50.11, 8.68, "Europe/Berlin"),
    ("Geneva", 46.20, 6.14, "Europe/Zurich"),
    ("Hamburg", 53.55, 9.99, "Europe/Berlin"),
    ("Helsinki", 60.17, 24.94, "Europe/Helsinki"),
    ("Hong Kong", 22.32, 114.17, "Asia/Hong_Kong"),
    ("Hyderabad", 17.39, 78.49, "Asia/Kolkata"),
    ("Indianapolis", 39.77, -86.16, "America/Indiana/Indianapolis"),
    ("Istanbul", 41.01, 28.98, "Europe/Istanbul"),
    ("Johannesburg", -26.20, 28.05, "Africa/Johannesburg"),
    ("Lisbon", 38.72, -9.14, "Europe/Lisbon"),
    ("London", 51.51, -0.13, "Europe/London"),
    ("Los Angeles", 34.05, -118.24, "America/Los_Angeles"),
    ("Lyon", 45.76, 4.84, "Europe/Paris"),
    ("Madrid", 40.42, -3.70, "Europe/Madrid"),
    ("Memphis", 35.15, -90.05, "America/Chicago"),
    ("Mexico City", 19.43, -99.13, "America/Mexico_City"),
    ("Milan", 45.46, 9.19, "Europe/Rome"),
    ("Montreal", 45.50, -73.57, "America/Toronto"),
    ("Mumbai", 19.08, 72.88, "Asia/Kolkata"),
    ("Munich", 48.14, 11.58, "Europe/Berlin"),
    ("Nairobi", -1.29, 36.82, "Africa/Nairobi"),
    ("New York", 40.71, -74.01, "America/New_York"),
    ("Oslo", 59.91, 10.75, "Europe/Oslo"),
    ("Paris", 48.86, 2.35, "Europe/Paris"),
    ("Philadelphia", 39.95, -75.17, "America/New_York"),
    ("Prague", 50.08, 14.44, "Europe/Prague"),
    ("Rome", 41.90, 12.50, "Europe/Rome"),
    ("Rotterdam", 51.92, 4.48, "Europe/Amsterdam"),
    ("San Francisco", 37.77, -122.42, "America/Los_Angeles"),
    ("Sao Paulo", -23.55, -46.63, "America/Sao_Paulo"),
    ("Seoul", 37.57, 126.98, "Asia/Seoul"),
    ("Shanghai", 31.23, 121.47, "Asia/Shanghai"),
    ("Singapore", 1.35, 103.82, "Asia/Singapore"),
    ("Stockholm", 59.33, 18.07, "Europe/Stockholm"),
    ("Sydney", -33.87, 151.21, "Australia/Sydney"),
    ("Tokyo", 35.68, 139.69, "Asia/Tokyo"),
    ("Toronto", 43.65, -79.38, "America/Toronto"),
    ("Vienna", 48.21, 16.37, "Europe/Vienna"),
    ("Warsaw", 52.23, 21.01, "Europe/Warsaw"),
    ("Zurich", 47.38, 8.54, "Europe/Zurich"),
)


def great_circle_km(a: City, b: City) -> float:
    """Great-circle distance in km (haversine)."""
    p1, p2 = math.radians(a.lat), math.radians(b.lat)
    dp, dl = p2 - p1, math.radians(b.lon - a.lon)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


def _unit_vector(c: City) -> FloatArray:
    lat, lon = math.radians(c.lat), math.radians(c.lon)
    return np.array([math.cos(lat) * math.cos(lon), math.cos(lat) * math.sin(lon), math.sin(lat)])


def interpolate_great_circle(
    a: City, b: City, fraction: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Points at ``fraction`` (0 → a, 1 → b) along the great circle; returns (lat, lon) degrees."""
    f = np.clip(np.asarray(fraction, dtype=np.float64), 0.0, 1.0)
    va, vb = _unit_vector(a), _unit_vector(b)
    omega = math.acos(max(-1.0, min(1.0, float(va @ vb))))
    if omega < 1e-9:  # same place: slerp divides by sin(omega)
        return np.full(f.shape, a.lat), np.full(f.shape, a.lon)
    s = math.sin(omega)
    wa = np.sin((1.0 - f) * omega) / s
    wb = np.sin(f * omega) / s
    x = wa * va[0] + wb * vb[0]
    y = wa * va[1] + wb * vb[1]
    z = wa * va[2] + wb * vb[2]
    lat = np.degrees(np.arctan2(z, np.hypot(x, y)))
    lon = np.degrees(np.arctan2(y, x))
    return lat, lon


@dataclass(frozen=True, slots=True)
class LegInput:
    """One leg as a scenario describes it."""

    origin: City
    destination: City
    mode: Mode
    speed_kmh: float | None = None
    carrier: str | None = None


@dataclass(frozen=True, slots=True)
class LegPlan:
    """A planned leg; times are seconds after the shipment's departure."""

    seq: int
    mode: Mode
    origin: City
    destination: City
    carrier: str | None
    depart_s: float
    arrive_s: float
    distance_km: float  # great circle
    moving_s: float  # time in motion, without road breaks


def _road_wall_s(moving_s: float) -> float:
    breaks = max(0, math.ceil(moving_s / DRIVE_BLOCK_S) - 1)
    return moving_s + breaks * DRIVE_BREAK_S


def leg_moving_s(leg: LegInput) -> float:
    """Seconds in motion for a leg: detoured distance over speed, plus the air overhead."""
    speed = leg.speed_kmh or DEFAULT_SPEED_KMH[leg.mode]
    km = great_circle_km(leg.origin, leg.destination) * DETOUR_FACTOR[leg.mode]
    moving = km / speed * 3600.0
    if leg.mode == "air":
        moving += AIR_OVERHEAD_S
    return moving


@dataclass(frozen=True, slots=True)
class RoutePlan:
    """A shipment's legs in time; positions are interpolated along each leg's great circle."""

    legs: tuple[LegPlan, ...]

    @property
    def duration_s(self) -> float:
        """Seconds from departure to arrival at the final destination."""
        return self.legs[-1].arrive_s

    @property
    def origin(self) -> City:
        """Where the first leg starts."""
        return self.legs[0].origin

    @property
    def destination(self) -> City:
        """Where the last leg ends."""
        return self.legs[-1].destination

    def position_at(self, elapsed_s: FloatArray) -> tuple[FloatArray, FloatArray]:
        """(lat, lon) at each elapsed time; before departure at the origin, after arrival at the end."""
        e = np.asarray(elapsed_s, dtype=np.float64)
        lat = np.full(e.shape, self.origin.lat)
        lon = np.full(e.shape, self.origin.lon)
        for leg in self.legs:  # in order, so a later leg overrides an earlier one
            arrived = e >= leg.arrive_s  # standing at this leg's end (hand-off or final stop)
            lat[arrived], lon[arrived] = leg.destination.lat, leg.destination.lon
            moving = (e >= leg.depart_s) & ~arrived
            if moving.any():
                f = _moving_fraction(leg, e[moving] - leg.depart_s)
                lat[moving], lon[moving] = interpolate_great_circle(leg.origin, leg.destination, f)
        return lat, lon


def _moving_fraction(leg: LegPlan, since_depart_s: FloatArray) -> FloatArray:
    if leg.mode != "road" or leg.moving_s <= 0:
        return since_depart_s / max(leg.moving_s, 1e-9)
    # Closed form of the break schedule: cycles of (drive block + break), position frozen in breaks.
    cycle = DRIVE_BLOCK_S + DRIVE_BREAK_S
    n = np.floor(since_depart_s / cycle)
    driven = n * DRIVE_BLOCK_S + np.minimum(since_depart_s - n * cycle, DRIVE_BLOCK_S)
    return np.minimum(driven / leg.moving_s, 1.0)


def plan_route(legs: Sequence[LegInput], *, handoff_s: float) -> RoutePlan:
    """Lay the legs out in time, with ``handoff_s`` standing time between consecutive legs."""
    if not legs:
        raise ValueError("a route needs at least one leg")
    planned: list[LegPlan] = []
    t = 0.0
    for seq, leg in enumerate(legs, start=1):
        if seq > 1:
            t += handoff_s
        moving = leg_moving_s(leg)
        wall = _road_wall_s(moving) if leg.mode == "road" else moving
        planned.append(
            LegPlan(
                seq=seq,
                mode=leg.mode,
                origin=leg.origin,
                destination=leg.destination,
                carrier=leg.carrier,
                depart_s=t,
                arrive_s=t + wall,
                distance_km=great_circle_km(leg.origin, leg.destination),
                moving_s=moving,
            )
        )
        t += wall
    return RoutePlan(tuple(planned))
