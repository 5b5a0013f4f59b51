"""Provisioning a fleet into the real database: idempotent, and a second run keeps the first's history."""

from __future__ import annotations

from datetime import timedelta

import psycopg
import pytest

from simulator.fleet import build_fleet
from simulator.provision import provision_fleet
from simulator.scenario import scenario_from_dict
from tests.simulator import START, base_scenario

pytestmark = pytest.mark.integration

COUNTS = """SELECT (SELECT count(*) FROM products), (SELECT count(*) FROM devices),
                   (SELECT count(*) FROM shipments), (SELECT count(*) FROM device_assignments),
                   (SELECT count(*) FROM units), (SELECT count(*) FROM aggregations),
                   (SELECT count(*) FROM shipment_units),
                   (SELECT count(*) FROM units WHERE NOT gs1_check_digit_ok(coalesce(sscc, gtin)))"""


def counts(dsn: str) -> tuple[int, ...]:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(COUNTS).fetchone()
    assert row is not None
    return tuple(row)


async def test_provisioning_twice_changes_nothing(db_dsn: str) -> None:
    fleet = build_fleet(scenario_from_dict(base_scenario()))
    await provision_fleet(db_dsn, fleet)
    first = counts(db_dsn)
    await provision_fleet(db_dsn, fleet)
    assert counts(db_dsn) == first
    assert first[2] == 3 and first[1] == 6 and first[3] == 6
    assert first[-1] == 0, "every stored GS1 identifier has a valid check digit"


async def test_a_later_run_keeps_the_earlier_readings_in_their_shipment(db_dsn: str) -> None:
    sc = scenario_from_dict(base_scenario())
    first = build_fleet(sc, start=START)
    await provision_fleet(db_dsn, first)
    device = first.devices[0].device_id
    early = START + timedelta(minutes=30)
    with psycopg.connect(db_dsn) as conn:
        conn.execute(
            "INSERT INTO readings (device_id, ts, temp_c) VALUES (%s, %s, 5.0)", (device, early)
        )
    # The same scenario again a day later (e.g. `make demo` run again).
    await provision_fleet(db_dsn, build_fleet(sc, start=START + timedelta(days=1)))
    with psycopg.connect(db_dsn) as conn:
        rows = conn.execute(
            """SELECT s.reference FROM readings r
               JOIN device_assignments a ON a.device_id = r.device_id AND a.during @> r.ts
               JOIN shipments s USING (shipment_id) WHERE r.device_id = %s""",
            (device,),
        ).fetchall()
        (n_assignments,) = conn.execute(
            "SELECT count(*) FROM device_assignments WHERE device_id = %s", (device,)
        ).fetchone() or (0,)
    assert rows == [(first.shipments[0].reference,)]
    assert n_assignments == 1
