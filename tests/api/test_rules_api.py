"""Rules stored per product and per shipment through the API, against a real TimescaleDB: each
change a new version with who and why in the audit trail, a bad definition refused whole, and
the rules engine judging with what was stored."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from psycopg_pool import AsyncConnectionPool

from api.app import create_app
from coldchain.settings import Settings
from tests.alerts.test_rules_service import (  # noqa: F401  # pool: a fixture, registered here
    T0,
    engine,
    pool,
    profile,
    readings,
    rows,
    write,
)
from tests.fixtures.auth import Person
from tests.fixtures.data import VACCINE_GTIN, seed_shipment
from tests.fixtures.web import add_product, add_shipment

pytestmark = pytest.mark.integration

WHY = "CAPA-2026-014: shorter alarm delay for this lane"
JSON = {"Content-Type": "application/json"}


@pytest.fixture
def client(settings: Settings, people: dict[str, Person]) -> Iterator[TestClient]:
    """The app, acting as the administrator."""
    with TestClient(create_app(settings)) as c:
        c.headers.update(people["admin"].headers)
        yield c


@pytest.fixture
def scopes(db_dsn: str) -> dict[str, Any]:
    """A 2–8 °C product and a shipment of it."""
    with psycopg.connect(db_dsn) as conn:
        gtin = add_product(conn)
        shipment = add_shipment(conn, "SHP-RULES", product=gtin)
    return {"gtin": gtin, "shipment": shipment}


def _stored(dsn: str) -> list[tuple[Any, ...]]:
    return rows(
        dsn,
        "SELECT product_gtin, shipment_id, version, definition, created_by, comment"
        " FROM rule_definitions ORDER BY id",
    )


def _audit(dsn: str) -> list[tuple[Any, ...]]:
    return rows(
        dsn,
        "SELECT action, actor, actor_role, reason, (after->>'version')::int, after->'definition'"
        " FROM audit_log WHERE entity = 'rule_definitions' ORDER BY seq",
    )


def test_a_product_rules_change_is_a_new_audited_version(
    client: TestClient, db_dsn: str, scopes: dict[str, Any]
) -> None:
    url = f"/api/v1/products/{scopes['gtin']}/rules"
    before = client.get(url).json()
    assert before["current"] is None and before["scope"] == "product"
    assert before["effective"]["temperature"]["high_c"] == 8.0  # from the product row
    assert before["effective"]["temperature"]["alarm_delay_min"] == 0.0

    r = client.put(url, params={"reason": WHY}, json={"temperature": {"alarm_delay_min": 5}})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["current"]["version"] == 1
    assert body["current"]["definition"] == {"temperature": {"alarm_delay_min": 5.0}}
    assert (body["current"]["created_by"], body["current"]["reason"]) == ("adam.admin", WHY)
    assert body["effective"]["temperature"]["alarm_delay_min"] == 5.0
    assert body["effective"]["temperature"]["high_c"] == 8.0  # the other fields stay
    assert body["effective"]["sources"][-1] == f"stored product rules {scopes['gtin']} v1"
    assert client.get(url).json() == body

    r = client.put(url, params={"reason": "back to 15 min"}, json={"temperature": {}})
    assert r.status_code == 200 and r.json()["current"]["version"] == 2
    assert r.json()["effective"]["temperature"]["alarm_delay_min"] == 0.0

    versions = client.get(f"{url}/versions").json()
    assert [(v["version"], v["reason"]) for v in versions] == [(1, WHY), (2, "back to 15 min")]
    # Versions are added, never edited; each one an audit entry with who and why.
    assert _stored(db_dsn) == [
        (scopes["gtin"], None, 1, {"temperature": {"alarm_delay_min": 5.0}}, "adam.admin", WHY),
        (scopes["gtin"], None, 2, {"temperature": {}}, "adam.admin", "back to 15 min"),
    ]
    assert _audit(db_dsn) == [
        ("insert", "adam.admin", "admin", WHY, 1, {"temperature": {"alarm_delay_min": 5.0}}),
        ("insert", "adam.admin", "admin", "back to 15 min", 2, {"temperature": {}}),
    ]
    assert client.get("/api/v1/audit/verify").json()["ok"] is True


def test_shipment_rules_layer_on_the_product_rules(
    client: TestClient, db_dsn: str, scopes: dict[str, Any]
) -> None:
    gtin, shipment = scopes["gtin"], scopes["shipment"]
    client.put(
        f"/api/v1/products/{gtin}/rules",
        params={"reason": "MKT for the product"},
        json={"mkt": {"limit_c": 8.0, "window_h": 24}},
    ).raise_for_status()
    r = client.put(
        "/api/v1/shipments/SHP-RULES/rules",  # by reference…
        params={"reason": WHY},
        json={"temperature": {"alarm_delay_min": 5}, "humidity": {"max_rh": 80}},
    )
    assert r.status_code == 200, r.text
    got = client.get(f"/api/v1/shipments/{shipment}/rules").json()  # …and by id
    assert got == r.json()
    assert (got["scope"], got["gtin"], got["shipment_id"], got["shipment_reference"]) == (
        "shipment",
        gtin,
        shipment,
        "SHP-RULES",
    )
    assert got["current"]["version"] == 1 and got["current"]["created_by"] == "adam.admin"
    effective = got["effective"]
    assert effective["temperature"]["alarm_delay_min"] == 5.0
    assert effective["mkt"]["limit_c"] == 8.0 and effective["humidity"]["max_rh"] == 80.0
    assert effective["sources"][-2:] == [
        f"stored product rules {gtin} v1",
        "stored shipment rules SHP-RULES v1",
    ]
    versions = client.get("/api/v1/shipments/SHP-RULES/rules/versions").json()
    assert [(v["version"], v["reason"]) for v in versions] == [(1, WHY)]
    assert _audit(db_dsn)[-1][:4] == ("insert", "adam.admin", "admin", WHY)


@pytest.mark.parametrize(
    ("definition", "says"),
    [
        ({"temperatur": {}}, "request body: temperatur: unknown field 'temperatur'; did you mean"),
        (
            {"temperature": {"alarm_delay_mn": 5}},
            "temperature.alarm_delay_mn: unknown field 'alarm_delay_mn'; did you mean "
            "'alarm_delay_min'?",
        ),
        ({"temperature": {"alarm_delay_min": -5}}, "temperature.alarm_delay_min: "),
        ({"budget": {"hours": "many"}}, "budget.hours: "),
        # valid alone, but above the product's 8 °C it makes a range that cannot be
        ({"temperature": {"low_c": 9}}, "temperature: low_c (9.0) must be below high_c (8.0)"),
    ],
)
def test_a_bad_definition_is_refused_naming_the_field_and_stores_nothing(
    client: TestClient, db_dsn: str, scopes: dict[str, Any], definition: Any, says: str
) -> None:
    for url in (
        f"/api/v1/products/{scopes['gtin']}/rules",
        f"/api/v1/shipments/{scopes['shipment']}/rules",
    ):
        r = client.put(url, params={"reason": WHY}, json=definition)
        assert r.status_code == 422, r.text
        assert r.json()["detail"].startswith("invalid rules request body")
        assert says in r.json()["detail"]
    assert _stored(db_dsn) == [] and _audit(db_dsn) == []


def test_a_reason_is_required_and_unknown_scopes_are_404(
    client: TestClient, db_dsn: str, scopes: dict[str, Any]
) -> None:
    url = f"/api/v1/products/{scopes['gtin']}/rules"
    ok = {"temperature": {"alarm_delay_min": 5}}
    assert client.put(url, json=ok).status_code == 422
    r = client.put(url, params={"reason": "   "}, json=ok)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["query", "reason"]
    assert client.put(url, params={"reason": WHY}, json=[ok]).status_code == 422
    # JSON that Python reads as infinity: refused by the models, naming the field
    infinite = '{"temperature": {"high_c": 1e400}}'
    r = client.put(url, params={"reason": WHY}, content=infinite, headers=JSON)
    assert r.status_code == 422, r.text
    assert "request body: temperature.high_c: Input should be a finite number" in r.text
    assert _stored(db_dsn) == [] and _audit(db_dsn) == []

    missing = "/api/v1/products/99999999999999/rules"
    for method, path in (
        ("GET", missing),
        ("GET", f"{missing}/versions"),
        ("PUT", missing),
        ("GET", "/api/v1/shipments/SHP-NOPE/rules"),
        ("GET", "/api/v1/shipments/SHP-NOPE/rules/versions"),
        ("PUT", "/api/v1/shipments/SHP-NOPE/rules"),
    ):
        r = client.request(method, path, params={"reason": WHY}, json=ok)
        assert r.status_code == 404, f"{method} {path}: {r.status_code}"
        assert "not found" in r.json()["detail"]


def test_only_admins_change_rules(
    client: TestClient, db_dsn: str, scopes: dict[str, Any], people: dict[str, Person]
) -> None:
    for role in ("viewer", "operator", "qa"):
        headers = people[role].headers
        for url in (
            f"/api/v1/products/{scopes['gtin']}/rules",
            f"/api/v1/shipments/{scopes['shipment']}/rules",
        ):
            r = client.put(url, params={"reason": WHY}, json={"temperature": {}}, headers=headers)
            assert r.status_code == 403, f"{role} {url}: {r.status_code}"
            assert "'admin' permission" in r.json()["detail"]
            assert client.get(url, headers=headers).status_code == 200  # everyone reads
    assert _stored(db_dsn) == [] and _audit(db_dsn) == []


async def test_the_engine_judges_with_the_rules_put_through_the_api(
    pool: AsyncConnectionPool,  # noqa: F811  # the fixture imported above
    settings: Settings,
    db_dsn: str,
    people: dict[str, Person],
) -> None:
    shp = seed_shipment(db_dsn, start=T0 - timedelta(hours=1))  # 15 min alarm delay
    await write(pool, readings("LOG-1", profile(60, range(20, 30))))  # 10 min at 12 °C
    rules = engine(pool, settings, T0 + timedelta(hours=1))
    await rules.setup()
    await rules.process_changes()
    assert rows(db_dsn, "SELECT 1 FROM alerts") == []  # 10 min < 15 min: no alarm

    with TestClient(create_app(settings)) as client:
        r = client.put(
            f"/api/v1/shipments/{shp.reference}/rules",
            params={"reason": WHY},
            json={"temperature": {"alarm_delay_min": 5}},
            headers=people["admin"].headers,
        )
        assert r.status_code == 200, r.text
    # Re-judged (as when the next reading arrives): the excursion now alarms after 5 min.
    await write(pool, readings("LOG-1", profile(61, range(20, 30)))[60:])
    await rules.process_changes()
    alert = rows(db_dsn, "SELECT triggered_at, thresholds FROM alerts")
    assert alert[0][0] == T0 + timedelta(minutes=25)
    assert alert[0][1]["alarm_delay_min"] == 5
    assert alert[0][1]["sources"][-1] == f"stored shipment rules {shp.reference} v1"
    assert r.json()["gtin"] == VACCINE_GTIN
