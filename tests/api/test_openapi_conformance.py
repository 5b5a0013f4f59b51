"""The API answers what its OpenAPI document says (issue 11, point 16), against the live app.

Schemathesis, as an admin, checks every operation's status codes and response bodies against
the document; then the findings of the attack run, one by one: methods a path does not take are
a 405 (not the dashboard's redirect), the 422s carry the documented schema, the lot filter
documents what it accepts, and the EPCIS export without parameters is a documented 400.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from api.app import create_app
from coldchain.gs1 import CSET82
from coldchain.settings import Settings
from coldchain.telemetry import Reading
from tests.fixtures.auth import Person
from tests.fixtures.web import LiveServer, add_device, add_product, add_shipment, assign, ingest

pytestmark = pytest.mark.integration

EXAMPLES = 5
BUDGET_S = 120.0
SKIP = {("POST", "/api/v1/auth/logout")}  # it would revoke the token the run uses


@pytest.fixture
def shipment(db_dsn: str) -> int:
    now = datetime.now(UTC).replace(microsecond=0)
    with psycopg.connect(db_dsn) as conn:
        gtin = add_product(conn)
        add_device(conn, "LOG-1")
        shipment_id = add_shipment(conn, "SHP-1", product=gtin)
        assign(conn, "LOG-1", shipment_id, now - timedelta(hours=2))
    ingest(db_dsn, [Reading("LOG-1", now - timedelta(minutes=m), 5.0) for m in range(1, 30)])
    return shipment_id


@pytest.fixture
def client(settings: Settings, people: dict[str, Person]) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as c:
        c.headers.update(people["admin"].headers)
        yield c


def test_responses_match_the_documented_status_codes_and_schemas(
    web_server: LiveServer, people: dict[str, Person], shipment: int
) -> None:
    schema = schemathesis.openapi.from_url(f"{web_server.url}/api/openapi.json")
    operations = [r.ok() for r in schema.get_all_operations()]  # type: ignore[union-attr]
    assert len(operations) > 30
    problems: list[str] = []
    calls = 0
    started = time.monotonic()
    headers = people["admin"].headers
    for op in operations:
        if (op.method.upper(), op.path) in SKIP or (op.method.upper(), op.full_path) in SKIP:
            continue

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
        )
        @given(case=op.as_strategy())
        def run(case: Any) -> None:
            nonlocal calls
            calls += 1
            try:
                case.call_and_validate(
                    base_url=web_server.url,
                    headers=headers,
                    timeout=30,
                    checks=[
                        not_a_server_error,
                        status_code_conformance,
                        response_schema_conformance,
                    ],
                )
            except Exception as exc:  # a finding: kept, the run goes on
                problems.append(f"{case.method} {case.formatted_path}: {str(exc)[:300]}")

        run()
        assert time.monotonic() - started < BUDGET_S, "the conformance run took too long"
    assert problems == []
    assert calls > 100


@pytest.mark.parametrize("method", ["TRACE", "OPTIONS", "HEAD", "PUT", "DELETE", "QUERY"])
def test_a_method_a_path_does_not_take_is_a_405_not_the_dashboard(
    client: TestClient, method: str, shipment: int
) -> None:
    allowed = {
        "/api/v1/shipments": "GET, POST",  # POST books a shipment
        "/api/v1/shipments/SHP-1": "GET, PATCH",  # PATCH changes its booking
        "/healthz": "GET",
        "/metrics": "GET",
    }
    for path, allow in allowed.items():
        r = client.request(method, path, follow_redirects=False)
        assert r.status_code == 405, (path, r.status_code, r.text[:100])
        assert r.headers["Allow"] == allow
        if method != "HEAD":
            assert r.json()["detail"].startswith(f"{method} is not allowed on {path}")
    r = client.request(method, "/api/v1/alerts/1/acknowledge", follow_redirects=False)
    assert r.status_code == 405 and r.headers["Allow"] == "POST"
    r = client.request(method, "/api/v1/no-such-thing", follow_redirects=False)
    assert r.status_code == 404 and r.headers["content-type"] == "application/json"


def test_the_dashboard_still_serves_its_own_paths(client: TestClient) -> None:
    r = client.get("/", follow_redirects=False)  # no session: the dashboard's login redirect
    assert r.status_code == 303 and "/login" in r.headers["location"]
    assert "<html" in client.get(r.headers["location"]).text.lower()
    assert client.head("/api/docs").status_code == 200  # the docs take HEAD


def test_every_api_operation_documents_its_errors_and_one_422_schema(client: TestClient) -> None:
    document = client.get("/api/openapi.json").json()
    unprocessable = document["components"]["schemas"]["Unprocessable"]
    assert {s.get("type") for s in unprocessable["properties"]["detail"]["anyOf"]} == {
        "array",
        "string",
        "object",
    }
    for path, operations in document["paths"].items():
        if not path.startswith("/api/v1/"):
            continue
        for method, operation in operations.items():
            responses = operation["responses"]
            assert "503" in responses, (method, path)
            # Login, me, logout: only 401 (and 429); a one-time link and the SMS gateway's
            # webhook carry their own proof (403 when refused).
            if not path.startswith(("/api/v1/auth/", "/api/v1/ack/", "/api/v1/sms/")):
                assert {"401", "403", "404"} <= set(responses), (method, path)
            if (
                "requestBody" in operation
                and "application/json" in operation["requestBody"]["content"]
            ):
                assert {"400", "413"} <= set(responses), (method, path)
            if "422" in responses:
                schema = responses["422"]["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/Unprocessable"}, (method, path)


def test_a_422_from_a_handler_and_one_from_validation_share_the_schema(
    client: TestClient, shipment: int
) -> None:
    from_handler = client.post("/api/v1/alerts/1/acknowledge", json={"comment": "a\u0000b"})
    from_validation = client.get("/api/v1/shipments", params={"limit": 0})
    assert from_handler.status_code == from_validation.status_code == 422
    assert isinstance(from_handler.json()["detail"], str)
    assert isinstance(from_validation.json()["detail"], list)


def test_the_lot_filter_documents_what_it_accepts(client: TestClient) -> None:
    document = client.get("/api/openapi.json").json()
    (lot,) = [
        p for p in document["paths"]["/api/v1/recalls"]["get"]["parameters"] if p["name"] == "lot"
    ]
    pattern = next(s["pattern"] for s in lot["schema"]["anyOf"] if "pattern" in s)
    assert all(re.fullmatch(pattern, c) for c in CSET82)
    assert not re.fullmatch(pattern, "") and not re.fullmatch(pattern, "A" * 21)
    assert not re.fullmatch(pattern, "é") and not re.fullmatch(pattern, "A B")
    assert client.get("/api/v1/recalls", params={"lot": "L-2026/07"}).status_code == 200
    assert client.get("/api/v1/recalls", params={"lot": ""}).status_code == 422  # documented
    r = client.get("/api/v1/units/lot-excursions", params={"gtin": "0" * 14, "lot": "L-1"})
    assert r.status_code in (200, 404)


def test_the_epcis_export_without_parameters_is_a_documented_400(client: TestClient) -> None:
    r = client.get("/api/v1/epcis/export")
    assert r.status_code == 400
    assert r.json() == {"detail": "give exactly one of shipment= or unit="}
    both = client.get("/api/v1/epcis/export", params={"shipment": "SHP-1", "unit": "x"})
    assert both.status_code == 400
    document = client.get("/api/openapi.json").json()
    assert "400" in document["paths"]["/api/v1/epcis/export"]["get"]["responses"]
