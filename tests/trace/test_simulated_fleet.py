"""The simulator's serialised fleet shows passports: a case moved between two shipments'
pallets mid-journey gives its items both loggers' readings (real database)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from psycopg.rows import dict_row

from coldchain.errors import ConfigError
from coldchain.telemetry import Reading
from simulator.fleet import build_fleet
from simulator.scenario import load_scenario, scenario_from_dict
from tests.fixtures.web import ingest
from tests.simulator import START, base_scenario, register
from traceability import lookup

pytestmark = pytest.mark.integration

REPACK = {"from_shipment": 1, "to_shipment": 2, "case": 2, "at_min": 90}


def _fleet_dict(**repack: object) -> dict[str, object]:
    data = base_scenario()
    data["fleet"] = dict(data["fleet"], loggers_per_shipment=1, repacks=[REPACK | repack])
    return data


async def test_items_of_a_repacked_case_inherit_both_shipments_loggers(db_dsn: str) -> None:
    fleet = build_fleet(scenario_from_dict(_fleet_dict()), start=START)
    register(db_dsn, fleet)
    at = START + timedelta(minutes=90)
    moved_case = next(a.child_epc for a in fleet.aggregations if a.end == at)
    item = next(a.child_epc for a in fleet.aggregations if a.parent_epc == moved_case)
    first, second = (s.device_ids[0] for s in fleet.shipments[:2])
    ingest(
        db_dsn,
        [
            Reading(device, START + timedelta(minutes=m), 5.0)
            for device in (first, second)
            for m in range(0, 240, 5)
        ],
    )
    now = datetime(2030, 1, 1, tzinfo=UTC)
    with psycopg.connect(db_dsn, autocommit=True, row_factory=dict_row) as conn:
        p = lookup.load_passport(conn, item, today=now.date(), now=now, gap_factor=2)
    refs = [s.reference for s in fleet.shipments[:2]]
    assert [(pc.device_id, pc.shipment_reference, pc.start, pc.end) for pc in p.pieces] == [
        (first, refs[0], START, at),
        (second, refs[1], at, fleet.end),
    ]
    assert {r.device_id for r in p.readings if r.ts < at} == {first}
    assert {r.device_id for r in p.readings if r.ts >= at} == {second}
    assert p.product is not None and p.unit.lot == fleet.shipments[0].lot


def test_repacks_are_checked() -> None:
    with pytest.raises(ConfigError, match=r"fleet.repacks\[0\]: from_shipment and to_shipment"):
        scenario_from_dict(_fleet_dict(to_shipment=1))
    with pytest.raises(ConfigError, match="names shipment 9"):
        scenario_from_dict(_fleet_dict(to_shipment=9))
    with pytest.raises(ConfigError, match="a pallet holds 2"):
        scenario_from_dict(_fleet_dict(case=3))
    with pytest.raises(ConfigError, match="outside the scenario's duration"):
        build_fleet(scenario_from_dict(_fleet_dict(at_min=10_000)), start=START)


def test_the_demo_moves_a_case_of_the_failed_reefer_to_another_truck() -> None:
    fleet = build_fleet(load_scenario("demo"), start=START)
    (moved,) = [a for a in fleet.aggregations if a.end is not None]
    pallets = {su.shipment_reference: su.epc for su in fleet.shipment_units}
    assert moved.parent_epc == pallets[fleet.shipments[0].reference]
    assert moved.end == START + timedelta(minutes=90)
    joined = [a for a in fleet.aggregations if a.child_epc == moved.child_epc and a.end is None]
    assert [a.parent_epc for a in joined] == [pallets[fleet.shipments[3].reference]]
