"""The arrival verdict in the excursion report, against the real database: judged by the profile
version in force when the shipment started, printed in the JSON, CSV and PDF, and read as of the
report's instant like everything else in it."""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from coldchain.settings import Settings
from coldchain.telemetry import Reading
from db.types import Conn
from reports.csv_files import render_summary_csv
from reports.pdf_sections import latin1
from reports.render import render_json, render_pdf
from services import bookings, lifecycle
from services import reports as report_service
from services.caller import Caller
from tests.fixtures.web import add_device, add_product, ingest
from tests.reports.test_render import pdf_text

pytestmark = pytest.mark.integration

OPERATOR = Caller("ana.ruiz", "operator", "test", "Ana Ruiz")
HOT_MINUTES = range(60, 120)  # an hour at 12 °C, in the 8–25 °C band
BUDGETS_8_25_S = {1: 600.0, 2: 1800.0, 3: 18000.0}  # per profile version


@pytest.fixture
def conn(db_dsn: str) -> Iterator[Conn]:
    with psycopg.connect(db_dsn, autocommit=True, row_factory=dict_row) as c:
        yield c


@pytest.fixture
def cfg(settings: Settings) -> report_service.ReportSettings:
    return report_service.ReportSettings.from_settings(settings)


def _store_profile(conn: Conn, gtin: str, version: int, created_at: datetime) -> None:
    doc = {
        "storage_low_c": 2.0,
        "storage_high_c": 8.0,
        "allowances": [
            {"low_c": 8.0, "high_c": 25.0, "budget_s": BUDGETS_8_25_S[version]},
            {"low_c": 0.0, "high_c": 2.0, "budget_s": 12 * 3600},
        ],
    }
    conn.execute(
        "INSERT INTO product_profiles (gtin, version, profile, created_by, reason, created_at)"
        " VALUES (%s, %s, %s, 'quinn.qa', 'stability study', %s)",
        (gtin, version, Jsonb(doc), created_at),
    )


def _past_second() -> datetime:
    """A whole second that has just gone by (an ``as_of`` the report accepts)."""
    as_of = (datetime.now(UTC) + timedelta(seconds=1)).replace(microsecond=0)
    while datetime.now(UTC) <= as_of:
        time.sleep(0.05)
    return as_of


def test_the_report_shows_the_verdict_by_the_profile_in_force_at_start_and_as_of(
    conn: Conn, db_dsn: str, cfg: report_service.ReportSettings
) -> None:
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=180)
    gtin = add_product(conn, name="Profiled vaccine")
    _store_profile(conn, gtin, 1, start - timedelta(days=2))
    _store_profile(conn, gtin, 2, start - timedelta(days=1))
    add_device(conn, "LOG-V")
    row, _ = bookings.create(
        conn,
        OPERATOR,
        new=bookings.NewShipment(
            reference="SHP-V", origin="Basel", destination="Milan",
            items=(bookings.Item(gtin, "A1", 100),),
        ),
        now=start - timedelta(hours=1),
    )  # fmt: skip
    sid = int(row["shipment_id"])
    bookings.attach(conn, OPERATOR, shipment_id=sid, device_id="LOG-V", now=start)
    lifecycle.start(conn, OPERATOR, shipment_id=sid, now=start)
    # Version 3 (ten times the budget) is stored after the shipment started: not the one in force.
    _store_profile(conn, gtin, 3, start + timedelta(minutes=1))
    temps = [12.0 if i in HOT_MINUTES else 5.0 for i in range(180)]
    ingest(db_dsn, [Reading("LOG-V", start + timedelta(minutes=i), t) for i, t in enumerate(temps)])

    before = _past_second()
    unjudged = report_service.report(conn, cfg, key="SHP-V", as_of=before, now=datetime.now(UTC))
    assert unjudged["evidence"]["verdicts"] == []
    stored = lifecycle.arrive(
        conn, OPERATOR, shipment_id=sid, now=datetime.now(UTC), gap_factor=cfg.gap_factor
    )
    after = _past_second()

    # As of before the arrival the report says what it said then: no verdict, the same hash.
    again = report_service.report(conn, cfg, key="SHP-V", as_of=before, now=datetime.now(UTC))
    assert again["evidence"]["verdicts"] == []
    assert again["content_hash"] == unjudged["content_hash"]

    doc = report_service.report(conn, cfg, key="SHP-V", as_of=after, now=datetime.now(UTC))
    assert doc["content_hash"] != unjudged["content_hash"]
    (verdict,) = stored
    (v,) = json.loads(render_json(doc))["evidence"]["verdicts"]
    assert (v["gtin"], v["verdict"], v["profile_version"]) == (gtin, "exception", 2)
    assert v["judged_by"] == "profile version 2"
    hot = {b["key"]: b for b in v["bands"]}["8..25"]
    hot_s = len(HOT_MINUTES) * 60.0  # each reading holds until the next, a minute later
    assert (hot["used_s"], hot["budget_s"]) == (hot_s, BUDGETS_8_25_S[2])
    assert hot["share"] == pytest.approx(hot_s / BUDGETS_8_25_S[2])
    assert [r["message"] for r in v["reasons"]] == [r["message"] for r in verdict["reasons"]]

    rows = csv.DictReader(io.StringIO(render_summary_csv(doc).decode()))
    judged = [r["value"] for r in rows if (r["section"], r["field"]) == ("verdicts", "judged_by")]
    assert judged == ["profile version 2"]

    text = pdf_text(render_pdf(doc))
    assert "Stability verdict at arrival" in text
    assert "EXCEPTION - judged by profile version 2" in text
    for reason in v["reasons"]:
        assert latin1(reason["message"]) in text
    assert f"{hot['share'] * 100:.1f} %" in text
    assert "1 h 00 min" in text and "30 min" in text  # used and budget of the 8–25 °C band
