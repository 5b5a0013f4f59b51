"""services.alerts.alert_board (the alerts page's read) and assignees, against the real database:
each alert's condition (active, ended, cleared) from the rules engine's own rows, when the
product left its range, the peak, the logger's current temperature, and who was notified."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb

from coldchain.errors import PermissionDeniedError
from coldchain.telemetry import Reading
from db.queries import alerts as alert_q
from security.roles import Role
from services import alerts as service
from services.caller import Caller
from tests.fixtures.auth import PEOPLE, add_user
from tests.fixtures.web import (
    add_alert,
    add_device,
    add_excursion,
    add_notification,
    add_product,
    add_shipment,
    ingest,
)

pytestmark = pytest.mark.integration

CallerOf = Callable[[Role], Caller]
NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def seeded(db_dsn: str) -> dict[str, Any]:
    """Four alerts: one still out of range, one ended within the clear delay, one cleared, one
    "offline" whose rule state still holds; readings and notifications for the first."""
    out: dict[str, Any] = {}
    with psycopg.connect(db_dsn) as conn:
        product = add_product(conn)
        for device in ("LOG-A", "LOG-B", "LOG-C", "LOG-D"):
            add_device(conn, device)
        ships = {k: add_shipment(conn, f"SHP-{k}", product=product) for k in "ABCD"}
        out["ships"] = ships
        # A: two excursions, the second still under way
        a = add_alert(conn, ships["A"], triggered_at=NOW - timedelta(minutes=50), device_id="LOG-A")
        out["a_start"] = NOW - timedelta(hours=2)
        for start, end, peak in (
            (out["a_start"], NOW - timedelta(minutes=90), 12.8),
            (NOW - timedelta(minutes=60), None, 10.1),
        ):
            add_excursion(
                conn,
                ships["A"],
                "LOG-A",
                start=start,
                end=end,
                last_out=NOW,
                max_c=peak,
                alert_id=a,
            )
        for target, tier, minutes, status, error in (
            ("oncall@example.org", 0, 49, "failed", "550 mailbox full"),
            ("oncall@example.org", 1, 30, "delivered", None),
            ("manager@example.org", 1, 30, "failed", "connection refused"),
        ):
            add_notification(
                conn,
                a,
                target,
                tier=tier,
                at=NOW - timedelta(minutes=minutes),
                status=status,
                error=error,
            )
        # B: ended, inside the clear delay; C: ended and cleared by the engine
        for key in "BC":
            alert = add_alert(
                conn,
                ships[key],
                severity="major",
                triggered_at=NOW - timedelta(hours=3),
                device_id=f"LOG-{key}",
            )
            add_excursion(
                conn,
                ships[key],
                f"LOG-{key}",
                start=NOW - timedelta(hours=4),
                end=NOW - timedelta(minutes=20),
                last_out=NOW - timedelta(minutes=21),
                max_c=9.9,
                alert_id=alert,
            )
            out[key.lower()] = alert
        conn.execute("UPDATE alerts SET cleared_at = now() WHERE alert_id = %s", (out["c"],))
        # D: a logger offline since 40 min, still holding
        d = add_alert(
            conn,
            ships["D"],
            rule_key="device_offline",
            severity="warning",
            triggered_at=NOW - timedelta(minutes=10),
            device_id="LOG-D",
        )
        out["d_since"] = NOW - timedelta(minutes=40)
        conn.execute(
            "INSERT INTO rule_states (shipment_id, device_id, rule_key, holding, as_of, since,"
            " alert_id, thresholds) VALUES (%s, 'LOG-D', 'device_offline', true, %s, %s, %s, %s)",
            (ships["D"], NOW, out["d_since"], d, Jsonb({})),
        )
        out["a"], out["d"] = a, d
    ingest(db_dsn, [Reading("LOG-A", NOW - timedelta(minutes=1), 9.7, 50.0)])
    return out


def test_each_row_says_whether_its_condition_is_still_under_way(
    conn: psycopg.Connection[Any], seeded: dict[str, Any]
) -> None:
    rows = {r["id"]: r for r in service.alert_board(conn).items}
    a, b, c, d = (rows[seeded[k]] for k in "abcd")
    assert (a["condition"], a["condition_ended_at"]) == ("active", None)
    assert (b["condition"], b["condition_ended_at"]) == ("ended", NOW - timedelta(minutes=20))
    assert (c["condition"], c["condition_ended_at"]) == ("cleared", NOW - timedelta(minutes=20))
    assert (d["condition"], d["condition_ended_at"]) == ("active", None)
    # open · condition cleared: the alert's state is another matter
    assert {r["state"] for r in (a, b, c, d)} == {"open"}


def test_each_row_has_the_excursion_start_peak_and_current_temperature(
    conn: psycopg.Connection[Any], seeded: dict[str, Any]
) -> None:
    rows = {r["id"]: r for r in service.alert_board(conn).items}
    a, d = rows[seeded["a"]], rows[seeded["d"]]
    # the product left its range at the first excursion's start, before the alarm
    assert a["condition_since"] == seeded["a_start"] < a["triggered_at"]
    assert (a["peak_high_c"], a["peak_low_c"]) == (12.8, None)
    assert (a["current_c"], a["current_at"]) == (9.7, NOW - timedelta(minutes=1))
    # another rule: its episode's start; no excursion, so no peak; no reading, no current
    assert (d["condition_since"], d["peak_high_c"], d["current_c"]) == (
        seeded["d_since"],
        None,
        None,
    )


def test_notified_is_the_latest_notification_per_recipient(
    conn: psycopg.Connection[Any], seeded: dict[str, Any]
) -> None:
    rows = {r["id"]: r for r in service.alert_board(conn).items}
    notified = rows[seeded["a"]]["notified"]
    assert [(n["target"], n["tier"], n["status"], n["error"]) for n in notified] == [
        ("manager@example.org", 1, "failed", "connection refused"),
        ("oncall@example.org", 1, "delivered", None),
    ]
    assert rows[seeded["b"]]["notified"] == []


def test_the_board_keeps_the_list_order_and_filters(
    conn: psycopg.Connection[Any], seeded: dict[str, Any]
) -> None:
    board = service.alert_board(conn, severities=["major", "critical"])
    listed = service.list_alerts(conn, severities=["major", "critical"])
    assert [r["id"] for r in board.items] == [r["id"] for r in listed.items]
    assert board.total == listed.total == 3
    page = service.alert_board(conn, limit=2, offset=1)
    assert [r["id"] for r in page.items] == [r["id"] for r in service.list_alerts(conn).items][1:3]
    assert page.total == 4


def test_assignees_are_the_active_people_who_act_on_alerts(
    conn: psycopg.Connection[Any], db_dsn: str, caller: CallerOf
) -> None:
    add_user(db_dsn, "gone.user", "operator")
    conn.execute("UPDATE app_users SET active = false WHERE username = 'gone.user'")
    names = [p["username"] for p in service.assignees(conn, caller("operator"))]
    assert sorted(names) == sorted([PEOPLE["operator"][0], PEOPLE["admin"][0]])
    with pytest.raises(PermissionDeniedError):
        service.assignees(conn, caller("viewer"))


BULK = 5000


def _bulk(conn: psycopg.Connection[Any]) -> None:
    """BULK shipments with an open alert each, two excursions, four notifications (two
    recipients, two events), a rule state and a latest reading: the page at fleet scale."""
    conn.execute(
        "INSERT INTO shipments (reference, origin, destination, status, carrier)"
        " SELECT 'BULK-' || g, 'Rotterdam', 'Basel', 'in_transit', 'Frigo Express'"
        " FROM generate_series(1, %s) g",
        (BULK,),
    )
    conn.execute(
        "INSERT INTO alerts (shipment_id, rule_key, severity, title, device_id, triggered_at)"
        " SELECT shipment_id, 'temp-high', (ARRAY['info','warning','major','critical'])"
        "[1 + shipment_id % 4], 'hot', 'D' || shipment_id,"
        " now() - make_interval(mins => shipment_id::int) FROM shipments"
    )
    conn.execute(
        "INSERT INTO excursions (shipment_id, device_id, direction, start_ts, end_ts,"
        " last_out_ts, min_c, max_c, degree_minutes, n_readings, alarm, rule_key, thresholds,"
        " alert_id)"
        " SELECT a.shipment_id, a.device_id, 'high', a.triggered_at - make_interval(mins => k),"
        " CASE WHEN k = 1 THEN NULL ELSE a.triggered_at END, a.triggered_at, 8.2, 9 + k, 10, 5,"
        " true, 'temp-high', '{}', a.alert_id FROM alerts a, generate_series(1, 2) k"
    )
    conn.execute(
        "INSERT INTO notifications (alert_id, event, tier, channel, target, payload)"
        " SELECT a.alert_id, e, t, 'email', 'tier' || t || '@example.org', '{}'"
        " FROM alerts a, unnest(ARRAY['opened', 'escalated']) e, generate_series(0, 1) t"
    )
    conn.execute(
        "INSERT INTO rule_states (shipment_id, device_id, rule_key, holding, as_of, alert_id)"
        " SELECT shipment_id, device_id, 'temp-high', false, now(), alert_id FROM alerts"
    )
    conn.execute(
        "INSERT INTO devices (device_id, model) SELECT device_id, 'TL-300' FROM alerts;"
        " INSERT INTO device_state (device_id, ts, temp_c, received_at)"
        " SELECT device_id, now(), 9.5, now() FROM alerts"
    )
    conn.execute("ANALYZE")


def _nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    found = [plan]
    for child in plan.get("Plans", []):
        found += _nodes(child)
    return found


def _found_by_key(node: dict[str, Any]) -> bool:
    """An index scan driven by a condition (not a walk through the whole index)."""
    if node["Node Type"] == "Bitmap Heap Scan":
        return any("Index Cond" in child for child in node.get("Plans", []))
    return "Index" in node["Node Type"] and "Index Cond" in node


def test_the_board_reads_each_alerts_rows_through_an_index_at_fleet_scale(
    conn: psycopg.Connection[Any],
) -> None:
    """One page of 500 out of 5,000 alerts: the excursions, rule states and notifications of
    each are found through an index (the cost is the page's), never by reading the tables."""
    _bulk(conn)
    params = {"states": None, "severities": None, "limit": 500, "offset": 0}
    query = alert_q.ALERT_BOARD
    row = conn.execute("EXPLAIN (FORMAT JSON) " + query, params).fetchone()
    assert row is not None
    nodes = _nodes(next(iter(row.values()))[0]["Plan"])
    per_alert = {"excursions", "rule_states", "notifications"}
    read = {n["Relation Name"]: n for n in nodes if n.get("Relation Name") in per_alert}
    assert set(read) == per_alert
    assert {rel for rel, node in read.items() if _found_by_key(node)} == per_alert, read
    started = time.perf_counter()
    page = service.alert_board(conn, limit=500)
    elapsed = time.perf_counter() - started
    assert (len(page.items), page.total) == (500, BULK)
    assert {r["condition"] for r in page.items} == {"active"}
    assert all(len(r["notified"]) == 2 for r in page.items)
    print(f"alert_board: 500 of {BULK} alerts in {elapsed * 1000:.0f} ms")
