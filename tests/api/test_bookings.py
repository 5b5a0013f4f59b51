"""Booking shipments over HTTP: idempotent creation, If-Match, loggers and their calibration,
the lifecycle, and the release guard on the real database."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from coldchain.gs1 import check_digit
from coldchain.settings import Settings
from coldchain.telemetry import Reading
from tests.fixtures.auth import PASSWORD, Person
from tests.fixtures.web import add_device, add_excursion, add_product, ingest

pytestmark = pytest.mark.integration

API = "/api/v1"


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as c:
        yield c


@pytest.fixture
def product(db_dsn: str) -> str:
    with psycopg.connect(db_dsn) as conn:
        return add_product(conn)


def booking(product: str, reference: str = "SHP-100", **extra: Any) -> dict[str, Any]:
    return {
        "reference": reference,
        "origin": "Basel",
        "destination": "Milan",
        "references": [{"kind": "purchase_order", "value": "PO-4711"}],
        "items": [{"gtin": product, "lot": "L-1", "quantity": 120}],
        **extra,
    }


def test_a_retried_create_returns_the_first_shipment(
    client: TestClient, people: dict[str, Person], product: str
) -> None:
    op = people["operator"].headers
    first = client.post(f"{API}/shipments", json=booking(product), headers=op)
    assert first.status_code == 201, first.text
    again = client.post(f"{API}/shipments", json=booking(product), headers=op)
    assert again.status_code == 200, again.text
    assert again.json()["shipment_id"] == first.json()["shipment_id"]
    assert again.json()["references"] == [{"kind": "purchase_order", "value": "PO-4711"}]
    assert again.json()["items"][0]["quantity"] == 120

    # Another request naming the same purchase order is another shipment's: refused.
    other = client.post(f"{API}/shipments", json=booking(product, "SHP-101"), headers=op)
    assert other.status_code == 409
    assert "purchase_order 'PO-4711'" in other.json()["detail"]

    # Without a natural key in common, the Idempotency-Key decides.
    plain = {"reference": "SHP-200", "origin": "Basel", "destination": "Oslo"}
    key = {**op, "Idempotency-Key": "erp-42"}
    made = client.post(f"{API}/shipments", json=plain, headers=key)
    repeat = client.post(f"{API}/shipments", json=plain, headers=key)
    assert (made.status_code, repeat.status_code) == (201, 200)
    assert made.json()["shipment_id"] == repeat.json()["shipment_id"]
    changed = client.post(f"{API}/shipments", json={**plain, "reference": "SHP-201"}, headers=key)
    assert changed.status_code == 409 and "Idempotency-Key 'erp-42'" in changed.json()["detail"]


def test_a_shipment_is_found_by_its_external_references(
    client: TestClient, people: dict[str, Person], product: str
) -> None:
    op = people["operator"].headers
    refs = [
        {"kind": "purchase_order", "value": "PO-5829"},
        {"kind": "customer", "value": "CUST-Bern-17"},
    ]
    made = client.post(
        f"{API}/shipments", json=booking(product, "SHP-300", references=refs), headers=op
    )
    assert made.status_code == 201, made.text
    client.post(
        f"{API}/shipments",
        json=booking(product, "SHP-301", references=[{"kind": "purchase_order", "value": "X-1"}]),
        headers=op,
    )
    for q in ("PO-5829", "po-58", "Bern-17"):
        found = client.get(f"{API}/shipments", params={"q": q}, headers=op)
        assert found.status_code == 200, found.text
        assert [s["reference"] for s in found.json()["items"]] == ["SHP-300"], q
    nothing = client.get(f"{API}/shipments", params={"q": "PO-0000"}, headers=op)
    assert nothing.json()["items"] == []


def test_who_may_book_and_bad_fields_are_named(
    client: TestClient, people: dict[str, Person], product: str
) -> None:
    for role, expected in (("viewer", 403), ("qa", 403), ("admin", 201)):
        body = booking(product, f"SHP-{role}", references=[])
        r = client.post(f"{API}/shipments", json=body, headers=people[role].headers)
        assert r.status_code == expected, (role, r.text)
    bad = booking(product, "SHP-X", references=[], items=[{"gtin": "12345678901234", "lot": "L",
                                                           "quantity": 1}])  # fmt: skip
    r = client.post(f"{API}/shipments", json=bad, headers=people["operator"].headers)
    assert r.status_code == 422
    assert r.json()["detail"].startswith("items[0].gtin: ")
    no_place = {"reference": "SHP-Y"}
    r = client.post(f"{API}/shipments", json=no_place, headers=people["operator"].headers)
    assert r.status_code == 422 and r.json()["detail"].startswith("origin: required")


def test_a_stale_if_match_is_refused(
    client: TestClient, people: dict[str, Person], product: str
) -> None:
    op = people["operator"].headers
    created = client.post(f"{API}/shipments", json=booking(product), headers=op).json()
    url = f"{API}/shipments/{created['shipment_id']}"
    read = client.get(f"{url}/booking", headers=op)
    etag = read.headers["ETag"]
    assert etag == f'"{read.json()["version"]}"'

    arrival = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0).isoformat()
    missing = client.patch(url, json={"planned_arrival": arrival}, headers=op)
    assert missing.status_code == 428
    ok = client.patch(url, json={"planned_arrival": arrival}, headers={**op, "If-Match": etag})
    assert ok.status_code == 200, ok.text
    assert ok.json()["version"] == read.json()["version"] + 1
    assert ok.headers["ETag"] == f'"{ok.json()["version"]}"'

    later = (datetime.now(UTC) + timedelta(days=3)).isoformat()
    stale = client.patch(url, json={"planned_arrival": later}, headers={**op, "If-Match": etag})
    assert stale.status_code == 412
    assert f"at version {ok.json()['version']}" in stale.json()["detail"]
    assert (
        client.get(f"{url}/booking", headers=op).json()["planned_arrival"]
        == ok.json()["planned_arrival"]
    )


def test_an_expired_calibration_needs_an_audited_override(
    client: TestClient, people: dict[str, Person], product: str, db_dsn: str
) -> None:
    with psycopg.connect(db_dsn) as conn:
        add_device(conn, "LOG-OLD")
        yesterday = date.today() - timedelta(days=1)
        conn.execute(
            "UPDATE devices SET calibration_due = %s WHERE device_id = 'LOG-OLD'", (yesterday,)
        )
    op = people["operator"].headers
    sid = client.post(f"{API}/shipments", json=booking(product), headers=op).json()["shipment_id"]
    url = f"{API}/shipments/{sid}/loggers"

    refused = client.post(url, json={"device_id": "LOG-OLD"}, headers=op)
    assert refused.status_code == 409
    assert yesterday.isoformat() in refused.json()["detail"]
    assert "override_reason" in refused.json()["detail"]

    why = "spare logger; recalibration booked, readings cross-checked with LOG-7"
    allowed = client.post(url, json={"device_id": "LOG-OLD", "override_reason": why}, headers=op)
    assert allowed.status_code == 200, allowed.text
    assert [a["device_id"] for a in allowed.json() if a["attached"]] == ["LOG-OLD"]

    timeline = client.get(f"{API}/shipments/{sid}/timeline", headers=op).json()
    override = [e for e in timeline if e["event"] == "calibration_override"]
    assert len(override) == 1 and override[0]["reason"] == why
    assert override[0]["actor"] == people["operator"].username
    with psycopg.connect(db_dsn) as conn:
        audited = conn.execute(
            "SELECT actor, reason FROM audit_log WHERE entity = 'device_assignments'"
            " AND action = 'insert'"
        ).fetchall()
    assert audited == [(people["operator"].username, f"calibration override: {why}")]


def test_a_logger_in_another_active_shipment_is_refused(
    client: TestClient, people: dict[str, Person], product: str, db_dsn: str
) -> None:
    with psycopg.connect(db_dsn) as conn:
        add_device(conn, "LOG-1")
    op = people["operator"].headers
    first = client.post(f"{API}/shipments", json=booking(product), headers=op).json()
    second = client.post(
        f"{API}/shipments", json=booking(product, "SHP-2", references=[]), headers=op
    ).json()
    a = client.post(f"{API}/shipments/{first['shipment_id']}/loggers",
                    json={"device_id": "LOG-1"}, headers=op)  # fmt: skip
    assert a.status_code == 200, a.text
    b = client.post(f"{API}/shipments/{second['shipment_id']}/loggers",
                    json={"device_id": "LOG-1"}, headers=op)  # fmt: skip
    assert b.status_code == 409 and "SHP-100" in b.json()["detail"]

    # Detached from the first, it may ride in the second: both histories stay.
    d = client.post(f"{API}/shipments/{first['shipment_id']}/loggers/LOG-1/detach", json={},
                    headers=op)  # fmt: skip
    assert d.status_code == 200 and d.json()[0]["attached"] is False
    b = client.post(f"{API}/shipments/{second['shipment_id']}/loggers",
                    json={"device_id": "LOG-1"}, headers=op)  # fmt: skip
    assert b.status_code == 200, b.text
    first_loggers = client.get(f"{API}/shipments/{first['shipment_id']}/booking", headers=op)
    assert [(x["device_id"], x["attached"]) for x in first_loggers.json()["loggers"]] == [
        ("LOG-1", False)
    ]


def sign(client: TestClient, qa: Person, shipment: int, decision: str) -> Any:
    """QA signs ``decision`` on the report as of now, as the dashboard and the API do."""
    as_of = (datetime.now(UTC) + timedelta(seconds=1)).replace(microsecond=0).isoformat()
    report = client.get(
        f"{API}/shipments/{shipment}/report.json", params={"as_of": as_of}, headers=qa.headers
    )
    assert report.status_code == 200, report.text
    body = {
        "decision": decision,
        "reason": f"{decision}: reviewed",
        "as_of": as_of,
        "report_hash": report.json()["content_hash"],
        "password": PASSWORD,
    }
    return client.post(f"{API}/shipments/{shipment}/dispositions", json=body, headers=qa.headers)


def test_a_release_waits_for_arrival_and_for_open_excursions_to_end(
    client: TestClient, people: dict[str, Person], product: str, db_dsn: str
) -> None:
    with psycopg.connect(db_dsn) as conn:
        add_device(conn, "LOG-1")
    op, qa = people["operator"].headers, people["qa"]
    sid = client.post(f"{API}/shipments", json=booking(product), headers=op).json()["shipment_id"]
    assert client.post(f"{API}/shipments/{sid}/loggers", json={"device_id": "LOG-1"},
                       headers=op).status_code == 200  # fmt: skip
    assert client.post(f"{API}/shipments/{sid}/start", json={}, headers=op).status_code == 200
    now = datetime.now(UTC)
    ingest(db_dsn, [Reading("LOG-1", now + timedelta(milliseconds=100 + i), 5.0) for i in (0, 1)])

    in_transit = sign(client, qa, sid, "release")
    assert in_transit.status_code == 409
    assert "in_transit" in in_transit.json()["detail"]

    with psycopg.connect(db_dsn) as conn:
        add_excursion(conn, sid, "LOG-1", start=now, end=None, last_out=now)
    arrived = client.post(f"{API}/shipments/{sid}/arrive", json={}, headers=op)
    assert arrived.status_code == 200, arrived.text
    assert arrived.json()[0]["verdict"] == "exception"
    assert "open_excursion" in [r["code"] for r in arrived.json()[0]["reasons"]]

    still_open = sign(client, qa, sid, "release")
    assert still_open.status_code == 409
    assert "excursion(s) still open" in still_open.json()["detail"]

    # A quarantine is not a release: QA may hold the goods while the excursion is open.
    held = sign(client, qa, sid, "quarantine")
    assert held.status_code == 201, held.text
    state = client.get(f"{API}/shipments/{sid}/booking", headers=op).json()["status"]
    assert state == "quarantined"
    events = [e["event"] for e in client.get(f"{API}/shipments/{sid}/timeline", headers=op).json()]
    assert events == [
        "create", "logger_attached", "start", "arrive", "verdict", "review", "quarantine",
    ]  # fmt: skip
    queue = client.get(f"{API}/qa/queue", headers=qa.headers).json()
    assert [(q["shipment_id"], q["has_exception"]) for q in queue] == [(sid, True)]


def test_cancel_only_while_planned(
    client: TestClient, people: dict[str, Person], product: str
) -> None:
    op = people["operator"].headers
    sid = client.post(f"{API}/shipments", json=booking(product), headers=op).json()["shipment_id"]
    assert client.post(f"{API}/shipments/{sid}/start", json={}, headers=op).status_code == 200
    refused = client.post(f"{API}/shipments/{sid}/cancel", json={"reason": "x"}, headers=op)
    assert refused.status_code == 409
    assert (
        refused.json()["detail"] == "cannot cancel a shipment that is in_transit: only from planned"
    )


def test_references_items_and_scanned_units(
    client: TestClient, people: dict[str, Person], product: str
) -> None:
    op = people["operator"].headers
    sid = client.post(f"{API}/shipments", json=booking(product), headers=op).json()["shipment_id"]
    url = f"{API}/shipments/{sid}"
    refs = client.post(f"{url}/references", json={"kind": "customer", "value": "C-9"}, headers=op)
    assert refs.status_code == 200 and {"kind": "customer", "value": "C-9"} in refs.json()
    gone = client.delete(f"{url}/references/purchase_order/PO-4711", headers=op)
    assert gone.json() == [{"kind": "customer", "value": "C-9"}]
    items = client.post(f"{url}/items", json={"gtin": product, "lot": "L-2", "quantity": 7},
                        headers=op)  # fmt: skip
    assert [(i["lot"], i["quantity"]) for i in items.json()] == [("L-1", 120), ("L-2", 7)]
    body = "950600001343"
    sscc = "0" + body + "1234"
    sscc += str(check_digit(sscc))
    unit = client.post(f"{url}/units", json={"scan": f"(00){sscc}"}, headers=op)
    assert unit.status_code == 200, unit.text
    assert unit.json()["epc"].startswith("urn:epc:id:sscc:")
    bad = client.post(f"{url}/units", json={"scan": "(00)123"}, headers=op)
    assert bad.status_code == 422 and bad.json()["detail"].startswith("scan: ")
    # A unit is on board one shipment at a time.
    other = client.post(f"{API}/shipments", json=booking(product, "SHP-9", references=[]),
                        headers=op).json()["shipment_id"]  # fmt: skip
    taken = client.post(f"{API}/shipments/{other}/units", json={"scan": f"(00){sscc}"}, headers=op)
    assert taken.status_code == 409 and "SHP-100" in taken.json()["detail"]


def test_a_retired_product_or_logger_cannot_be_used_for_a_new_shipment(
    client: TestClient, people: dict[str, Person], product: str, db_dsn: str
) -> None:
    with psycopg.connect(db_dsn) as conn:
        add_device(conn, "LOG-OLD")
        conn.execute("UPDATE devices SET retired_at = now() WHERE device_id = 'LOG-OLD'")
        conn.execute("UPDATE products SET retired_at = now() WHERE gtin = %s", (product,))
    op = people["operator"].headers
    r = client.post(f"{API}/shipments", json=booking(product), headers=op)
    assert r.status_code == 422 and r.json()["detail"].startswith("product_gtin: ")
    assert "retired" in r.json()["detail"]
    plain = {"reference": "SHP-3", "origin": "Basel", "destination": "Oslo"}
    sid = client.post(f"{API}/shipments", json=plain, headers=op).json()["shipment_id"]
    r = client.post(f"{API}/shipments/{sid}/loggers", json={"device_id": "LOG-OLD"}, headers=op)
    assert r.status_code == 422 and "LOG-OLD is retired" in r.json()["detail"]


def test_planned_legs_are_booked_replaced_with_if_match_and_bad_ones_named(
    client: TestClient, people: dict[str, Person], product: str
) -> None:
    op = people["operator"].headers
    t0 = (datetime.now(UTC) + timedelta(days=1)).replace(microsecond=0)
    route = [
        {"mode": "road", "origin": "Basel", "destination": "BSL airport", "carrier": "Frigo",
         "planned_departure": t0.isoformat(), "planned_arrival": (t0 + timedelta(hours=2)).isoformat()},
        {"mode": "air", "origin": "BSL airport", "destination": "Milan",
         "planned_departure": (t0 + timedelta(hours=4)).isoformat()},
    ]  # fmt: skip
    made = client.post(f"{API}/shipments", json=booking(product, legs=route), headers=op)
    assert made.status_code == 201, made.text
    legs = made.json()["legs"]
    assert [(leg["seq"], leg["mode"], leg["destination"]) for leg in legs] == [
        (i, r["mode"], r["destination"]) for i, r in enumerate(route, start=1)
    ]
    assert datetime.fromisoformat(legs[0]["planned_arrival"]) == t0 + timedelta(hours=2)
    assert legs[1]["carrier"] is None and legs[1]["planned_arrival"] is None

    url = f"{API}/shipments/{made.json()['shipment_id']}"
    etag = client.get(f"{url}/booking", headers=op).headers["ETag"]
    assert client.patch(url, json={"legs": route[:1]}, headers=op).status_code == 428
    ok = client.patch(url, json={"legs": route[:1]}, headers={**op, "If-Match": etag})
    assert ok.status_code == 200, ok.text
    assert [leg["mode"] for leg in ok.json()["legs"]] == ["road"]
    kept = client.patch(
        url, json={"carrier": "Other"}, headers={**op, "If-Match": ok.headers["ETag"]}
    )
    assert kept.status_code == 200 and kept.json()["legs"] == ok.json()["legs"]

    backwards = [route[1], route[0]]
    r = client.patch(
        url, json={"legs": backwards}, headers={**op, "If-Match": kept.headers["ETag"]}
    )
    assert r.status_code == 422 and r.json()["detail"].startswith("legs[1].planned_departure: ")
    assert client.get(f"{url}/booking", headers=op).json()["legs"] == ok.json()["legs"]
    boat = booking(product, "SHP-B", references=[], legs=[{**route[0], "mode": "boat"}])
    r = client.post(f"{API}/shipments", json=boat, headers=op)
    assert r.status_code == 422 and "legs" in str(r.json()["detail"]) and "mode" in r.text
