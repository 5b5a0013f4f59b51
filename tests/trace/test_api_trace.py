"""The track-and-trace API against the real database: EPCIS import and export (validated with
jsonschema against GS1's schema file, traceability/schemas/), passports, verification cases,
recall, lot impact and counterfeit signals."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from jsonschema import Draft7Validator

from tests.fixtures.auth import Person
from tests.trace.scenario import (
    LOT,
    T0,
    T_END,
    TM,
    Scenario,
    document,
    event,
    scenario_document,
)
from traceability.epcis_schema import SCHEMA_PATH, format_checker

pytestmark = pytest.mark.integration

LD = {"content-type": "application/ld+json"}


def official_validator() -> Draft7Validator:
    """GS1's schema file itself (not our copy), with URI and date-time formats enforced."""
    schema = json.loads(SCHEMA_PATH.read_text())
    return Draft7Validator(schema, format_checker=format_checker())


def scanned(s: Scenario, serial: str, lot: str = LOT, expiry: str = "301231") -> str:
    """What a 2D scanner types for an item: symbology id, fixed-length AIs, GS after the lot."""
    return f"]d201{s.gtin}17{expiry}10{lot}\x1d21{serial}"


def test_import_through_the_api_is_idempotent_and_refuses_bad_documents_whole(
    seeded: Scenario, client: TestClient, admin: dict[str, str], db_dsn: str
) -> None:
    doc = scenario_document(seeded)
    assert client.post("/api/v1/epcis/events", json=doc).status_code == 403  # a viewer
    again = client.post("/api/v1/epcis/events", json=doc, headers=admin)
    assert again.status_code == 200 and again.json()["n_new"] == 0
    assert again.json()["import_id"] is None

    with psycopg.connect(db_dsn) as conn:
        before = conn.execute("SELECT count(*) FROM epcis_events").fetchone()
    broken = document(
        [
            event("ObjectEvent", T0, epcList=[seeded.epc("S4")], action="OBSERVE"),
            event("ObjectEvent", T0, epcList=["urn:epc:id:sgtin:9506000.013435"], action="LOOK"),
        ]
    )
    r = client.post("/api/v1/epcis/events", json=broken, headers=admin)
    assert r.status_code == 422
    problems = r.json()["detail"]["problems"]
    assert any(p["path"] == "/epcisBody/eventList/1/action" for p in problems), problems
    assert "nothing was stored" in r.json()["detail"]["message"]
    r = client.post("/api/v1/epcis/events", content=b"<xml/>", headers=LD | admin)
    assert r.status_code == 422 and "not JSON" in r.json()["detail"]["problems"][0]["message"]
    with psycopg.connect(db_dsn) as conn:
        assert conn.execute("SELECT count(*) FROM epcis_events").fetchone() == before


def test_passport_endpoint_for_a_scanned_item(seeded: Scenario, client: TestClient) -> None:
    r = client.get("/api/v1/units/passport", params={"id": scanned(seeded, "S1")})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["unit"]["epc"] == seeded.epc("S1") and body["unit"]["lot"] == LOT
    assert [(p["device_id"], p["shipment_reference"]) for p in body["pieces"]] == [
        ("L1", "SHP-1"),
        ("L2", "SHP-2"),
    ]
    n_expected = sum(1 for r in seeded.readings["L1"] if T0 <= r.ts < TM) + sum(
        1 for r in seeded.readings["L2"] if TM <= r.ts < T_END
    )
    assert len(body["readings"]) == body["figures"]["n_readings"] == n_expected
    assert body["custody"][0]["legs"][0]["origin"] == "Rotterdam"
    assert body["figures"]["budget"]["time_out_s"] == 3600
    assert body["figures"]["budget"]["status"] == "ok"
    assert body["figures"]["mkt"]["weighting"] == "step"
    assert len(body["figures"]["excursions"]) == 2
    assert [e["cleared"] for e in body["recorded_excursions"]] == [False, False]

    light = client.get(
        "/api/v1/units/passport", params={"id": seeded.epc("S1"), "include_readings": "false"}
    )
    assert light.json()["readings"] is None
    unknown = client.get("/api/v1/units/passport", params={"id": seeded.sgtin("NOPE").digital_link})
    assert unknown.status_code == 404 and "NOPE" in unknown.json()["detail"]
    garbage = client.get("/api/v1/units/passport", params={"id": "hello"})
    assert garbage.status_code == 422 and garbage.json()["detail"][0]["loc"] == ["query", "id"]


