"""Provisioning a fleet into the real database: idempotent, and a second run keeps the first's history."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
from psycopg.rows import dict_row

from coldchain.errors import InvalidRecordError, RecordConflictError
from services import loggers
from services.caller import Caller
from services.fleet import register_fleet
from simulator.fleet import build_fleet
from simulator.scenario import load_scenario, scenario_from_dict
from tests.simulator import ROOT, START, base_scenario, register

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
    register(db_dsn, fleet)
    first = counts(db_dsn)
    register(db_dsn, fleet)
    assert counts(db_dsn) == first
    assert first[2] == 3 and first[1] == 6 and first[3] == 6
    assert first[-1] == 0, "every stored GS1 identifier has a valid check digit"


async def test_a_later_run_keeps_the_earlier_readings_in_their_shipment(db_dsn: str) -> None:
    sc = scenario_from_dict(base_scenario())
    first = build_fleet(sc, start=START)
    register(db_dsn, first)
    device = first.devices[0].device_id
    early = START + timedelta(minutes=30)
    with psycopg.connect(db_dsn) as conn:
        conn.execute(
            "INSERT INTO readings (device_id, ts, temp_c) VALUES (%s, %s, 5.0)", (device, early)
        )
    # The same scenario again a day later (e.g. `make demo` run again).
    register(db_dsn, build_fleet(sc, start=START + timedelta(days=1)))
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


def test_the_fleet_is_registered_through_the_services_and_its_trips_started(
    db_dsn: str,
) -> None:
    fleet = build_fleet(scenario_from_dict(base_scenario()), start=START)
    now = START + timedelta(hours=1)
    first = register(db_dsn, fleet, now=now)
    assert (first.products, first.sites, first.carriers, first.lanes) == (1, 2, 0, 1)
    assert (first.loggers, first.shipments, first.riding, first.started) == (6, 3, 6, 3)
    with psycopg.connect(db_dsn) as conn:
        shipments = conn.execute(
            """SELECT s.reference, s.status, s.started_at, l.code, s.origin
               FROM shipments s JOIN lanes l USING (lane_id) ORDER BY s.reference"""
        ).fetchall()
        events = conn.execute(
            """SELECT e.event, count(*) FROM shipment_events e GROUP BY e.event ORDER BY 1"""
        ).fetchall()
        audited = conn.execute(
            """SELECT DISTINCT entity FROM audit_log
               WHERE actor LIKE 'cli:%%' AND reason LIKE 'simulated fleet: scenario unit%%'"""
        ).fetchall()
    assert shipments == [
        (s.reference, "in_transit", min(s.planned_departure, now), "UT-BSL-FRA", "Basel")
        for s in fleet.shipments
    ]
    assert events == [("create", 3), ("logger_attached", 6), ("start", 3)]
    assert {"products", "devices", "locations", "lanes", "shipments"} <= {e for (e,) in audited}

    again = register(db_dsn, fleet, now=now + timedelta(hours=1))
    assert (again.products, again.sites, again.lanes, again.loggers, again.shipments) == (0,) * 5
    assert (again.started, again.loggers_changed, again.riding) == (0, 0, 6)
    assert again.shipment_ids == first.shipment_ids


def test_a_fleet_with_a_retired_logger_is_refused_whole(db_dsn: str, tmp_path: Path) -> None:
    fleet = build_fleet(scenario_from_dict(base_scenario()), start=START)
    d = fleet.devices[0]
    console = Caller.console()
    with psycopg.connect(db_dsn, autocommit=True, row_factory=dict_row) as conn:
        registered = loggers.register_logger(
            conn,
            console,
            logger=loggers.LoggerIn(device_id=d.device_id, model=d.model, interval_s=d.interval_s,
                                    calibration_cert=d.calibration_cert,
                                    calibration_due=d.calibration_due),
            topic_root=ROOT,
            broker_dir=None,
        )  # fmt: skip
        loggers.retire_logger(conn, console, device_id=d.device_id, reason="dropped", topic_root=ROOT,
                              expected_version=registered.logger["version"], broker_dir=None)  # fmt: skip
    with pytest.raises(InvalidRecordError, match=f"device_id: logger {d.device_id} is retired"):
        register(db_dsn, fleet)
    # Registered whole or not at all: nothing of the fleet is left behind.
    assert counts(db_dsn)[:4] == (0, 1, 0, 0)


def test_new_loggers_are_in_the_broker_files_when_a_broker_folder_is_given(
    db_dsn: str, tmp_path: Path
) -> None:
    fleet = build_fleet(scenario_from_dict(base_scenario()), start=START)
    with psycopg.connect(db_dsn, autocommit=True, row_factory=dict_row) as conn:
        register_fleet(conn, Caller.console(), fleet, topic_root=ROOT, broker_dir=tmp_path,
                       now=START)  # fmt: skip
    passwd = (tmp_path / "passwd").read_text()
    assert {d.device_id for d in fleet.devices} <= {line.split(":")[0] for line in passwd.split()}


def test_the_demo_fleet_registers_again_a_day_later_with_its_repack(db_dsn: str) -> None:
    sc = load_scenario("demo")
    register(db_dsn, build_fleet(sc, start=START))
    later = build_fleet(sc, start=START + timedelta(days=1))
    again = register(db_dsn, later)
    assert again.shipments == 0 and again.epcis_events > 0
    with psycopg.connect(db_dsn) as conn:
        (open_rides,) = conn.execute(
            "SELECT count(*) FROM shipment_units WHERE during @> %s::timestamptz",
            (later.start + timedelta(hours=1),),
        ).fetchone() or (0,)
    assert open_rides == len(later.shipment_units)


def test_units_packed_by_the_former_private_path_refuse_the_fleet_with_what_to_do(
    db_dsn: str,
) -> None:
    fleet = build_fleet(load_scenario("demo"), start=START)
    moved = next(a for a in fleet.aggregations if a.end is not None)
    with psycopg.connect(db_dsn) as conn:
        # What simulator/provision.py wrote before: units and packing straight into the tables.
        for epc in (moved.parent_epc, moved.child_epc):
            unit = next(u for u in fleet.units if u.epc == epc)
            conn.execute(
                "INSERT INTO units (epc, kind, sscc, commissioned_at) VALUES (%s, 'sscc', %s, %s)",
                (epc, unit.sscc, unit.commissioned_at),
            )
        conn.execute(
            "INSERT INTO aggregations (parent_epc, child_epc, during) VALUES (%s, %s, tstzrange(%s, NULL))",
            (moved.parent_epc, moved.child_epc, moved.start),
        )
    with pytest.raises(RecordConflictError, match="remove the stack's data folder"):
        register(db_dsn, fleet)
    assert counts(db_dsn)[2] == 0, "nothing registered"


def test_the_demo_sites_get_their_cities_time_zones(db_dsn: str) -> None:
    fleet = build_fleet(scenario_from_dict(base_scenario()), start=START)
    register(db_dsn, fleet, now=START + timedelta(hours=1))
    with psycopg.connect(db_dsn) as conn:
        zones = conn.execute(
            "SELECT name, time_zone FROM locations WHERE gln IS NOT NULL ORDER BY name"
        ).fetchall()
    # Basel is in Switzerland, Frankfurt in Germany: each its own zone, not UTC.
    assert zones == [("Basel", "Europe/Zurich"), ("Frankfurt", "Europe/Berlin")]
