"""The fleet's units as an EPCIS document: valid against GS1's schema, deterministic, and
saying what the fleet says (pure)."""

from __future__ import annotations

from datetime import timedelta

from simulator.epcis import fleet_document
from simulator.fleet import build_fleet
from simulator.scenario import load_scenario, scenario_from_dict
from tests.simulator import START, base_scenario
from traceability.epcis_parse import parse_document
from traceability.epcis_schema import schema_problems


def test_the_demo_fleet_document_is_valid_epcis_and_the_same_every_time() -> None:
    fleet = build_fleet(load_scenario("demo"), start=START)
    doc = fleet_document(fleet)
    assert schema_problems(doc) == []
    assert fleet_document(build_fleet(load_scenario("demo"), start=START)) == doc
    parsed = parse_document(doc, today=START.date())
    assert len(parsed.events) == len(doc["epcisBody"]["eventList"])
    later = fleet_document(build_fleet(load_scenario("demo"), start=START + timedelta(days=1)))
    ids = {e["eventID"] for e in doc["epcisBody"]["eventList"]}
    assert ids.isdisjoint(e["eventID"] for e in later["epcisBody"]["eventList"])


def test_the_document_commissions_packs_and_loads_every_unit() -> None:
    fleet = build_fleet(scenario_from_dict(base_scenario()), start=START)
    events = fleet_document(fleet)["epcisBody"]["eventList"]
    commissioned = [epc for e in events if e.get("bizStep") == "commissioning"
                    for epc in e["epcList"]]  # fmt: skip
    assert sorted(commissioned) == sorted(u.epc for u in fleet.units)
    packed = {(e["parentID"], c, e["eventTime"]) for e in events if e.get("action") == "ADD"
              and e["type"] == "AggregationEvent" for c in e["childEPCs"]}  # fmt: skip
    assert len(packed) == len(fleet.aggregations)
    for step, at in (("shipping", "start"), ("receiving", "end")):
        moved = sorted(
            (e["epcList"][0], e["bizTransactionList"][0]["bizTransaction"])
            for e in events
            if e.get("bizStep") == step
        )
        assert moved == sorted(
            (su.epc, f"urn:coldchain:shipment:{su.shipment_reference}")
            for su in fleet.shipment_units
        ), at
