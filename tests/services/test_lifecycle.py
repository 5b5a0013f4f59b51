"""A shipment's life through the services on the real database: booked, loggers attached,
started, readings stored as the ingester stores them, arrived with a verdict per product, queued
for QA by risk; and shipments imported from CSV."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from coldchain.telemetry import Reading
from db.types import Conn
from services import bookings, lifecycle, shipment_import
from services.caller import Caller
from tests.fixtures.web import add_device, add_product, ingest
from tests.fixtures.web import gtin as gtin_of

pytestmark = pytest.mark.integration

OPERATOR = Caller("ana.ruiz", "operator", "test", "Ana Ruiz")
GAP_FACTOR = 2.0
BUDGET_8_25_S = 1800  # 30 min in the 8–25 °C band
HOT_MINUTES = range(60, 120)  # one hour at 12 °C


@pytest.fixture
def conn(db_dsn: str) -> Iterator[Conn]:
    with psycopg.connect(db_dsn, autocommit=True, row_factory=dict_row) as c:
        yield c


def _profile(conn: Conn, gtin: str, *, budget_s: float, created_at: datetime) -> None:
    doc = {
        "storage_low_c": 2.0,
        "storage_high_c": 8.0,
        "allowances": [
            {"low_c": 8.0, "high_c": 25.0, "budget_s": budget_s},
            {"low_c": 0.0, "high_c": 2.0, "budget_s": 12 * 3600},
        ],
    }
    version = conn.execute(
        "SELECT coalesce(max(version), 0) + 1 AS v FROM product_profiles WHERE gtin = %s", (gtin,)
    ).fetchone()
    assert version is not None
    conn.execute(
        "INSERT INTO product_profiles (gtin, version, profile, created_by, reason, created_at)"
        " VALUES (%s, %s, %s, 'quinn.qa', 'stability study', %s)",
        (gtin, version["v"], Jsonb(doc), created_at),
    )


def _book(
    conn: Conn, reference: str, items: list[tuple[str, str, int]], *, now: datetime | None = None
) -> int:
    row, created = bookings.create(
        conn,
        OPERATOR,
        new=bookings.NewShipment(
            reference=reference,
            origin="Basel",
            destination="Milan",
            items=tuple(bookings.Item(g, lot, q) for g, lot, q in items),
        ),
        now=now or datetime.now(UTC),
    )
    assert created
    return int(row["shipment_id"])


def _ride(conn: Conn, db_dsn: str, shipment_id: int, logger: str, start: datetime,
          temps: list[float]) -> None:  # fmt: skip
    """Attach the logger and start at ``start``; one reading a minute from then."""
    bookings.attach(conn, OPERATOR, shipment_id=shipment_id, device_id=logger, now=start)
    lifecycle.start(conn, OPERATOR, shipment_id=shipment_id, now=start)
    ingest(db_dsn, [Reading(logger, start + timedelta(minutes=i), t) for i, t in enumerate(temps)])


def test_arrival_judges_every_product_by_its_profile_in_force_and_queues_it_for_qa(
    conn: Conn, db_dsn: str
) -> None:
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=180)
    profiled = add_product(conn, name="Profiled", body="0950600013435")
    plain = add_product(conn, name="Plain", body="0950600013442")
    conn.execute("UPDATE products SET stability_budget_s = 7200 WHERE gtin = %s", (plain,))
    _profile(conn, profiled, budget_s=BUDGET_8_25_S, created_at=start - timedelta(days=1))
    # A later version (more budget) came after the shipment started: not the one in force.
    _profile(conn, profiled, budget_s=10 * BUDGET_8_25_S, created_at=start + timedelta(minutes=1))
    add_device(conn, "LOG-1")
    add_device(conn, "LOG-2")

    booked = start - timedelta(hours=1)
    hot = _book(conn, "SHP-HOT", [(profiled, "A1", 100), (plain, "B1", 50)], now=booked)
    cool = _book(conn, "SHP-COOL", [(plain, "B2", 10)], now=booked)
    temps = [12.0 if i in HOT_MINUTES else 5.0 for i in range(180)]
    _ride(conn, db_dsn, hot, "LOG-1", start, temps)
    _ride(conn, db_dsn, cool, "LOG-2", start, [5.0] * 180)

    arrival = datetime.now(UTC)
    verdicts = {
        v["gtin"]: v
        for v in lifecycle.arrive(
            conn, OPERATOR, shipment_id=hot, now=arrival, gap_factor=GAP_FACTOR
        )
    }
    hot_s = len(HOT_MINUTES) * 60.0  # each reading holds until the next, a minute later

    p = verdicts[profiled]
    assert (p["verdict"], p["profile_version"]) == ("exception", 1)
    assert [r["code"] for r in p["reasons"]] == ["band_budget_exceeded"]
    band = {b["key"]: b for b in p["figures"]["bands"]}["8..25"]
    assert (band["used_s"], band["budget_s"], band["exceeded"]) == (hot_s, BUDGET_8_25_S, True)

    # No profile: the product row's range and stability budget (one band for any temperature
    # outside the range), an hour used of two.
    q = verdicts[plain]
    assert (q["verdict"], q["profile_version"], q["reasons"]) == ("conforming", None, [])
    (fallback,) = q["figures"]["bands"]
    assert (fallback["key"], fallback["used_s"], fallback["budget_s"]) == ("..", hot_s, 7200)

    lifecycle.arrive(conn, OPERATOR, shipment_id=cool, now=datetime.now(UTC),
                     gap_factor=GAP_FACTOR)  # fmt: skip
    state = bookings.get(conn, shipment_id=hot)
    assert (state["status"], state["started_at"], state["arrived_at"]) == (
        "under_review", start, arrival
    )  # fmt: skip
    events = [(e["event"], e["to_state"]) for e in lifecycle.timeline(conn, shipment_id=hot)]
    assert events == [
        ("create", "planned"), ("logger_attached", None), ("start", "in_transit"),
        ("arrive", "arrived"), ("verdict", None), ("verdict", None), ("review", "under_review"),
    ]  # fmt: skip

    queue = lifecycle.qa_queue(conn)
    assert [(e["reference"], e["has_exception"]) for e in queue] == [
        ("SHP-HOT", True), ("SHP-COOL", False)
    ]  # fmt: skip
    assert queue[0]["max_budget_share"] == pytest.approx(hot_s / BUDGET_8_25_S)

    # The verdicts are evidence: not even the owner's role of the services may change them.
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("UPDATE shipment_verdicts SET verdict = 'conforming'")


def test_a_swap_keeps_both_loggers_histories(conn: Conn) -> None:
    add_product(conn)
    add_device(conn, "LOG-A")
    add_device(conn, "LOG-B")
    sid = _book(conn, "SHP-1", [])
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
    bookings.attach(conn, OPERATOR, shipment_id=sid, device_id="LOG-A", now=t0)
    lifecycle.start(conn, OPERATOR, shipment_id=sid, now=t0)
    swap = t0 + timedelta(hours=1)
    bookings.detach(conn, OPERATOR, shipment_id=sid, device_id="LOG-A", now=swap,
                    reason="battery low")  # fmt: skip
    after = bookings.attach(conn, OPERATOR, shipment_id=sid, device_id="LOG-B", now=swap)
    assert [(a["device_id"], a["assigned_from"], a["assigned_to"]) for a in after] == [
        ("LOG-A", t0, swap), ("LOG-B", swap, None)
    ]  # fmt: skip


def _csv(rows: list[dict[str, Any]]) -> str:
    header = ["reference", "origin", "destination", "product_gtin", "lot", "quantity",
              "purchase_order"]  # fmt: skip
    lines = [",".join(header)]
    lines += [",".join(str(r.get(c, "")) for c in header) for r in rows]
    return "\n".join(lines) + "\n"


def test_an_import_with_bad_rows_applies_nothing_unless_told_to_skip_them(conn: Conn) -> None:
    gtin = add_product(conn)
    good = {"origin": "Basel", "destination": "Milan", "product_gtin": gtin, "lot": "L1",
            "quantity": 5}  # fmt: skip
    rows = [
        {**good, "reference": "IMP-1", "purchase_order": "PO-1"},
        {**good, "reference": "IMP-2", "quantity": "many"},  # line 3
        {**good, "reference": "IMP-3", "origin": ""},  # line 4
        {**good, "reference": "IMP-1"},  # line 5: twice in the file
        {**good, "reference": "IMP-5", "product_gtin": gtin_of("0950600099996")},  # unknown
        {**good, "reference": "IMP-6", "purchase_order": "PO-6"},
        {**good, "reference": "IMP-7", "product_gtin": gtin[:-1] + str((int(gtin[-1]) + 1) % 10)},
    ]
    text = _csv(rows)
    before = conn.execute("SELECT count(*) AS n FROM shipments").fetchone()

    refused = shipment_import.import_csv(conn, OPERATOR, text=text, now=datetime.now(UTC))
    assert refused.applied == 0 and refused.skipped_lines == []
    assert [(p.line, p.field) for p in refused.problems] == [
        (3, "quantity"), (4, "origin"), (5, "reference"), (6, "product_gtin"), (8, "product_gtin")
    ]  # fmt: skip
    assert "no product with GTIN" in str(refused.problems[3])
    assert "check digit" in str(refused.problems[4])
    assert str(refused.problems[0]) == "line 3, quantity: 'many' is not a whole number"
    assert conn.execute("SELECT count(*) AS n FROM shipments").fetchone() == before

    skipped = shipment_import.import_csv(
        conn, OPERATOR, text=text, now=datetime.now(UTC), skip_bad=True
    )
    assert skipped.applied == 2 and skipped.skipped_lines == [3, 4, 5, 6, 8]
    imported = conn.execute(
        "SELECT s.reference, s.status, i.lot, i.quantity, r.value AS po"
        " FROM shipments s JOIN shipment_items i USING (shipment_id)"
        " JOIN shipment_references r USING (shipment_id) ORDER BY s.reference"
    ).fetchall()
    assert imported == [
        {"reference": "IMP-1", "status": "planned", "lot": "L1", "quantity": 5, "po": "PO-1"},
        {"reference": "IMP-6", "status": "planned", "lot": "L1", "quantity": 5, "po": "PO-6"},
    ]
    again = shipment_import.import_csv(conn, OPERATOR, text=_csv(rows[:1]), now=datetime.now(UTC))
    assert [(p.line, p.field) for p in again.problems] == [(2, "reference")]
