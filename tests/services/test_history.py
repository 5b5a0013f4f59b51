"""The history scenario back-filled into the real database (services/history.py): finished
shipments on the promised lanes and carriers, with excursion rates that differ as promised
(computed here from the stored readings, not from the simulator's figures)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from db.types import Conn
from security.roles import Role
from services.caller import Caller
from services.history import backfill_history
from simulator.scenario import load_scenario


def test_history_backfills_finished_shipments_with_different_risk(
    conn: Conn, caller: Callable[[Role], Caller]
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    sc = load_scenario("history")
    done = backfill_history(
        conn, caller("admin"), scenario=sc, now=now, gap_factor=2.0, topic_root="t"
    )
    assert not done.skipped and done.shipments == sc.fleet.shipments and done.readings > 0
    rows = conn.execute(
        "SELECT s.reference, s.status, s.started_at, s.arrived_at, l.code AS lane, c.name AS carrier,"
        "       bool_or(r.temp_c > p.temp_max_c OR r.temp_c < p.temp_min_c) AS out"
        " FROM shipments s JOIN lanes l USING (lane_id) JOIN carriers c USING (carrier_id)"
        " JOIN products p ON p.gtin = s.product_gtin"
        " JOIN device_assignments a ON a.shipment_id = s.shipment_id"
        " JOIN readings r ON r.device_id = a.device_id AND a.during @> r.ts"
        " GROUP BY s.shipment_id, l.code, c.name"
    ).fetchall()
    assert len(rows) == sc.fleet.shipments
    assert {r["status"] for r in rows} <= {"under_review", "released"}
    assert all(r["started_at"] < r["arrived_at"] < now for r in rows)
    # The promised lanes and carriers, two carriers on the demo's Basel–Milan lane.
    pairs = {(r["lane"], r["carrier"]) for r in rows}
    assert pairs == {
        ("DEMO-BSL-MIL", "Alpine Cold Logistics"),
        ("DEMO-BSL-MIL", "Budget Frigo"),
        ("DEMO-FRA-AMS", "Rhine Reefer BV"),
        ("DEMO-BRU-PAR", "Benelux Frigo"),
        ("HIST-BSL-MAD", "Iberia Cold Road"),
    }

    def rate(**match: str) -> float:
        chosen = [r for r in rows if all(r[k] == v for k, v in match.items())]
        return sum(r["out"] for r in chosen) / len(chosen)

    assert rate(lane="HIST-BSL-MAD") > 2 * rate(lane="DEMO-BRU-PAR")
    assert rate(lane="HIST-BSL-MAD") > 2 * rate(lane="DEMO-FRA-AMS")
    assert rate(carrier="Budget Frigo") > 2 * rate(carrier="Alpine Cold Logistics")
    # The months it spans, and a second run changes nothing.
    months = {r["started_at"].strftime("%Y-%m") for r in rows}
    assert len(months) >= 3
    again = backfill_history(
        conn, caller("admin"), scenario=sc, now=now, gap_factor=2.0, topic_root="t"
    )
    assert again.skipped
