"""The history scenario back-filled into the real database (services/history.py): finished
shipments on the promised lanes and carriers, with excursion rates that differ as promised
(computed here from the stored readings, not from the simulator's figures); their alerts raised
by the rules engine and resolved as simulated, none notified, none left open after the live
engine's round; their loggers' calibrations valid today."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime

from psycopg_pool import AsyncConnectionPool

from alerts.rounds import RulesEngine
from coldchain.settings import Settings
from db.types import Conn
from security.roles import Role
from services.caller import Caller
from services.history import HISTORY_ACTOR, backfill_history
from simulator.scenario import load_scenario


async def live_round(settings: Settings) -> None:
    """What the platform's engine does next: follow the change log, then a periodic pass."""
    async with AsyncConnectionPool(settings.db.dsn, open=False, min_size=1, max_size=2) as pool:
        await pool.wait()
        engine = RulesEngine(pool, settings)
        await engine.setup()
        await engine.process_changes()
        await engine.periodic()


def test_history_backfills_finished_shipments_with_different_risk(
    conn: Conn, caller: Callable[[Role], Caller], settings: Settings
) -> None:
    # With a recipient configured: the live engine would notify it of any alert it opens.
    alerts_cfg = settings.alerts.model_copy(update={"webhook_urls": ["http://127.0.0.1:9/hook"]})
    settings = settings.model_copy(update={"alerts": alerts_cfg})
    now = datetime.now(UTC).replace(microsecond=0)
    sc = load_scenario("history")
    done = backfill_history(conn, caller("admin"), scenario=sc, now=now, settings=settings)
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
    # The history's alerts: the engine's own (it found excursions), all resolved as simulated.
    asyncio.run(live_round(settings))
    history = "SELECT shipment_id FROM shipments WHERE reference = ANY(%(refs)s)"
    refs = {"refs": [r["reference"] for r in rows]}
    alerts = conn.execute(
        f"SELECT alert_id, state, resolved_by, acked_by FROM alerts WHERE shipment_id IN ({history})",
        refs,
    ).fetchall()
    out = sum(r["out"] for r in rows)
    assert out > 0 and len(alerts) >= 1
    assert [a for a in alerts if a["state"] != "resolved"] == []
    assert len(alerts) == done.alerts_opened == done.alerts_settled
    assert {(a["resolved_by"], a["acked_by"]) for a in alerts} == {(HISTORY_ACTOR, HISTORY_ACTOR)}
    events = conn.execute(
        "SELECT kind, count(*) AS n FROM alert_events WHERE actor = %s GROUP BY kind",
        (HISTORY_ACTOR,),
    ).fetchall()
    assert {e["kind"]: e["n"] for e in events} == {
        "acknowledged": len(alerts),
        "resolved": len(alerts),
    }
    # No notification of them was queued, neither by the back-fill nor by the live round.
    queued = conn.execute(
        f"SELECT count(*) AS n FROM notifications n JOIN alerts a USING (alert_id)"
        f" WHERE a.shipment_id IN ({history})",
        refs,
    ).fetchone()
    assert queued is not None and queued["n"] == 0 and done.notifications_suppressed == 0
    # The loggers' calibrations are valid today.
    due = conn.execute(
        "SELECT min(d.calibration_due) AS first FROM devices d"
        " JOIN device_assignments a USING (device_id)"
        f" WHERE a.shipment_id IN ({history})",
        refs,
    ).fetchone()
    assert due is not None and due["first"] > now.date()
    again = backfill_history(conn, caller("admin"), scenario=sc, now=now, settings=settings)
    assert again.skipped and again.alerts_settled == 0