def test_verification_cases(
    seeded: Scenario, client: TestClient, people: dict[str, Person]
) -> None:
    s = seeded
    r = client.post(
        "/api/v1/recalls",
        json={"gtin": s.gtin, "lot": "LOT-R", "reason": "sub-potent after a freezer failure"},
        headers=people["qa"].headers,
    )
    assert r.status_code == 201, r.text

    def check(identifier: str, *, post: bool = False) -> dict[str, Any]:
        r = (
            client.post("/api/v1/units/verify", json={"id": identifier})
            if post
            else client.get("/api/v1/units/verify", params={"id": identifier})
        )
        assert r.status_code == 200, r.text
        return r.json()

    ok = check(scanned(s, "S4"), post=True)
    assert (ok["status"], ok["sellable"], ok["lot"], ok["expiry"]) == (
        "ok",
        True,
        LOT,
        "2030-12-31",
    )
    assert ok["product_name"] == "Vaxigrip 10 x 0.5 ml"
    assert check(s.sgtin("NOPE").digital_link)["status"] == "unknown"
    assert check("hello")["status"] == "invalid"
    expired = check(s.epc("S5"))
    assert (expired["status"], expired["expired"]) == ("expired", True)
    recalled = check(s.sgtin("S6").element_string)
    assert recalled["status"] == "recalled" and "sub-potent" in recalled["reasons"][0]
    exposed = check(scanned(s, "S1"), post=True)
    assert exposed["status"] == "exposed" and not exposed["sellable"]
    assert [e["id"] for e in exposed["uncleared_excursions"]] == [
        s.excursions["L1@1h"],
        s.excursions["L2@6h"],
    ]
    # The label lies about the lot: a counterfeit signal, worse than the exposure.
    assert check(scanned(s, "S1", lot="LOT-X"))["status"] == "suspect"
    # QA clears exposures with signed dispositions: test_qa_clearance.py.


def test_recall_and_lot_impact_endpoints(seeded: Scenario, client: TestClient) -> None:
    s = seeded
    r = client.get("/api/v1/units/exposed", params={"excursion_id": s.excursions["L2@6h"]})
    assert r.status_code == 200, r.text
    assert {u["epc"] for u in r.json()["units"]} == {s.pallet_b, s.epc("S1"), s.epc("S3")}
    assert r.json()["lots"][0]["units"] == 2
    assert client.get("/api/v1/units/exposed", params={"excursion_id": 99999}).status_code == 404
    lot = client.get("/api/v1/units/lot-excursions", params={"gtin": s.gtin, "lot": LOT}).json()
    assert [e["units_exposed"] for e in lot["excursions"]] == [2, 1, 2]
    missing = client.get("/api/v1/units/lot-excursions", params={"gtin": s.gtin, "lot": "NOPE"})
    assert missing.status_code == 404


def test_impossible_travel_and_uncommissioned_units_are_flagged(
    seeded: Scenario, client: TestClient, admin: dict[str, str], db_dsn: str
) -> None:
    s = seeded
    now = datetime.now(UTC).replace(microsecond=0)
    basel, singapore = "urn:epc:id:sgln:9506000.00001.0", "urn:epc:id:sgln:9506000.00002.0"
    with psycopg.connect(db_dsn) as conn:
        conn.execute(
            "INSERT INTO locations (location_id, name, lat, lon) VALUES"
            " (%s, 'Basel DC', 47.5596, 7.5886), (%s, 'Singapore hub', 1.3521, 103.8198)",
            (basel, singapore),
        )
    sightings = [
        event(
            "ObjectEvent",
            now - timedelta(hours=2),
            epcList=[s.epc("S4")],
            action="OBSERVE",
            bizStep="inspecting",
            readPoint={"id": basel},
        ),
        event(
            "ObjectEvent",
            now - timedelta(hours=1),
            epcList=[s.sgtin("S4").digital_link],
            action="OBSERVE",
            bizStep="inspecting",
            readPoint={"id": singapore},
        ),
        event(  # a serial nobody ever commissioned
            "ObjectEvent",
            now - timedelta(hours=1),
            epcList=[s.epc("GHOST")],
            action="OBSERVE",
            bizStep="inspecting",
            readPoint={"id": basel},
        ),
    ]
    r = client.post("/api/v1/epcis/events", json=document(sightings), headers=admin)
    assert r.status_code == 200, r.text
    v = client.get("/api/v1/units/verify", params={"id": s.epc("S4")}).json()
    assert v["status"] == "suspect" and "impossible_travel" in v["flags"]
    (travel,) = v["impossible_travel"]
    assert travel["distance_km"] > 10_000 and travel["second_place"] == singapore
    ghost = client.get("/api/v1/units/verify", params={"id": s.epc("GHOST")}).json()
    assert ghost["status"] == "suspect" and ghost["flags"] == ["never_commissioned"]

    signals = client.get("/api/v1/units/signals", params={"days": 1}).json()
    assert [t["epc"] for t in signals["impossible_travel"]] == [s.epc("S4")]
    assert [u["epc"] for u in signals["uncommissioned"]] == [s.epc("GHOST")]


