"""Positions on the Earth and geofences: distance, inside or not, and a box to search by.

Pure: plain floats in, plain values out. A geofence is a circle: a site's centre (latitude,
longitude in degrees, WGS 84) and a radius in metres (``locations.geofence_m``). Distances are
great-circle distances on a sphere of the Earth's mean radius (haversine): off by at most about
0.5 % against the ellipsoid, a few metres on a 1 km geofence, far less than a logger's GPS error
indoors, and the same answer in every process and in the tests.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

#: The Earth's mean radius (IUGG), metres.
EARTH_RADIUS_M = 6_371_008.8


@dataclass(frozen=True, slots=True)
class Geofence:
    """A circle of ``radius_m`` metres around (``lat``, ``lon``)."""

    lat: float
    lon: float
    radius_m: float


@dataclass(frozen=True, slots=True)
class Box:
    """A latitude/longitude box that holds a geofence (for an index-friendly first filter)."""

    lat_min: float
    lat_max: float
    lon_min: float
    lon_max: float


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres between two points (haversine)."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dphi = phi2 - phi1
    dlmb = math.radians(lon2 - lon1)
    h = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlmb / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(min(1.0, max(0.0, h))))


def inside(fence: Geofence, lat: float, lon: float) -> bool:
    """Whether the point is in the geofence (on the circle counts as inside)."""
    return distance_m(fence.lat, fence.lon, lat, lon) <= fence.radius_m


def bounding_box(fence: Geofence) -> Box:
    """A box that holds every point of the geofence (a little more near the poles and the
    antimeridian, where it widens to every longitude: never less)."""
    dlat = math.degrees(fence.radius_m / EARTH_RADIUS_M)
    lat_min, lat_max = fence.lat - dlat, fence.lat + dlat
    if lat_min <= -90.0 or lat_max >= 90.0:
        return Box(max(lat_min, -90.0), min(lat_max, 90.0), -180.0, 180.0)
    # The widest longitude span is at the latitude furthest from the equator the circle reaches.
    widest = max(abs(lat_min), abs(lat_max))
    dlon = math.degrees(fence.radius_m / (EARTH_RADIUS_M * math.cos(math.radians(widest))))
    lon_min, lon_max = fence.lon - dlon, fence.lon + dlon
    if lon_min < -180.0 or lon_max > 180.0 or dlon >= 180.0:
        return Box(lat_min, lat_max, -180.0, 180.0)
    return Box(lat_min, lat_max, lon_min, lon_max)
