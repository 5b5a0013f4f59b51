"""A dock scan over HTTP (POST /api/v1/shipments/arrivals) on the real database: the unit on
board scanned at the destination's GLN arrives its shipment; the wrong site, a planned shipment,
an unknown unit and bad fields are refused, each with its status and the field named."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from psycopg.rows import dict_row

from api.app import create_app
from coldchain.gs1 import check_digit
from coldchain.settings import Settings
from services import locations
from services.caller import Caller
from tests.fixtures.auth import Person
from tests.fixtures.web import add_product

pytestmark = pytest.mark.integration

API = "/api/v1"
ADMIN = Caller("ada.admin", "admin", "test", "Ada Admin")


def gs1(body: str) -> str:
    return body + str(check_digit(body))


SSCC = gs1("03761234500000001")  # 18 digits with its check digit
ORIGIN_GLN, DESTINATION_GLN = gs1("761000000001"), gs1("800000000001")


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as c:
        yield c


@pytest.fixture
def lane_and_product(db_dsn: str) -> dict[str, Any]:
    with psycopg.connect(db_dsn, autocommit=True, row_factory=dict_row) as conn:
        for gln, name, lat in (
            (ORIGIN_GLN, "Basel depot", 47.56),
            (DESTINATION_GLN, "Milan", 45.46),
        ):
            locations.create_record(
                conn, ADMIN, "locations",
                record=locations.LocationIn(gln=gln, name=name, lat=lat, lon=8.0, geofence_m=500),
            )  # fmt: skip
        lane, _ = locations.create_record(
            conn, ADMIN, "lanes",
            record=locations.LaneIn(code="BSL-MIL", origin_location_id=ORIGIN_GLN,
                                    destination_location_id=DESTINATION_GLN, mode="road"),
        )  # fmt: skip
        return {"lane_id": lane["lane_id"], "gtin": add_product(conn)}


def test_a_dock_scan_at_the_destination_arrives_the_shipment(
    client: TestClient, people: dict[str, Person], lane_and_product: dict[str, Any]
) -> None:
    op = people["operator"].headers
    made = client.post(
        f"{API}/shipments",
        json={"reference": "DOCK-1", "lane_id": lane_and_product["lane_id"],
              "product_gtin": lane_and_product["gtin"]},
        headers=op,
    )  # fmt: skip
    assert made.status_code == 201, made.text
    sid = made.json()["shipment_id"]
    unit = client.post(f"{API}/shipments/{sid}/units", json={"scan": f"(00){SSCC}"}, headers=op)
    assert unit.status_code in (200, 201), unit.text
    scan = {"scan": f"(00){SSCC}", "gln": DESTINATION_GLN}

    # Who may, and bad fields named.
    assert client.post(f"{API}/shipments/arrivals", json=scan,
                       headers=people["viewer"].headers).status_code == 403  # fmt: skip
    bad_gln = client.post(f"{API}/shipments/arrivals", json={**scan, "gln": DESTINATION_GLN[:-1]
                          + str((int(DESTINATION_GLN[-1]) + 1) % 10)}, headers=op)  # fmt: skip
    assert bad_gln.status_code == 422 and "gln" in bad_gln.text
    bad_scan = client.post(f"{API}/shipments/arrivals", json={**scan, "scan": "(00)123"},
                           headers=op)  # fmt: skip
    assert bad_scan.status_code == 422 and "scan" in bad_scan.text
    unknown = client.post(f"{API}/shipments/arrivals",
                          json={**scan, "scan": f"(00){gs1('03761234500000002')}"}, headers=op)  # fmt: skip
    assert unknown.status_code == 404

    # Planned: it must start first.
    planned = client.post(f"{API}/shipments/arrivals", json=scan, headers=op)
    assert planned.status_code == 409 and "planned" in planned.json()["detail"]
    assert client.post(f"{API}/shipments/{sid}/start", json={}, headers=op).status_code == 200

    # Scanned at the origin's dock: not where it is bound.
    wrong = client.post(f"{API}/shipments/arrivals", json={**scan, "gln": ORIGIN_GLN}, headers=op)
    assert wrong.status_code == 409 and f"bound for GLN {DESTINATION_GLN}" in wrong.json()["detail"]

    arrived = client.post(f"{API}/shipments/arrivals", json=scan, headers=op)
    assert arrived.status_code == 200, arrived.text
    body = arrived.json()
    assert (body["shipment_id"], body["arrived"], body["status"]) == (sid, True, "under_review")
    assert [v["gtin"] for v in body["verdicts"]] == [lane_and_product["gtin"]]
    timeline = client.get(f"{API}/shipments/{sid}/timeline", headers=op).json()
    (entry,) = (e for e in timeline if e["event"] == "arrive")
    assert entry["reason"].startswith("dock scan of urn:epc:id:sscc:")
    assert entry["reason"].endswith(f" at GLN {DESTINATION_GLN}")
    assert entry["actor"] == people["operator"].username
    assert entry["data"]["rule"] == "dock_scan"

    # The next pallet of the same delivery: nothing changes.
    again = client.post(f"{API}/shipments/arrivals", json=scan, headers=op)
    assert again.status_code == 200 and again.json()["arrived"] is False
    assert len(client.get(f"{API}/shipments/{sid}/timeline", headers=op).json()) == len(timeline)
