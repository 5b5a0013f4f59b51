"""Distances, geofences and their search box (coldchain/geo.py): table and property tests."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from coldchain.geo import EARTH_RADIUS_M, Geofence, bounding_box, distance_m, inside

lats = st.floats(min_value=-89.9, max_value=89.9, allow_nan=False)
lons = st.floats(min_value=-180.0, max_value=180.0, allow_nan=False)
radii = st.floats(min_value=1.0, max_value=200_000.0, allow_nan=False)


@pytest.mark.parametrize(
    ("a", "b", "km"),
    [
        # One degree of a great circle is 2πR/360 (R the mean radius): 111.195 km.
        ((0.0, 0.0), (0.0, 1.0), 2 * math.pi * EARTH_RADIUS_M / 360 / 1000),
        ((0.0, 0.0), (1.0, 0.0), 2 * math.pi * EARTH_RADIUS_M / 360 / 1000),
        # Half the circumference between antipodes.
        ((10.0, 20.0), (-10.0, -160.0), math.pi * EARTH_RADIUS_M / 1000),
    ],
)
def test_distance_of_known_arcs(a: tuple[float, float], b: tuple[float, float], km: float) -> None:
    assert distance_m(*a, *b) / 1000 == pytest.approx(km, rel=1e-7)


@given(lats, lons, st.floats(-0.01, 0.01), st.floats(-0.01, 0.01))
def test_short_distances_agree_with_the_flat_approximation(
    lat: float, lon: float, dlat: float, dlon: float
) -> None:
    """Within a kilometre or so the Earth is flat enough: the equirectangular distance."""
    mid = math.radians(lat + dlat / 2)
    flat = EARTH_RADIUS_M * math.hypot(math.radians(dlat), math.radians(dlon) * math.cos(mid))
    assert distance_m(lat, lon, lat + dlat, lon + dlon) == pytest.approx(flat, rel=1e-4, abs=1e-3)


@given(lats, lons, lats, lons)
def test_distance_is_symmetric_and_non_negative(a: float, b: float, c: float, d: float) -> None:
    there, back = distance_m(a, b, c, d), distance_m(c, d, a, b)
    assert there >= 0
    assert there == pytest.approx(back, abs=1e-6)
    assert there <= math.pi * EARTH_RADIUS_M + 1e-6


@given(lats, lons, lats, lons, lats, lons)
def test_triangle_inequality(a: float, b: float, c: float, d: float, e: float, f: float) -> None:
    assert distance_m(a, b, e, f) <= distance_m(a, b, c, d) + distance_m(c, d, e, f) + 1e-3


@given(lats, lons, radii)
def test_the_centre_is_inside_and_the_edge_counts(lat: float, lon: float, r: float) -> None:
    fence = Geofence(lat, lon, r)
    assert inside(fence, lat, lon)
    # A point due north at exactly the radius (when it stays off the pole) is on the edge.
    north = lat + math.degrees(r / EARTH_RADIUS_M)
    if north < 90:
        d = distance_m(lat, lon, north, lon)
        assert inside(Geofence(lat, lon, d), north, lon)
        assert not inside(Geofence(lat, lon, d * (1 - 1e-9) - 1e-6), north, lon)


@given(lats, lons, radii, st.floats(0, 1), st.floats(0, 2 * math.pi))
def test_every_point_inside_is_in_the_box(
    lat: float, lon: float, r: float, frac: float, bearing: float
) -> None:
    """The database filters by the box first: it must never lose a point of the geofence."""
    fence = Geofence(lat, lon, r)
    # The point at distance frac × r along ``bearing`` (the direct geodesic problem on a sphere).
    delta = frac * r / EARTH_RADIUS_M
    phi1, lmb1 = math.radians(lat), math.radians(lon)
    phi2 = math.asin(
        math.sin(phi1) * math.cos(delta) + math.cos(phi1) * math.sin(delta) * math.cos(bearing)
    )
    lmb2 = lmb1 + math.atan2(
        math.sin(bearing) * math.sin(delta) * math.cos(phi1),
        math.cos(delta) - math.sin(phi1) * math.sin(phi2),
    )
    plat = math.degrees(phi2)
    plon = (math.degrees(lmb2) + 540.0) % 360.0 - 180.0
    if not inside(fence, plat, plon):  # rounding at the very edge
        return
    box = bounding_box(fence)
    assert box.lat_min - 1e-9 <= plat <= box.lat_max + 1e-9
    assert box.lon_min - 1e-9 <= plon <= box.lon_max + 1e-9


@given(lats, lons, radii)
def test_the_box_is_not_much_bigger_than_the_fence_away_from_the_poles(
    lat: float, lon: float, r: float
) -> None:
    box = bounding_box(Geofence(lat, lon, r))
    if box.lon_min == -180.0 and box.lon_max == 180.0:
        return  # widened on purpose near a pole or the antimeridian
    height = distance_m(box.lat_min, lon, box.lat_max, lon)
    assert height == pytest.approx(2 * r, rel=1e-6)
