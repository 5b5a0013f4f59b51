"""services.shipments.shipment_track against the real database: the route map's read (positions
of the shipment's loggers within their assignments, down-sampled, and its lane's two sites)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from coldchain.telemetry import Reading
from db.types import Conn
from services import shipments
from tests.fixtures.web import add_device, add_product, add_shipment, assign, ingest

pytestmark = pytest.mark.integration

START = datetime(2026, 11, 20, 6, 0, tzinfo=UTC)


def _seed(dsn: str, *, n: int, with_lane: bool) -> int:
    """One shipment with LOG-1 from START on: ``n`` positioned readings every minute, plus one
    without a position, plus readings before its assignment (another trip) and of another
    logger not in it."""
    with psycopg.connect(dsn) as conn:
        product = add_product(conn)
        add_device(conn, "LOG-1")
        add_device(conn, "LOG-2")
        shipment = add_shipment(conn, "SHP-T", product=product)
        assign(conn, "LOG-1", shipment, START)
        if with_lane:
            conn.execute(
                "INSERT INTO locations (location_id, name, lat, lon) VALUES"
                " ('S-RTM', 'Rotterdam DC', 51.9, 4.45), ('S-BSL', NULL, 47.56, 7.59)"
            )
            conn.execute(
                "INSERT INTO lanes (code, origin_location_id, destination_location_id, mode)"
                " VALUES ('RTM-BSL', 'S-RTM', 'S-BSL', 'road')"
            )
            conn.execute(
                "UPDATE shipments SET lane_id = (SELECT lane_id FROM lanes) WHERE shipment_id = %s",
                (shipment,),
            )
    minute = timedelta(minutes=1)
    readings = [
        Reading("LOG-1", START + i * minute, 5.0 + i / n, 50.0, 51.0 - i / n, 4.5 + i / n)
        for i in range(n)
    ]
    readings.append(Reading("LOG-1", START + n * minute, 5.0, 50.0))  # no position
    readings.append(Reading("LOG-1", START - minute, 5.0, 50.0, 40.0, 0.0))  # before the trip
    readings.append(Reading("LOG-2", START, 5.0, 50.0, 40.0, 0.0))  # another logger
    ingest(dsn, readings)
    return shipment


def test_the_track_is_the_positions_within_the_assignment_and_the_lane_sites(
    db_dsn: str, conn: Conn
) -> None:
    shipment = _seed(db_dsn, n=20, with_lane=True)
    track = shipments.shipment_track(conn, shipment_id=shipment, max_points=300)
    points = track.positions.points
    assert track.positions.resolution == "raw"
    assert track.positions.total_readings == len(points) == 20
    assert {p["device_id"] for p in points} == {"LOG-1"}
    assert all(p["lat"] is not None and p["ts"] >= START for p in points)
    assert [p["ts"] for p in points] == sorted(p["ts"] for p in points)
    assert track.ends is not None
    assert (track.ends["origin_name"], track.ends["origin_lat"]) == ("Rotterdam DC", 51.9)
    # a site without a name is shown by the shipment's own destination text
    assert (track.ends["destination_name"], track.ends["destination_lon"]) == ("Basel", 7.59)


def test_a_long_track_is_down_sampled_to_the_points_asked_for(db_dsn: str, conn: Conn) -> None:
    shipment = _seed(db_dsn, n=1000, with_lane=False)
    track = shipments.shipment_track(conn, shipment_id=shipment, max_points=100)
    assert track.positions.resolution == "bucket"
    assert track.positions.total_readings == 1000
    assert 50 <= len(track.positions.points) <= 100
    # a bucket keeps its extremes, so the map can judge its peak
    assert all(p["temp_min_c"] <= p["temp_c"] <= p["temp_max_c"] for p in track.positions.points)
    assert track.ends is None  # no lane: no sites to mark
