"""The HTTP API against a real TimescaleDB: rows go in with psycopg, answers come out as JSON.

The client acts as the on-call operator (a bearer token); tests/security covers the other roles.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from api.app import create_app
from coldchain.errors import SetupError
from coldchain.gs1 import check_digit
from coldchain.settings import Settings
from coldchain.telemetry import Reading
from tests.fixtures.auth import Person
from tests.fixtures.web import (
    add_alert,
    add_device,
    add_excursion,
    add_product,
    add_shipment,
    assign,
    ingest,
)

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture(autouse=True)
def _now() -> None:
    """ "Now" as each test starts, not as the module was collected: a reading "a minute ago"
    must not have aged into "offline" by the time a long suite reaches the test."""
    global NOW
    NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def app(settings: Settings) -> FastAPI:
    return create_app(settings)


@pytest.fixture
def client(app: FastAPI, people: dict[str, Person]) -> Iterator[TestClient]:
    with TestClient(app) as c:  # the context runs the lifespan: the pool opens and closes
        c.headers.update(people["operator"].headers)
        yield c


def _fleet(dsn: str) -> dict[str, Any]:
    """Four shipments, one per condition, plus one not started."""
    ids: dict[str, Any] = {}
    with psycopg.connect(dsn) as conn:
        product = add_product(conn)
        ids["gtin"] = product
        for dev in ("LOG-HOT", "LOG-OK", "LOG-SILENT", "LOG-WARM"):
            add_device(conn, dev)
        for ref, dev, origin, dest in (
            ("SHP-HOT", "LOG-HOT", "Rotterdam", "Basel"),
            ("SHP-OK", "LOG-OK", "Lyon", "Milan"),
            ("SHP-SILENT", "LOG-SILENT", "Hamburg", "Vienna"),
            ("SHP-WARM", "LOG-WARM", "Madrid", "Lisbon"),
        ):
            ids[ref] = add_shipment(conn, ref, product=product, origin=origin, destination=dest)
            assign(conn, dev, ids[ref], NOW - timedelta(days=1))
        ids["SHP-PLANNED"] = add_shipment(
            conn,
            "SHP-PLANNED",
            product=product,
            origin="Oslo",
            destination="Bergen",
            status="planned",
        )
        ids["alert"] = add_alert(
            conn, ids["SHP-HOT"], severity="critical", triggered_at=NOW - timedelta(minutes=40)
        )
        add_alert(
            conn,
            ids["SHP-HOT"],
            rule_key="battery",
            severity="info",
            title="Battery low",
            triggered_at=NOW - timedelta(minutes=5),
        )
    ingest(
        dsn,
        [
            Reading("LOG-HOT", NOW - timedelta(minutes=1), 9.4, 50.0, 51.9, 4.5),
            Reading("LOG-OK", NOW - timedelta(minutes=1), 5.1, 48.0, 45.7, 4.8),
            # silent for an hour: more than 2 × its 60 s interval
            Reading("LOG-SILENT", NOW - timedelta(hours=1), 4.0, 45.0, 53.5, 10.0),
            # out of range but no alert from the engine (yet): a warning
            Reading("LOG-WARM", NOW - timedelta(minutes=1), 8.6, 47.0, 40.4, -3.7),
        ],
    )
    return ids


def test_shipment_list_puts_action_first_with_live_fields(client: TestClient, db_dsn: str) -> None:
    _fleet(db_dsn)
    body = client.get("/api/v1/shipments").json()
    assert body["total"] == 5
    refs = [s["reference"] for s in body["items"]]
    assert refs == ["SHP-HOT", "SHP-WARM", "SHP-SILENT", "SHP-OK", "SHP-PLANNED"]
    conditions = [s["condition"] for s in body["items"]]
    assert conditions == ["alarm", "warning", "offline", "ok", "ok"]
    hot = body["items"][0]
    assert hot["lane"] == "Rotterdam → Basel"
    assert hot["product"]["name"] == "Vaxigrip 10 x 0.5 ml"
    assert (hot["product"]["temp_min_c"], hot["product"]["temp_max_c"]) == (2.0, 8.0)
    assert hot["current_temp_c"] == 9.4
    assert hot["open_alerts"] == 2 and hot["worst_severity"] == "critical"
    assert hot["attention"] == 3
    assert hot["last_seen"].endswith("Z")  # ISO 8601 with the time zone
    assert datetime.fromisoformat(hot["last_seen"]) == NOW - timedelta(minutes=1)
    planned = body["items"][-1]
    assert planned["current_temp_c"] is None and planned["n_devices"] == 0


def test_shipment_list_says_since_when_how_bad_and_filters_by_lane_and_carrier(
    client: TestClient, db_dsn: str
) -> None:
    """The API's fleet list carries what the dashboard's fleet table shows (issue 14)."""
    ids = _fleet(db_dsn)
    started = NOW - timedelta(minutes=30)
    with psycopg.connect(db_dsn) as conn:
        add_excursion(
            conn, ids["SHP-HOT"], "LOG-HOT", start=started, end=None,
            last_out=NOW - timedelta(minutes=1), max_c=12.8,
            alarm_at=started + timedelta(minutes=15),
        )  # fmt: skip
        conn.execute(
            "UPDATE shipments SET carrier = 'Alpine Cold' WHERE shipment_id = %s", (ids["SHP-OK"],)
        )
    body = client.get("/api/v1/shipments").json()
    hot = body["items"][0]
    assert hot["reference"] == "SHP-HOT"
    assert datetime.fromisoformat(hot["out_of_range_since"]) == started  # not the alarm time
    assert (hot["peak_c"], hot["peak_open"], hot["n_excursions"]) == (12.8, True, 1)
    ok = next(s for s in body["items"] if s["reference"] == "SHP-OK")
    assert ok["out_of_range_since"] is None and ok["n_excursions"] == 0
    assert ok["carriers"] == ["Alpine Cold"] and ok["qa_state"] is None

    def refs(**params: Any) -> list[str]:
        r = client.get("/api/v1/shipments", params=params)
        assert r.status_code == 200, r.text
        return [s["reference"] for s in r.json()["items"]]

    assert refs(lane="Lyon → Milan") == ["SHP-OK"]
    assert refs(carrier="Alpine Cold") == ["SHP-OK"]
    assert refs(carrier="Nobody") == []


def test_shipment_list_filters_and_pages(client: TestClient, db_dsn: str) -> None:
    _fleet(db_dsn)

    def refs(**params: Any) -> list[str]:
        r = client.get("/api/v1/shipments", params=params)
        assert r.status_code == 200, r.text
        return [s["reference"] for s in r.json()["items"]]

    assert refs(status="planned") == ["SHP-PLANNED"]
    assert refs(q="rotter") == ["SHP-HOT"]
    assert refs(q="milan") == ["SHP-OK"]
    assert refs(q="100%") == []  # wildcards are literal
    assert refs(has_open_alerts="true") == ["SHP-HOT"]
    assert "SHP-HOT" not in refs(has_open_alerts="false")
    assert refs(condition="offline") == ["SHP-SILENT"]

    first = client.get("/api/v1/shipments", params={"limit": 2}).json()
    second = client.get("/api/v1/shipments", params={"limit": 2, "offset": 2}).json()
    beyond = client.get("/api/v1/shipments", params={"limit": 2, "offset": 50}).json()
    assert [s["reference"] for s in first["items"]] == ["SHP-HOT", "SHP-WARM"]
    assert [s["reference"] for s in second["items"]] == ["SHP-SILENT", "SHP-OK"]
    assert first["total"] == second["total"] == beyond["total"] == 5
    assert beyond["items"] == []


def test_shipment_detail_by_id_and_reference(client: TestClient, db_dsn: str) -> None:
    ids = _fleet(db_dsn)
    with psycopg.connect(db_dsn) as conn:
        conn.execute(
            "INSERT INTO shipment_legs (shipment_id, seq, mode, origin, destination)"
            " VALUES (%s, 1, 'road', 'Rotterdam', 'Basel')",
            (ids["SHP-HOT"],),
        )
        sscc = "00950600000000001" + str(check_digit("00950600000000001"))
        conn.execute(
            "INSERT INTO units (epc, kind, sscc, lot) VALUES"
            " ('urn:epc:id:sscc:0950600.0000000017', 'sscc', %s, 'L42')",
            (sscc,),
        )
        conn.execute(
            "INSERT INTO shipment_units (shipment_id, epc, during) VALUES"
            " (%s, 'urn:epc:id:sscc:0950600.0000000017', tstzrange(%s, NULL))",
            (ids["SHP-HOT"], NOW - timedelta(days=1)),
        )
    by_ref = client.get("/api/v1/shipments/SHP-HOT")
    by_id = client.get(f"/api/v1/shipments/{ids['SHP-HOT']}")
    assert by_ref.status_code == 200, by_ref.text
    assert by_ref.json() == by_id.json()
    detail = by_ref.json()
    assert detail["id"] == ids["SHP-HOT"]
    assert detail["product"]["freeze_limit_c"] == 0.0
    assert detail["legs"][0]["mode"] == "road"
    (device,) = detail["devices"]
    assert device["device_id"] == "LOG-HOT"
    assert device["calibration_cert"] == "CAL-LOG-HOT"
    assert device["calibration_due"] == "2027-06-30"
    assert detail["latest_reading"]["temp_c"] == 9.4
    assert {a["severity"] for a in detail["alerts"]} == {"critical", "info"}
    assert detail["units"][0]["lot"] == "L42"


def test_not_found_and_validation_errors_say_what(client: TestClient, db_dsn: str) -> None:
    _fleet(db_dsn)
    r = client.get("/api/v1/shipments/SHP-NOPE")
    assert r.status_code == 404
    assert "SHP-NOPE" in r.json()["detail"] and "not found" in r.json()["detail"]
    assert client.get("/api/v1/alerts/999999").json() == {"detail": "alert 999999 not found"}
    assert "LOG-NOPE" in client.get("/api/v1/devices/LOG-NOPE").json()["detail"]

    r = client.get("/api/v1/shipments", params={"limit": 0})
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["query", "limit"]
    r = client.get("/api/v1/shipments/SHP-HOT/readings", params={"max_points": "many"})
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["query", "max_points"]
    r = client.get("/api/v1/shipments/SHP-HOT/readings", params={"start": "2026-01-01T00:00:00"})
    assert r.status_code == 422  # a time without a time zone is ambiguous
    assert r.json()["detail"][0]["loc"] == ["query", "start"]
    r = client.get("/api/v1/no-such-thing")
    assert r.status_code == 404 and r.headers["content-type"] == "application/json"


def test_readings_are_downsampled_with_time_bucket(client: TestClient, db_dsn: str) -> None:
    start = NOW - timedelta(days=4)
    with psycopg.connect(db_dsn) as conn:
        product = add_product(conn)
        add_device(conn, "LOG-1")
        sid = add_shipment(conn, "SHP-LONG", product=product)
        assign(conn, "LOG-1", sid, start)
    # before the assignment: the logger rode in another shipment; these must never show up
    ingest(db_dsn, [Reading("LOG-1", start - timedelta(minutes=m), 30.0) for m in range(1, 60)])
    ingest(
        db_dsn,
        [Reading("LOG-1", start + timedelta(minutes=m), 4.0 + (m % 7) * 0.5) for m in range(5000)],
    )

    body = client.get("/api/v1/shipments/SHP-LONG/readings", params={"max_points": 500}).json()
    assert body["resolution"] == "bucket"
    assert body["total_readings"] == 5000
    points = body["points"]
    assert 0 < len(points) <= 500
    assert sum(p["n"] for p in points) == 5000
    for p in points:
        assert p["temp_min_c"] <= p["temp_c"] <= p["temp_max_c"]
    assert max(p["temp_max_c"] for p in points) == 7.0  # never the 30 °C of the other trip
    assert points[0]["ts"] == start.isoformat().replace("+00:00", "Z")

    window = {"start": start.isoformat(), "end": (start + timedelta(minutes=100)).isoformat()}
    raw = client.get("/api/v1/shipments/SHP-LONG/readings", params=window).json()
    assert raw["resolution"] == "raw" and raw["bucket_s"] is None
    assert len(raw["points"]) == 100
    assert all(p["n"] == 1 and p["temp_min_c"] == p["temp_c"] for p in raw["points"])

    device = client.get("/api/v1/devices/LOG-1/readings", params={"max_points": 100}).json()
    assert device["resolution"] == "bucket" and len(device["points"]) <= 100
    assert device["total_readings"] == 5059  # the device's own history includes the other trip


def test_acknowledge_records_who_and_why(client: TestClient, db_dsn: str) -> None:
    ids = _fleet(db_dsn)
    alert = ids["alert"]
    r = client.post(f"/api/v1/alerts/{alert}/acknowledge", json={"comment": "Reefer reset"})
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "acknowledged"
    assert r.json()["acked_by"] == "ana.ruiz"  # the caller, from the token
    detail = client.get(f"/api/v1/alerts/{alert}").json()
    assert detail["ack_comment"] == "Reefer reset" and detail["acked_at"].endswith("Z")
    assert [e["kind"] for e in detail["events"]] == ["opened", "acknowledged"]
    event = detail["events"][-1]
    assert (event["actor"], event["comment"]) == ("ana.ruiz", "Reefer reset")
    with psycopg.connect(db_dsn) as conn:
        row = conn.execute(
            "SELECT actor, comment FROM alert_events WHERE alert_id = %s AND kind = 'acknowledged'",
            (alert,),
        ).fetchone()
        audit = conn.execute(
            "SELECT actor, actor_role, reason, before->>'state', after->>'state' FROM audit_log"
            " WHERE entity = 'alerts' AND entity_id = %s AND action = 'update'",
            (str(alert),),
        ).fetchall()
    assert row == ("ana.ruiz", "Reefer reset")
    assert audit == [("ana.ruiz", "operator", "Reefer reset", "open", "acknowledged")]

    # The actor comes from the token: a name in the body is refused, not believed.
    r = client.post(f"/api/v1/alerts/{alert}/acknowledge", json={"by": "Someone Else"})
    assert r.status_code == 422
    r = client.post(f"/api/v1/alerts/{alert}/assign", json={"assignee": "Ben"})
    assert r.status_code == 422 and "not an active user" in r.json()["detail"]
    r = client.post(f"/api/v1/alerts/{alert}/assign", json={"assignee": "Adam.Admin"})
    assert r.json()["assignee"] == "adam.admin"
    assert r.json()["events"][-1]["data"] == {"assignee": "adam.admin", "previous": None}
    assert r.json()["events"][-1]["actor"] == "ana.ruiz"

    listed = client.get("/api/v1/alerts", params={"state": "acknowledged"}).json()
    assert [a["id"] for a in listed["items"]] == [alert]
    by_shipment = client.get("/api/v1/alerts", params={"shipment": "SHP-HOT"}).json()
    assert by_shipment["total"] == 2
    assert by_shipment["items"][0]["severity"] == "critical"  # strongest first


@pytest.mark.parametrize("body", [{}, {"comment": None}, {"comment": "  "}])
def test_acknowledge_without_a_comment_is_a_422_naming_the_field(
    client: TestClient, db_dsn: str, body: dict[str, Any]
) -> None:
    alert = _fleet(db_dsn)["alert"]
    r = client.post(f"/api/v1/alerts/{alert}/acknowledge", json=body)
    assert r.status_code == 422, r.text
    assert r.json()["detail"].startswith("comment: required")
    detail = client.get(f"/api/v1/alerts/{alert}").json()
    assert detail["state"] == "open" and [e["kind"] for e in detail["events"]] == ["opened"]
    # documented: the route's 422 says so
    spec = client.get("/api/openapi.json").json()
    assert (
        "comment"
        in spec["paths"]["/api/v1/alerts/{alert_id}/acknowledge"]["post"]["responses"]["422"][
            "description"
        ]
    )


def test_acknowledging_a_resolved_alert_is_a_conflict(client: TestClient, db_dsn: str) -> None:
    ids = _fleet(db_dsn)
    alert = ids["alert"]
    r = client.post(f"/api/v1/alerts/{alert}/resolve", json={"comment": "Delivered"})
    assert r.status_code == 200 and r.json()["state"] == "resolved"
    r = client.post(f"/api/v1/alerts/{alert}/acknowledge", json={"comment": "late"})
    assert r.status_code == 409
    assert "already resolved" in r.json()["detail"] and "ana.ruiz" in r.json()["detail"]
    events = client.get(f"/api/v1/alerts/{alert}").json()["events"]
    assert [e["kind"] for e in events] == ["opened", "resolved"]  # the refused action left no trace
    assert client.post(f"/api/v1/alerts/{alert}/resolve", json={}).status_code == 409


def test_excursions_devices_products(client: TestClient, db_dsn: str) -> None:
    ids = _fleet(db_dsn)
    with psycopg.connect(db_dsn) as conn:
        current = add_excursion(
            conn,
            ids["SHP-HOT"],
            "LOG-HOT",
            start=NOW - timedelta(minutes=50),
            end=None,
            last_out=NOW - timedelta(minutes=1),
        )
        old = add_excursion(
            conn,
            ids["SHP-HOT"],
            "LOG-HOT",
            start=NOW - timedelta(minutes=50),
            end=NOW - timedelta(minutes=30),
            last_out=NOW - timedelta(minutes=31),
        )
        conn.execute(
            "UPDATE excursions SET superseded_at = now(), superseded_reason = 'late data'"
            " WHERE excursion_id = %s",
            (old,),
        )
    excursions = client.get("/api/v1/shipments/SHP-HOT/excursions").json()
    assert [e["id"] for e in excursions] == [current]
    assert excursions[0]["open"] is True and excursions[0]["duration_s"] == 49 * 60
    assert client.get("/api/v1/excursions", params={"shipment": "SHP-HOT"}).json() == excursions

    devices = {d["device_id"]: d for d in client.get("/api/v1/devices").json()}
    assert devices["LOG-OK"]["current_shipment_reference"] == "SHP-OK"
    assert devices["LOG-OK"]["temp_c"] == 5.1
    detail = client.get("/api/v1/devices/LOG-OK").json()
    assert detail["assignments"][0]["shipment_reference"] == "SHP-OK"

    products = client.get("/api/v1/products").json()
    assert [p["gtin"] for p in products] == [ids["gtin"]]
    assert client.get(f"/api/v1/products/{ids['gtin']}").json()["temp_max_c"] == 8.0
    assert client.get("/api/v1/products/123").status_code == 422
    assert client.get("/api/v1/products/00000000000000").status_code == 404


def test_health_metrics_docs_and_dashboard_share_one_port(client: TestClient) -> None:
    health = client.get("/healthz").json()
    assert health["status"] == "ok"
    # Nothing waits in a fresh database (services/test_health.py checks the figures).
    assert health["pipeline"] == {
        "engine_lag_s": 0.0,
        "outbox_oldest_s": 0.0,
        "notifications_retrying": 0,
        "deliveries_failed_1h": 0,
        "engines": 0,
    }
    client.get("/api/v1/shipments")
    metrics = client.get("/metrics").text
    for gauge in (
        "coldchain_pipeline_engine_lag_seconds 0.0",
        "coldchain_pipeline_outbox_oldest_seconds 0.0",
        "coldchain_pipeline_notifications_retrying 0.0",
        "coldchain_pipeline_deliveries_failed_1h 0.0",
        "coldchain_pipeline_engines 0.0",
    ):
        assert gauge in metrics.splitlines()
    assert (
        'coldchain_http_requests_total{method="GET",route="/api/v1/shipments",status="200"} 1.0'
        in metrics
    )
    assert "coldchain_http_request_duration_seconds_bucket" in metrics
    assert "coldchain_web_db_pool_connections" in metrics
    assert client.get("/api/openapi.json").json()["info"]["title"] == "Cold chain API"
    assert client.get("/api/docs").status_code == 200
    page = client.get("/")
    assert page.status_code == 200 and "_dash-config" in page.text
    assert client.get("/_dash-layout").status_code == 200


def test_unexpected_errors_are_opaque(
    app: FastAPI, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    def boom() -> None:
        raise RuntimeError("secret internals")

    # in front of the dashboard's catch-all mount
    app.router.routes.insert(0, APIRoute("/api/v1/boom", boom))
    with TestClient(app, raise_server_exceptions=False) as client:
        r = client.get("/api/v1/boom")
    assert r.status_code == 500
    body = r.json()
    assert "secret" not in r.text and "Traceback" not in r.text
    assert len(body["error_id"]) == 12
    assert any(body["error_id"] in rec.getMessage() for rec in caplog.records)


def test_start_up_fails_fast_without_a_database(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("api.app.POOL_WAIT_S", 1.0)
    unreachable = settings.model_copy(
        update={"db": settings.db.model_copy(update={"port": 1, "name": "nowhere"})}
    )
    app = create_app(unreachable)
    with (
        pytest.raises(SetupError, match="cannot connect to the database 'nowhere'"),
        TestClient(app),
    ):
        pass


def test_health_says_unavailable_when_the_database_is_gone(app: FastAPI) -> None:
    with TestClient(app) as client:
        assert client.get("/healthz").status_code == 200
        app.state.pool.close()  # as good as a database that went away
        r = client.get("/healthz")
    assert r.status_code == 503
    assert r.json()["status"] == "unavailable"
