"""A small, known history of finished shipments on two lanes, for lane risk and carrier scores.

Every seeded number is in :data:`LANE_A` / :data:`LANE_B` (plain values), so a test can compute
each expected figure from them by its own simple route and compare with what the platform
computes from the database.

Lane BSL-JFK (air): six finished shipments, two legs each (road to the airport by FastFreight,
then the flight by SkyCargo; the sixth flies with SlowAir), arriving over January and February
2026, plus one still in transit and one cancelled (neither finished). Lane AMS-MXP (road): two
finished shipments booked without legs, carried by FastFreight.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from tests.fixtures.web import add_device, add_product

BASE = datetime(2026, 1, 5, 6, 0, tzinfo=UTC)
PLANNED_H = 48.0  # planned transit
LEG1_H = 12.0  # the first leg's planned arrival, after the start
STEP = timedelta(minutes=30)  # readings every 30 min
MARGIN = timedelta(hours=2)  # loggers record this long before the start and after the arrival


@dataclass(frozen=True)
class Exc:
    """An excursion ``start_h`` after the shipment's start lasting ``hours`` (None: still open,
    its last reading out of range ``hours_out`` after its start); ``superseded`` ones don't count."""

    start_h: float
    hours: float | None
    hours_out: float = 0.0
    superseded: bool = False


@dataclass(frozen=True)
class Ship:
    """One seeded shipment: its start (days after BASE), its arrival against plan, excursions,
    alerts, carriers of its legs (empty: booked without legs, carried by ``carrier``)."""

    reference: str
    day: int
    delay_h: float | None
    excursions: tuple[Exc, ...] = ()
    alerts: int = 0
    legs: tuple[str, ...] = ("FastFreight", "SkyCargo")
    carrier: str = "FastFreight"
    status: str = "released"
    temp_offset: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def start(self) -> datetime:
        return BASE + timedelta(days=self.day)

    @property
    def planned_arrival(self) -> datetime:
        return self.start + timedelta(hours=PLANNED_H)

    @property
    def arrived_at(self) -> datetime | None:
        if self.delay_h is None:
            return None
        return self.planned_arrival + timedelta(hours=self.delay_h)

    def temperatures(self) -> list[tuple[datetime, float]]:
        """The logger's readings: from MARGIN before the start to MARGIN after the arrival (or
        the plan), every STEP."""
        end = (self.arrived_at or self.planned_arrival) + MARGIN
        out = []
        at, k = self.start - MARGIN, 0
        while at <= end:
            out.append((at, round(5.0 + 3.0 * math.sin(0.7 * k) + self.temp_offset, 3)))
            at, k = at + STEP, k + 1
        return out


LANE_A = "BSL-JFK"
LANE_B = "AMS-MXP"
CARRIERS = ("FastFreight", "SkyCargo", "SlowAir")

LANE_A_SHIPMENTS: tuple[Ship, ...] = (
    Ship("A-1", 0, -1.0, (Exc(3.0, 1.0),), alerts=1),
    Ship("A-2", 10, 2.0, temp_offset=0.4),
    Ship("A-3", 20, 0.5, (Exc(20.0, 2.5), Exc(30.0, 0.5)), alerts=2, status="quarantined"),
    Ship("A-4", 30, -3.0, (Exc(5.0, 0.25, superseded=True),), temp_offset=-0.6),
    Ship("A-5", 40, 5.0, (Exc(49.0, None, hours_out=1.5),), alerts=1, status="under_review"),
    Ship("A-6", 50, 0.0, (Exc(11.5, 0.5),), legs=("FastFreight", "SlowAir"), status="arrived"),
)
# Not finished: they must count nowhere.
LANE_A_UNFINISHED: tuple[Ship, ...] = (
    Ship("A-7", 52, None, (Exc(2.0, 3.0),), alerts=1, status="in_transit"),
    Ship("A-8", 55, None, status="cancelled"),
)
LANE_B_SHIPMENTS: tuple[Ship, ...] = (
    Ship("B-1", 3, 1.0, (Exc(10.0, 0.75),), alerts=1, legs=(), temp_offset=1.0),
    Ship("B-2", 12, -0.5, legs=(), temp_offset=1.5),
)


def _location(conn: psycopg.Connection[Any], location_id: str, name: str) -> None:
    conn.execute(
        "INSERT INTO locations (location_id, name, lat, lon) VALUES (%s, %s, 47.5, 7.6)",
        (location_id, name),
    )


