"""The excursion report over the API, and signing dispositions on it, against the real database."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from psycopg.rows import dict_row

from api.app import create_app
from coldchain.settings import Settings
from coldchain.telemetry import Reading
from db.queries import reports as report_q
from reports.assemble import evidence_hash
from reports.service import verify_signature
from tests.fixtures.auth import PASSWORD, Person
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
START = NOW - timedelta(hours=6)


@pytest.fixture
def client(settings: Settings) -> Any:
    with TestClient(create_app(settings)) as c:
        yield c


@pytest.fixture
def shipment(db_dsn: str) -> dict[str, Any]:
    with psycopg.connect(db_dsn) as conn:
        gtin = add_product(conn)
        add_device(conn, "LOG-1", interval_s=300)
        sid = add_shipment(conn, "SHP-1", product=gtin, status="arrived")
        assign(conn, "LOG-1", sid, START)
        add_excursion(
            conn, sid, "LOG-1", start=START + timedelta(hours=2), end=START + timedelta(hours=3),
            last_out=START + timedelta(hours=2, minutes=55),
        )  # fmt: skip
        add_alert(conn, sid, triggered_at=START + timedelta(hours=2, minutes=15), device_id="LOG-1")
        for serial, lot in (("1", "L42"), ("2", "L42"), ("3", "L43")):
            epc = f"urn:epc:id:sgtin:0950600.001343.{serial}"
            conn.execute(
                "INSERT INTO units (epc, kind, gtin, serial, lot, expiry)"
                " VALUES (%s, 'sgtin', %s, %s, %s, '2027-03-31')",
                (epc, gtin, serial, lot),
            )
            conn.execute(
                "INSERT INTO shipment_units (shipment_id, epc, during)"
                " VALUES (%s, %s, tstzrange(%s, NULL))",
                (sid, epc, START),
            )
    temps = [9.4 if 24 <= i < 36 else 5.0 for i in range(72)]
    ingest(
        db_dsn, [Reading("LOG-1", START + timedelta(minutes=5 * i), t) for i, t in enumerate(temps)]
    )
    return {"id": sid, "gtin": gtin}


def _now() -> str:
    """An as_of after everything the fixtures stored (whole seconds, rounded up)."""
    return (datetime.now(UTC) + timedelta(seconds=1)).replace(microsecond=0).isoformat()


def _wait_past(as_of: str) -> None:
    while datetime.now(UTC) <= datetime.fromisoformat(as_of):
        time.sleep(0.05)


def _report(client: TestClient, person: Person, fmt: str = "json", **params: Any) -> Any:
    return client.get(
        f"/api/v1/shipments/SHP-1/report.{fmt}", params=params, headers=person.headers
    )


def _sign(client: TestClient, person: Person, as_of: str, digest: str, **body: Any) -> Any:
    payload = {
        "decision": "release",
        "reason": "Excursion within the stability data; MKT 5.6 °C",
        "as_of": as_of,
        "report_hash": digest,
        "password": PASSWORD,
        **body,
    }
    return client.post("/api/v1/shipments/SHP-1/dispositions", json=payload, headers=person.headers)


def test_the_report_in_three_formats_with_its_hash(
    client: TestClient, shipment: dict[str, Any], people: dict[str, Person]
) -> None:
    viewer = people["viewer"]
    as_of = _now()
    r = _report(client, viewer, "json", as_of=as_of)
    assert r.status_code == 200, r.text
    body = r.json()
    assert r.headers["x-content-sha256"] == body["content_hash"]
    assert body["content_hash"] == evidence_hash(body["evidence"])
    ev = body["evidence"]
    assert ev["shipment"]["reference"] == "SHP-1" and ev["product"]["gtin"] == shipment["gtin"]
    assert {x["lot"]: x["units"] for x in ev["lots"]} == {"L42": 2, "L43": 1}
    assert (
        ev["loggers"][0]["readings"] == 72 and ev["loggers"][0]["calibration_cert"] == "CAL-LOG-1"
    )
    assert len(ev["excursions"]) == 1 and ev["alerts"][0]["state_as_of"] == "open"
    assert ev["rules"]["mkt"]["window_h"] == 24.0
    assert "product 0950600013435" in " ".join(ev["rules"]["in_force"]["sources"])
    pdf = _report(client, viewer, "pdf", as_of=as_of)
    assert pdf.headers["content-type"] == "application/pdf" and pdf.content.startswith(b"%PDF")
    assert _report(client, viewer, "pdf", as_of=as_of).content == pdf.content  # same as_of
    readings = _report(client, viewer, "csv", as_of=as_of)
    assert readings.headers["content-type"].startswith("text/csv")
    assert len(readings.text.splitlines()) == 1 + len(ev["readings"])
    assert 'report-SHP-1.csv"' in readings.headers["content-disposition"]
    summary = _report(client, viewer, "summary.csv", as_of=as_of)
    assert summary.headers["content-type"].startswith("text/csv")
    assert f"report,,content_hash,{body['content_hash']}," in summary.text
    assert (
        (summary.headers["content-disposition"])
        == 'attachment; filename="report-SHP-1.summary.csv"'
    )
    # data arriving after as_of does not change the report as of then
    _wait_past(as_of)
    ingest(client.app.state.settings.db.dsn, [Reading("LOG-1", NOW - timedelta(minutes=2), 30.0)])  # type: ignore[attr-defined]
    assert (
        _report(client, viewer, "json", as_of=as_of).json()["content_hash"] == body["content_hash"]
    )
    later = _report(client, viewer, "json", as_of=_now()).json()
    assert later["content_hash"] != body["content_hash"]
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert _report(client, viewer, "json", as_of=future).status_code == 422
    assert (
        client.get("/api/v1/shipments/NOPE/report.pdf", headers=viewer.headers).status_code == 404
    )
    assert (
        client.get("/api/v1/shipments/SHP-1/report.xml", headers=viewer.headers).status_code == 422
    )


def test_qa_signs_with_password_and_a_new_record_supersedes(
    client: TestClient, shipment: dict[str, Any], people: dict[str, Person], db_dsn: str
) -> None:
    qa = people["qa"]
    as_of = _now()
    digest = _report(client, qa, as_of=as_of).json()["content_hash"]

    assert _sign(client, qa, as_of, digest, password="wrong").status_code == 401
    assert _sign(client, people["operator"], as_of, digest).status_code == 403
    assert _sign(client, qa, as_of, "f" * 64).status_code == 409  # not the report reviewed
    assert _sign(client, qa, as_of, digest, reason="   ").status_code == 422
    assert _sign(client, qa, as_of, digest, lot="NOPE").status_code == 422

    first = _sign(client, qa, as_of, digest, decision="quarantine", reason="Pending stability data")
    assert first.status_code == 201, first.text
    rec = first.json()
    assert rec["signer_name"] == "Quinn Quality" and rec["signer_role"] == "qa"
    assert rec["meaning"].startswith("Review:") and rec["report_hash"] == digest
    assert rec["signature"].startswith("Signed by Quinn Quality (quinn.qa, qa) on ")
    assert rec["supersedes"] is None and rec["current"] is True

    second = _sign(client, qa, as_of, digest, reason="Stability data covers 9.4 °C for 1 h")
    assert second.status_code == 201
    assert second.json()["supersedes"] == rec["id"]
    lot = _sign(client, qa, as_of, digest, decision="reject", reason="Lot damaged", lot="L43")
    assert lot.status_code == 201 and lot.json()["supersedes"] is None  # a chain of its own

    listed = client.get(
        "/api/v1/shipments/SHP-1/dispositions", headers=people["viewer"].headers
    ).json()
    assert listed["lots"] == ["L42", "L43"]
    by_id = {d["id"]: d for d in listed["items"]}
    assert by_id[rec["id"]]["current"] is False
    assert by_id[rec["id"]]["superseded_by"] == second.json()["id"]
    assert by_id[second.json()["id"]]["current"] is True

    report = _report(client, qa, as_of=as_of).json()
    assert [d["decision"] for d in report["dispositions"]] == ["quarantine", "release", "reject"]

    with psycopg.connect(db_dsn, autocommit=True, row_factory=dict_row) as conn:
        audit = conn.execute(
            "SELECT actor, actor_role, reason FROM audit_log WHERE entity = 'dispositions'"
            " ORDER BY seq"
        ).fetchall()
        rows = report_q.dispositions(conn=conn, shipment_id=shipment["id"])
        snapshots = report_q.list_snapshots(conn=conn, shipment_id=shipment["id"])
    assert audit[0] == {
        "actor": "quinn.qa",
        "actor_role": "qa",
        "reason": "quarantine: Pending stability data",
    }
    assert all(verify_signature(r, "SHP-1") for r in rows)
    assert (
        len(snapshots) == 1 and snapshots[0]["content_hash"] == digest
    )  # one evidence, frozen once


def test_a_report_whose_data_changed_cannot_be_signed(
    client: TestClient, shipment: dict[str, Any], people: dict[str, Person], db_dsn: str
) -> None:
    qa = people["qa"]
    as_of = _now()
    digest = _report(client, qa, as_of=as_of).json()["content_hash"]
    with psycopg.connect(db_dsn) as conn:  # the labelled range is corrected meanwhile
        conn.execute("UPDATE products SET temp_max_c = 9 WHERE gtin = %s", (shipment["gtin"],))
    r = _sign(client, qa, as_of, digest)
    assert r.status_code == 409 and "review it again" in r.json()["detail"]


def test_the_signed_record_reproduces_byte_for_byte(
    client: TestClient, shipment: dict[str, Any], people: dict[str, Person], superuser_dsn: str
) -> None:
    qa = people["qa"]
    as_of = _now()
    digest = _report(client, qa, as_of=as_of).json()["content_hash"]
    signed = _sign(client, qa, as_of, digest).json()
    first = _report(client, qa, "pdf", disposition=signed["id"])
    assert first.status_code == 200 and first.headers["x-content-sha256"] == digest
    # time passes: new data, a new report, a new signature on it
    _wait_past(as_of)
    ingest(client.app.state.settings.db.dsn, [Reading("LOG-1", NOW - timedelta(minutes=1), 12.0)])  # type: ignore[attr-defined]
    later = _report(client, qa, as_of=_now()).json()
    assert later["content_hash"] != digest
    _sign(client, qa, later["evidence"]["as_of"], later["content_hash"], decision="quarantine")
    again = _report(client, qa, "pdf", disposition=signed["id"])
    assert again.content == first.content
    js = _report(client, qa, "json", disposition=signed["id"]).json()
    assert js["frozen_snapshot_id"] is not None and evidence_hash(js["evidence"]) == digest
    assert _report(client, qa, "pdf", disposition=999999).status_code == 404
    # a superuser who edits a signed record behind the app's back breaks its signature hash
    with psycopg.connect(superuser_dsn, autocommit=True, row_factory=dict_row) as su:
        su.execute("ALTER TABLE dispositions DISABLE TRIGGER dispositions_append_only")
        su.execute(
            "UPDATE dispositions SET reason = 'edited' WHERE disposition_id = %s", (signed["id"],)
        )
        row = su.execute(
            "SELECT * FROM dispositions WHERE disposition_id = %s", (signed["id"],)
        ).fetchone()
    assert row is not None and not verify_signature(row, "SHP-1")
