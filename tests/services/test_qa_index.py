"""The QA index against the real database: the shipments needing a decision, riskiest first, with
their excursions, verdict and condition (the fleet's own), then the others."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb

from db.types import Conn
from services import reports
from services import shipments as shipment_s
from tests.fixtures.web import add_alert, add_device, add_excursion, add_product, add_shipment

pytestmark = pytest.mark.integration

#: The queue's order for :func:`seed_qa_queue`'s shipments, and why.
EXPECTED_QUEUE = [
    "QA-CRIT",  # a critical alert
    "QA-EXC",  # an exception verdict (counts as major), 60 min out of range
    "QA-MAJ",  # a major alert, 20 min out of range
    "QA-OLD",  # nothing raised, arrived 5 h ago
    "QA-NEW",  # nothing raised, arrived 30 min ago
]


def _verdict(conn: Any, shipment_id: int, gtin: str, verdict: str, share: float) -> None:
    conn.execute(
        "INSERT INTO shipment_verdicts (shipment_id, gtin, verdict, reasons, figures,"
        " evaluated_at, evaluated_by) VALUES (%s, %s, %s, %s, %s, now(), 'ana.ruiz')",
        (
            shipment_id,
            gtin,
            verdict,
            Jsonb([{"code": "band_budget_exceeded", "message": "8–25 °C over budget"}]
                  if verdict == "exception" else []),
            Jsonb({"bands": [{"key": "8..25", "share": share, "used_s": share * 1800}]}),
        ),
    )  # fmt: skip


def seed_qa_queue(dsn: str) -> dict[str, int]:
    """Five shipments waiting for QA with different risks, one held without a reason to review,
    one in transit in alarm; returns their ids by reference."""
    now = datetime.now(UTC).replace(microsecond=0)
    ids: dict[str, int] = {}
    with psycopg.connect(dsn) as conn:
        product = add_product(conn)
        add_device(conn, "LOG-Q", interval_s=300)

        def shipment(reference: str, status: str, arrived_h: float | None) -> int:
            sid = add_shipment(conn, reference, product=product, status=status)
            if arrived_h is not None:
                conn.execute(
                    "UPDATE shipments SET started_at = %s, arrived_at = %s WHERE shipment_id = %s",
                    (now - timedelta(hours=12), now - timedelta(hours=arrived_h), sid),
                )
            ids[reference] = sid
            return sid

        def excursion(sid: int, minutes: int, peak: float) -> None:
            start = now - timedelta(hours=8)
            end = start + timedelta(minutes=minutes)
            add_excursion(conn, sid, "LOG-Q", start=start, end=end, last_out=end, max_c=peak)

        crit = shipment("QA-CRIT", "quarantined", 3)
        excursion(crit, 10, 14.0)
        add_alert(conn, crit, severity="critical", state="resolved", triggered_at=now)
        exc = shipment("QA-EXC", "under_review", 2)
        excursion(exc, 60, 12.5)
        add_alert(conn, exc, severity="warning", state="resolved", triggered_at=now)
        _verdict(conn, exc, product, "exception", 1.5)
        maj = shipment("QA-MAJ", "under_review", 1)
        excursion(maj, 20, 9.1)
        add_alert(conn, maj, severity="major", state="acknowledged", triggered_at=now)
        _verdict(conn, maj, product, "conforming", 0.4)
        _verdict(conn, shipment("QA-OLD", "under_review", 5), product, "conforming", 0.0)
        _verdict(conn, shipment("QA-NEW", "under_review", 0.5), product, "conforming", 0.0)
        shipment("QA-HELD", "quarantined", 6)
        moving = shipment("SHP-MOVING", "in_transit", None)
        add_alert(conn, moving, severity="major", state="open", triggered_at=now)
    return ids


def test_the_queue_puts_the_riskiest_decision_first(conn: Conn, db_dsn: str) -> None:
    seed_qa_queue(db_dsn)
    index = reports.qa_index(conn, offline_factor=10.0)
    assert [r["reference"] for r in index.queue] == EXPECTED_QUEUE
    by_ref = {r["reference"]: r for r in [*index.queue, *index.rest]}
    assert {"QA-HELD", "SHP-MOVING"} <= {r["reference"] for r in index.rest}
    assert not {r["reference"] for r in index.queue} & {r["reference"] for r in index.rest}

    crit, exc, maj = by_ref["QA-CRIT"], by_ref["QA-EXC"], by_ref["QA-MAJ"]
    assert (crit["risk_severity"], exc["risk_severity"], maj["risk_severity"]) == (
        "critical", "major", "major"
    )  # fmt: skip
    assert (exc["excursions"], exc["time_out_s"], exc["peak_c"]) == (1, 3600.0, 12.5)
    assert (exc["verdict"], maj["verdict"], crit["verdict"]) == (
        "exception", "conforming", "not judged"
    )  # fmt: skip
    assert exc["max_budget_share"] == pytest.approx(1.5)
    assert by_ref["QA-OLD"]["excursions"] == 0 and by_ref["QA-OLD"]["peak_c"] is None
    assert all(r["decision"] is None for r in by_ref.values())


def test_its_condition_is_the_fleets(conn: Conn, db_dsn: str) -> None:
    """The QA page and the fleet read the condition from the same query: a shipment in alarm on
    the fleet is in alarm in QA too."""
    seed_qa_queue(db_dsn)
    index = reports.qa_index(conn, offline_factor=10.0)
    fleet = shipment_s.list_shipments(conn, offline_factor=10.0, limit=100).items
    fleet_condition = {r["reference"]: r["condition"] for r in fleet}
    shown = {r["reference"]: r["condition"] for r in [*index.queue, *index.rest]}
    assert shown == fleet_condition
    assert shown["SHP-MOVING"] == "alarm"
