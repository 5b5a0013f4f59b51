"""Master data through the HTTP API against a real TimescaleDB (issue 13): a product with a
two-band stability profile, lost updates refused by If-Match, idempotent creation, roles,
versioned profiles, and sites, carriers and lanes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from coldchain.gs1 import check_digit
from coldchain.settings import Settings
from coldchain.thermal.profile_doc import profile_from_doc
from tests.fixtures.auth import Person

pytestmark = pytest.mark.integration


def _gtin(body: str) -> str:
    return body + str(check_digit(body))


GTIN = _gtin("0950600013441")
TWO_BANDS: dict[str, Any] = {
    "gtin": GTIN,
    "name": "Insulin glargine 10 x 3 ml",
    "temp_min_c": 2.0,
    "temp_max_c": 8.0,
    "freeze_limit_c": 0.0,
    "alarm_delay_s": 600,
    "mkt_limit_c": 8.0,
    "mkt_window_days": 30,
    "stability": {
        "allowances": [
            {"low_c": 8.0, "high_c": 25.0, "budget_s": 72 * 3600},
            {"low_c": 0.0, "high_c": 2.0, "budget_s": 12 * 3600},
        ],
        "max_freeze_thaw_cycles": 1,
    },
}


@pytest.fixture
def app(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as c:
        yield c


def _as(person: Person) -> dict[str, str]:
    return person.headers


def _audit(dsn: str, entity: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(
            "SELECT action, actor, reason, after->>'version' FROM audit_log"
            " WHERE entity = %s ORDER BY seq",
            (entity,),
        ).fetchall()


def test_a_product_with_a_two_band_profile_is_stored_versioned_and_audited(
    app: TestClient, people: dict[str, Person], db_dsn: str
) -> None:
    qa = _as(people["qa"])
    r = app.post("/api/v1/products", json=TWO_BANDS, headers=qa, params={"reason": "new SKU"})
    assert r.status_code == 201, r.text
    product = r.json()
    assert r.headers["ETag"] == '"1"' and product["version"] == 1
    assert product["profile_version"] == 1 and product["retired_at"] is None
    assert product["stability"]["allowances"] == TWO_BANDS["stability"]["allowances"]

    profiles = app.get(f"/api/v1/products/{GTIN}/profiles", headers=qa).json()
    assert [p["version"] for p in profiles] == [1]
    assert profiles[0]["created_by"] == people["qa"].username
    stored = profile_from_doc(profiles[0]["profile"])  # the stored document is a profile
    assert (stored.storage_low_c, stored.storage_high_c) == (2.0, 8.0)
    assert [(a.key, a.budget.total_seconds()) for a in stored.allowances] == [
        ("8..25", 72 * 3600),
        ("0..2", 12 * 3600),
    ]
    assert stored.max_freeze_thaw_cycles == 1 and stored.mkt_limit_c == 8.0

    # A wider 8–25 °C budget: a new profile version, the first one kept as it was.
    bands = [dict(TWO_BANDS["stability"]["allowances"][0], budget_s=96 * 3600)]
    r = app.patch(
        f"/api/v1/products/{GTIN}",
        json={"stability": {"allowances": bands, "max_freeze_thaw_cycles": 1}},
        headers={**qa, "If-Match": r.headers["ETag"]},
        params={"reason": "stability study SR-88"},
    )
    assert r.status_code == 200, r.text
    assert r.headers["ETag"] == '"2"' and r.json()["profile_version"] == 2
    profiles = app.get(f"/api/v1/products/{GTIN}/profiles", headers=qa).json()
    assert [(p["version"], p["reason"]) for p in profiles] == [
        (2, "stability study SR-88"),
        (1, "new SKU"),
    ]
    assert len(profiles[1]["profile"]["allowances"]) == 2  # version 1 unchanged
    assert _audit(db_dsn, "products") == [
        ("insert", people["qa"].username, "new SKU", "1"),
        ("update", people["qa"].username, "stability study SR-88", "2"),
    ]
    assert [a[0] for a in _audit(db_dsn, "product_profiles")] == ["insert", "insert"]


def test_a_stale_if_match_is_412_and_a_missing_one_428(
    app: TestClient, people: dict[str, Person], db_dsn: str
) -> None:
    admin = _as(people["admin"])
    assert app.post("/api/v1/products", json=TWO_BANDS, headers=admin).status_code == 201
    url, why = f"/api/v1/products/{GTIN}", {"reason": "relabel"}
    first = app.patch(url, json={"name": "A"}, headers={**admin, "If-Match": '"1"'}, params=why)
    assert first.status_code == 200 and first.headers["ETag"] == '"2"'
    stale = app.patch(url, json={"name": "B"}, headers={**admin, "If-Match": '"1"'}, params=why)
    assert stale.status_code == 412, stale.text
    assert "version 2, not 1" in stale.json()["detail"]
    missing = app.patch(url, json={"name": "B"}, headers=admin, params=why)
    assert missing.status_code == 428
    assert app.get(url, headers=admin).json()["name"] == "A"  # neither changed anything


def test_a_retried_create_returns_the_same_product_and_a_different_one_is_409(
    app: TestClient, people: dict[str, Person], db_dsn: str
) -> None:
    admin = _as(people["admin"])
    first = app.post("/api/v1/products", json=TWO_BANDS, headers=admin)
    again = app.post("/api/v1/products", json=TWO_BANDS, headers=admin)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()
    other = app.post("/api/v1/products", json={**TWO_BANDS, "name": "Other"}, headers=admin)
    assert other.status_code == 409 and GTIN in other.json()["detail"]
    with psycopg.connect(db_dsn) as conn:
        row = conn.execute("SELECT count(*) FROM product_profiles").fetchone()
    assert row == (1,)


@pytest.mark.parametrize(
    ("role", "status"), [("viewer", 403), ("operator", 403), ("qa", 201), ("admin", 201)]
)
def test_who_may_register_a_product(
    app: TestClient, people: dict[str, Person], role: str, status: int
) -> None:
    r = app.post("/api/v1/products", json=TWO_BANDS, headers=_as(people[role]))
    assert r.status_code == status, r.text
    if status == 403:
        assert "products.manage" in r.json()["detail"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"temp_min_c": 9.0}, "temp_max_c"),
        (
            {
                "stability": {
                    "allowances": [
                        {"low_c": 8, "high_c": 25, "budget_s": 3600},
                        {"low_c": 20, "high_c": 30, "budget_s": 3600},
                    ]
                }
            },
            "stability.allowances[1]",
        ),
        ({"stability": {"allowances": [{"low_c": 8, "high_c": 25}]}}, "budget_s"),
        ({"gtin": "09506000134353"}, "gtin"),
    ],
)
def test_a_bad_product_is_refused_naming_the_field(
    app: TestClient, people: dict[str, Person], change: dict[str, Any], field: str
) -> None:
    r = app.post("/api/v1/products", json={**TWO_BANDS, **change}, headers=_as(people["admin"]))
    assert r.status_code == 422, r.text
    assert field in str(r.json()["detail"])


def test_a_retired_product_cannot_change(app: TestClient, people: dict[str, Person]) -> None:
    admin = _as(people["admin"])
    app.post("/api/v1/products", json=TWO_BANDS, headers=admin)
    url = f"/api/v1/products/{GTIN}"
    r = app.post(f"{url}/retire", headers={**admin, "If-Match": '"1"'}, params={"reason": "EOL"})
    assert r.status_code == 200 and r.json()["retired_at"] is not None
    again = app.patch(
        url, json={"name": "x"}, headers={**admin, "If-Match": '"2"'}, params={"reason": "x"}
    )
    assert again.status_code == 409 and "retired" in again.json()["detail"]
    live = app.get("/api/v1/products", headers=admin, params={"include_retired": False}).json()
    assert GTIN not in [p["gtin"] for p in live]


def _gln(body: str) -> str:
    return body + str(check_digit(body))


def test_sites_carriers_and_lanes(app: TestClient, people: dict[str, Person], db_dsn: str) -> None:
    admin = _as(people["admin"])
    origin = {"gln": _gln("409876500001"), "name": "DC Basel", "lat": 47.56, "lon": 7.59,
              "geofence_m": 250, "address": "Hafenstrasse 1, Basel"}  # fmt: skip
    dest = {"gln": _gln("409876500002"), "name": "Hospital Bern", "lat": 46.95, "lon": 7.44,
            "geofence_m": 150}  # fmt: skip
    for site in (origin, dest):
        r = app.post("/api/v1/locations", json=site, headers=admin)
        assert r.status_code == 201, r.text
        assert r.json()["location_id"] == site["gln"]
    assert app.post("/api/v1/locations", json=origin, headers=admin).status_code == 200
    bad = app.post("/api/v1/locations", json={**dest, "gln": "4098765000021"}, headers=admin)
    assert bad.status_code == 422 and "gln" in str(bad.json()["detail"])
    assert (
        app.post("/api/v1/locations", json={**dest, "geofence_m": 0}, headers=admin).status_code
        == 422
    )
    carrier = app.post("/api/v1/carriers", json={"name": "Alpen Kühltransport", "code": "AKT"},
                       headers=admin)  # fmt: skip
    assert carrier.status_code == 201, carrier.text
    lane = {"code": "BSL-BRN", "origin_location_id": origin["gln"],
            "destination_location_id": dest["gln"], "mode": "road"}  # fmt: skip
    r = app.post("/api/v1/lanes", json=lane, headers=admin)
    assert r.status_code == 201, r.text
    lane_id = r.json()["lane_id"]
    nowhere = app.post("/api/v1/lanes", json={**lane, "code": "X", "destination_location_id": "NOPE"},
                       headers=admin)  # fmt: skip
    assert nowhere.status_code == 422 and "destination_location_id" in nowhere.json()["detail"]
    # A site a live lane uses cannot be retired before the lane.
    used = app.post(f"/api/v1/locations/{origin['gln']}/retire", params={"reason": "closed"},
                    headers={**admin, "If-Match": '"1"'})  # fmt: skip
    assert used.status_code == 409 and "BSL-BRN" in used.json()["detail"]
    r = app.patch(f"/api/v1/lanes/{lane_id}", json={"mode": "air"}, params={"reason": "by air"},
                  headers={**admin, "If-Match": '"1"'})  # fmt: skip
    assert r.status_code == 200 and r.json()["mode"] == "air" and r.headers["ETag"] == '"2"'
    assert app.post("/api/v1/lanes", json=lane, headers=_as(people["operator"])).status_code == 403
    assert [a[0] for a in _audit(db_dsn, "lanes")] == ["insert", "update"]


def test_a_sites_time_zone_through_the_api(app: TestClient, people: dict[str, Person]) -> None:
    admin = _as(people["admin"])
    site = {"gln": _gln("409876500001"), "name": "DC Basel", "lat": 47.56, "lon": 7.59,
            "geofence_m": 250}  # fmt: skip
    bad = app.post("/api/v1/locations", json={**site, "time_zone": "Europe/Nowhere"}, headers=admin)
    assert bad.status_code == 422
    assert "time_zone" in str(bad.json()["detail"]) and "Europe/Nowhere" in str(bad.json())
    r = app.post("/api/v1/locations", json=site, headers=admin)
    assert r.status_code == 201 and r.json()["time_zone"] == "UTC", r.text
    r = app.patch(f"/api/v1/locations/{site['gln']}", json={"time_zone": "Europe/Zurich"},
                  params={"reason": "the site is in Basel"},
                  headers={**admin, "If-Match": '"1"'})  # fmt: skip
    assert r.status_code == 200 and r.json()["time_zone"] == "Europe/Zurich", r.text
    assert app.get(f"/api/v1/locations/{site['gln']}", headers=admin).json()["time_zone"] == (
        "Europe/Zurich"
    )