def _lane(conn: psycopg.Connection[Any], code: str, mode: str, a: str, b: str) -> int:
    row = conn.execute(
        "INSERT INTO lanes (code, origin_location_id, destination_location_id, mode)"
        " VALUES (%s, %s, %s, %s) RETURNING lane_id",
        (code, a, b, mode),
    ).fetchone()
    assert row is not None
    return int(row[0])


def _shipment(conn: psycopg.Connection[Any], ship: Ship, lane_id: int, gtin: str) -> int:
    carrier = ship.legs[-1] if ship.legs else ship.carrier
    row = conn.execute(
        "INSERT INTO shipments (reference, product_gtin, origin, destination, status, carrier,"
        " lane_id, planned_departure, planned_arrival, started_at, arrived_at)"
        " VALUES (%s, %s, 'here', 'there', %s, %s, %s, %s, %s, %s, %s) RETURNING shipment_id",
        (
            ship.reference,
            gtin,
            ship.status,
            carrier,
            lane_id,
            ship.start,
            ship.planned_arrival,
            None if ship.status in ("planned", "cancelled") else ship.start,
            ship.arrived_at,
        ),
    ).fetchone()
    assert row is not None
    sid = int(row[0])
    ends = (ship.start + timedelta(hours=LEG1_H), ship.planned_arrival)
    starts = (ship.start, ends[0])
    for seq, name in enumerate(ship.legs, start=1):
        conn.execute(
            "INSERT INTO shipment_legs (shipment_id, seq, mode, origin, destination, carrier,"
            " planned_departure, planned_arrival) VALUES (%s, %s, %s, 'x', 'y', %s, %s, %s)",
            (sid, seq, "road" if seq == 1 else "air", name, starts[seq - 1], ends[seq - 1]),
        )
    device = f"LOG-{ship.reference}"
    add_device(conn, device, interval_s=int(STEP.total_seconds()))
    readings = ship.temperatures()
    conn.execute(
        "INSERT INTO device_assignments (device_id, shipment_id, during)"
        " VALUES (%s, %s, tstzrange(%s, %s))",
        (device, sid, readings[0][0], readings[-1][0] + STEP),
    )
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO readings (device_id, ts, temp_c) VALUES (%s, %s, %s)",
            [(device, ts, t) for ts, t in readings],
        )
    for exc in ship.excursions:
        start = ship.start + timedelta(hours=exc.start_h)
        end = None if exc.hours is None else start + timedelta(hours=exc.hours)
        last_out = start + timedelta(hours=exc.hours if exc.hours is not None else exc.hours_out)
        conn.execute(
            "INSERT INTO excursions (shipment_id, device_id, direction, start_ts, end_ts,"
            " last_out_ts, min_c, max_c, degree_minutes, n_readings, alarm, rule_key,"
            " thresholds, superseded_at, superseded_reason)"
            " VALUES (%s, %s, 'high', %s, %s, %s, 8.1, 9.5, 30, 4, true, 'temp-high', %s,"
            " %s, %s)",
            (
                sid,
                device,
                start,
                end,
                last_out,
                Jsonb({"max": 8}),
                start if exc.superseded else None,
                "late reading" if exc.superseded else None,
            ),
        )
    for k in range(ship.alerts):
        conn.execute(
            "INSERT INTO alerts (shipment_id, rule_key, severity, state, title, triggered_at)"
            " VALUES (%s, %s, 'major', 'resolved', 'seeded', %s)",
            (sid, f"rule-{k}", ship.start + timedelta(hours=k)),
        )
    return sid


def seed_history(dsn: str) -> dict[str, int]:
    """Seed both lanes (see the module docstring); the shipments' ids by reference."""
    ids: dict[str, int] = {}
    with psycopg.connect(dsn, autocommit=True) as conn:
        gtin = add_product(conn, name="Insulin 10 ml")
        for loc, name in (
            ("BSL", "Basel"),
            ("JFK", "New York"),
            ("AMS", "Amsterdam"),
            ("MXP", "Milan"),
        ):
            _location(conn, loc, name)
        for name in CARRIERS:
            conn.execute("INSERT INTO carriers (name) VALUES (%s)", (name,))
        lane_a = _lane(conn, LANE_A, "air", "BSL", "JFK")
        lane_b = _lane(conn, LANE_B, "road", "AMS", "MXP")
        for ship in (*LANE_A_SHIPMENTS, *LANE_A_UNFINISHED):
            ids[ship.reference] = _shipment(conn, ship, lane_a, gtin)
        for ship in LANE_B_SHIPMENTS:
            ids[ship.reference] = _shipment(conn, ship, lane_b, gtin)
    return ids
