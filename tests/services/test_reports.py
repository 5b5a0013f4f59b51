"""The report, its snapshots, the QA queue and signed dispositions as services, against the real
database: what the API and the QA page both call."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import psycopg
import pytest

from coldchain.errors import PermissionDeniedError, ReportChangedError
from coldchain.settings import Settings
from coldchain.telemetry import Reading
from db.types import Conn
from reports.assemble import evidence_hash
from reports.service import verify_signature
from security.errors import AuthenticationError
from security.ratelimit import LoginLimiter
from security.roles import Role
from services import reports
from services.caller import Caller
from tests.fixtures.auth import PASSWORD
from tests.fixtures.web import add_device, assign, ingest
from tests.reports.test_report_api import START, _now, _wait_past, shipment  # noqa: F401  # a fixture

pytestmark = pytest.mark.integration

REASON = "Excursion within the stability data"


@pytest.fixture
def cfg(settings: Settings) -> reports.ReportSettings:
    return reports.ReportSettings.from_settings(settings)


@pytest.fixture
def limiter() -> LoginLimiter:
    return LoginLimiter(max_failures=5, window_s=60.0)


def _as_of() -> datetime:
    """An instant after everything the fixture stored, already past."""
    as_of = _now()
    _wait_past(as_of)
    return datetime.fromisoformat(as_of)


def _sign(
    conn: Conn,
    caller: Caller,
    cfg: reports.ReportSettings,
    limiter: LoginLimiter,
    as_of: datetime,
    digest: str,
    **kw: Any,
) -> dict[str, Any]:
    args: dict[str, Any] = {"lot": None, "decision": "release", "reason": REASON}
    args |= {"password": PASSWORD, **kw}
    return reports.sign(
        conn,
        caller,
        cfg,
        key="SHP-1",
        as_of=as_of,
        report_hash=digest,
        limiter=limiter,
        now=datetime.now(UTC),
        **args,
    )


def _changes(conn: Conn) -> dict[str, int]:
    """How many dispositions, snapshots and audit entries of either there are."""
    return {
        table: conn.execute(f"SELECT count(*) AS n FROM {table}").fetchone()["n"]  # type: ignore[index]
        for table in ("dispositions", "report_snapshots")
    } | {
        "audit": conn.execute(
            "SELECT count(*) AS n FROM audit_log"
            " WHERE entity IN ('dispositions', 'report_snapshots')"
        ).fetchone()["n"]  # type: ignore[index]
    }


def test_the_report_file_carries_the_hash_of_its_evidence(
    conn: Conn,
    cfg: reports.ReportSettings,
    shipment: dict[str, Any],  # noqa: F811
) -> None:
    as_of = _as_of()
    now = datetime.now(UTC)
    as_json = reports.report_file(conn, cfg, key="SHP-1", fmt="json", as_of=as_of, now=now)
    doc = json.loads(as_json.content)
    assert as_json.content_hash == evidence_hash(doc["evidence"]) == doc["content_hash"]
    assert (as_json.filename, as_json.media_type) == ("report-SHP-1.json", "application/json")
    # By id or by reference, now or later: the same instant gives the same bytes.
    again = reports.report_file(
        conn, cfg, key=str(shipment["id"]), fmt="json", as_of=as_of, now=datetime.now(UTC)
    )
    assert again == as_json
    pdf = reports.report_file(conn, cfg, key="SHP-1", fmt="pdf", as_of=as_of, now=now)
    assert pdf.content.startswith(b"%PDF-") and pdf.content_hash == as_json.content_hash
    assert reports.report(conn, cfg, key="SHP-1", as_of=as_of, now=now) == doc


def test_the_two_csv_files_hold_every_stored_reading_and_the_reports_figures(
    conn: Conn,
    cfg: reports.ReportSettings,
    db_dsn: str,
    shipment: dict[str, Any],  # noqa: F811
) -> None:
    # a second logger with humidity and a GPS fix on its first hour (12 readings), none after
    with psycopg.connect(db_dsn) as writer:
        add_device(writer, "LOG-GPS", interval_s=300)
        assign(writer, "LOG-GPS", shipment["id"], START)
    ingest(
        db_dsn,
        [
            Reading(
                "LOG-GPS",
                START + timedelta(minutes=5 * i),
                5.5,
                *((41.5, 51.92, 4.48) if i < 12 else ()),
            )
            for i in range(24)
        ],
    )
    with psycopg.connect(db_dsn) as reader:
        stored = reader.execute(
            "SELECT count(*) FROM readings WHERE device_id IN ('LOG-1', 'LOG-GPS')"
        ).fetchone()
    as_of, now = _as_of(), datetime.now(UTC)
    doc = reports.report(conn, cfg, key="SHP-1", as_of=as_of, now=now)
    readings = reports.report_file(conn, cfg, key="SHP-1", fmt="csv", as_of=as_of, now=now)
    frame = pd.read_csv(io.BytesIO(readings.content))
    rows = list(csv.DictReader(io.StringIO(readings.content.decode())))
    assert stored is not None and len(frame) == len(rows) == stored[0] == 72 + 24
    assert (readings.filename, readings.media_type) == (
        "report-SHP-1.csv",
        "text/csv; charset=utf-8",
    )
    assert frame["lat"].notna().sum() == 12
    assert set(frame.loc[frame["lat"].notna(), "logger"]) == {"LOG-GPS"}
    assert set(frame.loc[frame["lat"].notna(), "humidity_pct"]) == {41.5}
    hot = frame[frame["temperature_c"] > 8.0]
    assert len(hot) == 12 and set(hot["in_range"]) == {"no"}
    (excursion,) = doc["evidence"]["excursions"]
    assert set(hot["excursion_id"]) == {excursion["id"]}
    assert frame["excursion_id"].notna().sum() == 12

    summary = reports.report_file(conn, cfg, key="SHP-1", fmt="summary.csv", as_of=as_of, now=now)
    assert summary.filename == "report-SHP-1.summary.csv"
    figures = {
        (r["section"], r["item"], r["field"]): r["value"]
        for r in csv.DictReader(io.StringIO(summary.content.decode()))
    }
    totals = doc["evidence"]["totals"]
    assert figures[("totals", "", "readings")] == str(totals["readings"]) == "96"
    assert figures[("totals", "", "excursions")] == "1"
    assert float(figures[("excursions", str(excursion["id"]), "duration_s")]) == 3600.0
    assert figures[("report", "", "content_hash")] == doc["content_hash"] == readings.content_hash


def test_the_qa_queue_lists_the_shipment(conn: Conn, shipment: dict[str, Any]) -> None:  # noqa: F811
    index = reports.qa_index(conn, offline_factor=10.0)
    # arrived, its report unsigned: waiting for a decision
    assert ([r["reference"] for r in index.queue], index.rest) == (["SHP-1"], [])


def test_qa_signs_and_the_audit_trail_names_the_signer(
    conn: Conn,
    cfg: reports.ReportSettings,
    limiter: LoginLimiter,
    caller: Callable[[Role], Caller],
    shipment: dict[str, Any],  # noqa: F811
) -> None:
    as_of = _as_of()
    doc = reports.report(conn, cfg, key="SHP-1", as_of=as_of, now=datetime.now(UTC))
    qa = caller("qa")
    record = _sign(conn, qa, cfg, limiter, as_of, doc["content_hash"], lot="L42")
    assert (record["signer_username"], record["lot"], record["current"]) == (qa.actor, "L42", True)
    assert record["report_hash"] == doc["content_hash"]

    listed = reports.dispositions(conn, key="SHP-1")
    assert listed.lots == ["L42", "L43"] and listed.records == [record]
    (snap,) = reports.snapshots(conn, key="SHP-1")
    assert (snap["snapshot_id"], snap["content_hash"]) == (
        record["snapshot_id"],
        doc["content_hash"],
    )
    row = conn.execute(
        "SELECT * FROM dispositions WHERE disposition_id = %s", (record["id"],)
    ).fetchone()
    assert row is not None and verify_signature(row, "SHP-1")
    (audit,) = conn.execute(
        "SELECT actor, actor_role, source, reason, entity_id FROM audit_log"
        " WHERE entity = 'dispositions'"
    ).fetchall()
    assert (audit["actor"], audit["actor_role"]) == (qa.actor, "qa")
    # The database checked the caller's credential, and says so after where they called from.
    assert qa.source is not None and audit["source"].startswith(f"{qa.source} [")
    assert "verified by token" in audit["source"]
    assert (audit["reason"], audit["entity_id"]) == (f"release: {REASON}", str(record["id"]))

    # The signed record, as the API and the QA page download it, is the evidence frozen.
    signed = reports.report_file(
        conn, cfg, key="SHP-1", fmt="json", as_of=None, now=datetime.now(UTC),
        disposition_id=record["id"],
    )  # fmt: skip
    assert signed.filename == f"report-SHP-1-signed-{record['id']}.json"
    assert signed.content_hash == doc["content_hash"]


def test_a_held_shipment_stays_in_the_qa_queue_with_its_dispositions(
    conn: Conn,
    cfg: reports.ReportSettings,
    limiter: LoginLimiter,
    caller: Callable[[Role], Caller],
    shipment: dict[str, Any],  # noqa: F811
) -> None:
    as_of = _as_of()
    doc = reports.report(conn, cfg, key="SHP-1", as_of=as_of, now=datetime.now(UTC))
    qa = caller("qa")
    _sign(conn, qa, cfg, limiter, as_of, doc["content_hash"], lot="L42")
    _sign(conn, qa, cfg, limiter, as_of, doc["content_hash"], decision="quarantine")
    index = reports.qa_index(conn, offline_factor=10.0)
    (row,) = index.queue  # quarantined with an excursion: still QA's to decide
    assert (row["reference"], row["status"]) == ("SHP-1", "quarantined")
    assert (row["decision"], row["lot_decisions"], row["excursions"]) == ("quarantine", 1, 1)
    assert row["risk_severity"] == "critical" and row["peak_c"] == 9.6


@pytest.mark.parametrize("role", ["viewer", "operator", "admin"])
def test_only_qa_signs_and_a_refusal_changes_nothing(
    conn: Conn,
    cfg: reports.ReportSettings,
    limiter: LoginLimiter,
    caller: Callable[[Role], Caller],
    shipment: dict[str, Any],  # noqa: F811
    role: Role,
) -> None:
    as_of = _as_of()
    doc = reports.report(conn, cfg, key="SHP-1", as_of=as_of, now=datetime.now(UTC))
    before = _changes(conn)
    with pytest.raises(PermissionDeniedError, match=re.escape("'dispositions.sign' permission")):
        _sign(conn, caller(role), cfg, limiter, as_of, doc["content_hash"])
    assert _changes(conn) == before
    # Refused before the password is looked at: no failed login counted against them.
    assert conn.execute("SELECT 1 FROM audit_log WHERE action = 'login_failed'").fetchall() == []


def test_a_wrong_password_or_a_changed_report_signs_nothing(
    conn: Conn,
    cfg: reports.ReportSettings,
    limiter: LoginLimiter,
    caller: Callable[[Role], Caller],
    shipment: dict[str, Any],  # noqa: F811
) -> None:
    as_of = _as_of()
    doc = reports.report(conn, cfg, key="SHP-1", as_of=as_of, now=datetime.now(UTC))
    before = _changes(conn)
    with pytest.raises(AuthenticationError):
        _sign(conn, caller("qa"), cfg, limiter, as_of, doc["content_hash"], password="wrong")
    stale = "0" * 64
    with pytest.raises(ReportChangedError, match=doc["content_hash"]):
        _sign(conn, caller("qa"), cfg, limiter, as_of, stale)
    after = _changes(conn)
    assert after == before
    assert reports.dispositions(conn, key="SHP-1").records == []
