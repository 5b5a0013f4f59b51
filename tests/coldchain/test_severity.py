"""Severity: one definition in Python, and the database ranks and allows exactly the same names."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from psycopg.rows import dict_row

from alerts.rules import Severity as RulesSeverity
from coldchain import severity
from db.queries import alerts as alert_q
from db.queries import shipments as shipment_q
from tests.fixtures.web import add_alert, add_product, add_shipment

NOW = datetime.now(UTC).replace(microsecond=0)


def test_names_order_and_rank() -> None:
    assert severity.SEVERITIES == ("info", "warning", "major", "critical")
    assert severity.STRONGEST_FIRST == ("critical", "major", "warning", "info")
    assert [severity.RANK[s] for s in severity.SEVERITIES] == [1, 2, 3, 4]
    # The rules file and the engine use this one definition.
    assert RulesSeverity is severity.Severity


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [("info", "critical", "critical"), ("major", "warning", "major"), ("major", "major", "major")],
)
def test_stronger(a: str, b: str, expected: str) -> None:
    assert severity.stronger(a, b) == expected
    assert severity.strongest([None, a, b, None]) == expected


def test_strongest_of_nothing() -> None:
    assert severity.strongest([]) is None
    assert severity.strongest([None]) is None


def test_sql_rank_agrees_with_python(db_dsn: str) -> None:
    """The generated CASE, run by the real database, gives each name its Python rank and back."""
    with psycopg.connect(db_dsn) as conn:
        rows = conn.execute(
            f"SELECT v, {severity.rank_sql('v')}, {severity.name_sql(severity.rank_sql('v'))}"
            " FROM unnest(%s::text[]) AS t(v)",
            ([*severity.SEVERITIES, "bogus"],),
        ).fetchall()
    expected: dict[str, tuple[int | None, str | None]] = {
        s: (severity.RANK[s], s) for s in severity.SEVERITIES
    }
    expected["bogus"] = (None, None)
    assert {v: (rank, name) for v, rank, name in rows} == expected


def test_database_constraints_allow_exactly_the_python_names(db_dsn: str) -> None:
    """Every CHECK on a ``severity`` column (migrations 0003, 0004) lists the Python names."""
    with psycopg.connect(db_dsn) as conn:
        checks = conn.execute(
            "SELECT conrelid::regclass::text, pg_get_constraintdef(oid) FROM pg_constraint"
            " WHERE contype = 'c' AND pg_get_constraintdef(oid) LIKE '%%severity%%'"
        ).fetchall()
    tables = {table for table, _ in checks}
    assert {"alerts", "rule_states"} <= tables, checks
    for table, definition in checks:
        names = set(re.findall(r"'(\w+)'::text", definition))
        assert names == set(severity.SEVERITIES), (table, definition)


def test_fleet_and_alert_list_rank_by_the_one_definition(db_dsn: str) -> None:
    """The fleet's worst severity and condition, and the alert list's order, on the real DB."""
    with psycopg.connect(db_dsn) as conn:
        product = add_product(conn)
        ids = {
            name: add_shipment(conn, f"SHP-{name.upper()}", product=product, status="arrived")
            for name in severity.SEVERITIES
        }
        for n, name in enumerate(severity.SEVERITIES):
            add_alert(conn, ids[name], severity="info", triggered_at=NOW - timedelta(hours=9))
            add_alert(
                conn,
                ids[name],
                rule_key=f"rule-{name}",
                severity=name,
                triggered_at=NOW - timedelta(hours=n + 1),
            )
    with psycopg.connect(db_dsn, row_factory=dict_row) as conn:
        rows = {
            name: shipment_q.get_shipment_summary(conn=conn, shipment_id=sid, offline_factor=10)
            for name, sid in ids.items()
        }
        page = alert_q.list_alerts(conn=conn, states=["open"])
    assert {name: r["worst_severity"] for name, r in rows.items()} == {
        s: s for s in severity.SEVERITIES
    }
    assert {name: r["condition"] for name, r in rows.items()} == {
        "info": "ok",
        "warning": "warning",
        "major": "alarm",
        "critical": "alarm",
    }
    order = [a["severity"] for a in page.items]
    assert order == sorted(order, key=severity.RANK.__getitem__, reverse=True)
    assert order[:3] == ["critical", "major", "warning"]