def test_exports_validate_against_the_official_schema_and_reimport_cleanly(
    seeded: Scenario, client: TestClient, admin: dict[str, str]
) -> None:
    s = seeded
    validator = official_validator()
    shipment = client.get("/api/v1/epcis/export", params={"shipment": "SHP-1"})
    assert shipment.status_code == 200, shipment.text
    assert shipment.headers["content-type"].startswith("application/ld+json")
    doc = shipment.json()
    assert sorted(validator.iter_errors(doc), key=str) == []
    events = doc["epcisBody"]["eventList"]
    sensor = [e for e in events if e.get("bizStep") == "sensor_reporting"]
    assert len(sensor) == 10  # 9 h of L1 readings inside the assignment, hourly
    first = sensor[0]["sensorElementList"][0]
    reports = {(r["type"], r.get("component")): r for r in first["sensorReport"]}
    assert reports[("Temperature", None)]["uom"] == "CEL"
    assert {"minValue", "maxValue", "meanValue"} <= reports[("Temperature", None)].keys()
    assert reports[("RelativeHumidity", None)]["uom"] == "P1"
    assert reports[("Angle", "latitude")]["value"] == 47.5
    assert first["sensorMetadata"]["deviceID"] == "urn:coldchain:device:L1"
    alarms = [
        el
        for e in sensor
        for el in e["sensorElementList"]
        if el["sensorReport"][0].get("exception") == "ALARM_CONDITION"
    ]
    assert [a["sensorMetadata"]["startTime"] for a in alarms] == ["2025-03-03T07:00:00.000Z"]
    assert alarms[0]["sensorReport"][0]["maxValue"] == 9.6  # as the rules engine recorded it
    # What L1 watched: pallet A while it rode (T0 to T0 + 8 h), nothing before and after.
    carried = [(e["eventTime"][11:16], e["epcList"]) for e in sensor]
    assert carried[0] == ("05:55", []) and carried[-1] == ("14:55", [])
    assert all(epcs == [s.pallet_a] for _, epcs in carried[1:-1])
    shipping = [e for e in events if e.get("bizStep") == "shipping"]
    assert shipping[0]["bizTransactionList"][0]["bizTransaction"].endswith(":SHP-1")
    packs = {(e["action"], e["parentID"], e["eventTime"]) for e in events if "parentID" in e}
    assert ("DELETE", s.pallet_a, "2025-03-03T10:00:00.000Z") in packs

    unit = client.get("/api/v1/epcis/export", params={"unit": scanned(s, "S1"), "interval_min": 30})
    assert unit.status_code == 200, unit.text
    udoc = unit.json()
    assert sorted(validator.iter_errors(udoc), key=str) == []
    moves = [
        (e["action"], e["parentID"], e["eventTime"])
        for e in udoc["epcisBody"]["eventList"]
        if e["type"] == "AggregationEvent"
    ]
    assert moves == [  # at one instant, unpacking comes before packing (a re-pack)
        ("ADD", s.pallet_a, "2025-03-03T05:00:00.000Z"),
        ("DELETE", s.pallet_a, "2025-03-03T10:00:00.000Z"),
        ("ADD", s.pallet_b, "2025-03-03T10:00:00.000Z"),
    ]
    usensor = [e for e in udoc["epcisBody"]["eventList"] if e.get("bizStep") == "sensor_reporting"]
    devices = [e["sensorElementList"][0]["sensorMetadata"]["deviceID"] for e in usensor]
    assert devices == ["urn:coldchain:device:L1"] * 8 + ["urn:coldchain:device:L2"] * 8
    # Exporting twice gives the same event ids; importing our own export changes no history.
    again = client.get("/api/v1/epcis/export", params={"unit": s.epc("S1"), "interval_min": 30})
    assert [e["eventID"] for e in again.json()["epcisBody"]["eventList"]] == [
        e["eventID"] for e in udoc["epcisBody"]["eventList"]
    ]
    before = client.get("/api/v1/units/passport", params={"id": s.epc("S1")}).json()
    r = client.post("/api/v1/epcis/events", json=udoc, headers=admin)
    assert r.status_code == 200 and r.json()["n_new"] == len(udoc["epcisBody"]["eventList"])
    after = client.get("/api/v1/units/passport", params={"id": s.epc("S1")}).json()
    for part in ("pieces", "custody", "containers", "readings"):
        assert after[part] == before[part], part
    assert client.get("/api/v1/epcis/export").status_code == 400  # documented


def test_nan_in_a_document_is_refused_as_not_json_and_nothing_is_stored(
    seeded: Scenario, client: TestClient, admin: dict[str, str], db_dsn: str
) -> None:
    """Python's parser takes ``NaN``; JSON (and the canonical form the hashes use) does not."""
    with psycopg.connect(db_dsn) as conn:
        before = conn.execute("SELECT count(*) FROM epcis_events").fetchone()
    nan_event = event("ObjectEvent", T0, epcList=[seeded.epc("S4")], action="OBSERVE")
    nan_event["example:reading"] = float("nan")
    raw = json.dumps(document([nan_event])).encode()
    assert b"NaN" in raw
    r = client.post("/api/v1/epcis/events", content=raw, headers=LD | admin)
    assert r.status_code == 422, r.text
    assert "NaN is not a JSON value" in r.json()["detail"]["problems"][0]["message"]
    with psycopg.connect(db_dsn) as conn:
        assert conn.execute("SELECT count(*) FROM epcis_events").fetchone() == before
