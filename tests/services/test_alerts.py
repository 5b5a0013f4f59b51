"""services.alerts against the real database: who may act, the comment and assignee rules, the
state rules, and the audit trail naming the caller."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from coldchain.errors import (
    AlertConflictError,
    InvalidAlertActionError,
    NotFoundError,
    PermissionDeniedError,
)
from dashboard.pages.alerts import perform
from security.accounts import principal_for_secret
from security.roles import Role
from services import alerts as service
from services.caller import Caller
from tests.fixtures.auth import PEOPLE, Person, add_user
from tests.fixtures.web import add_alert, add_product, add_shipment
from tests.services.conftest import SOURCE, audit_rows

pytestmark = pytest.mark.integration

CallerOf = Callable[[Role], Caller]


@pytest.fixture
def alert(db_dsn: str) -> int:
    """An open alert of shipment SHP-1, as the rules engine would write it."""
    with psycopg.connect(db_dsn) as rows:
        shipment = add_shipment(rows, "SHP-1", product=add_product(rows))
        return add_alert(rows, shipment, triggered_at=datetime.now(UTC) - timedelta(minutes=30))


def _state(conn: psycopg.Connection[Any], alert_id: int) -> dict[str, Any]:
    row = conn.execute(
        "SELECT state, acked_by, ack_comment, assignee, resolved_by,"
        " (SELECT count(*) FROM alert_events e WHERE e.alert_id = a.alert_id) AS events"
        " FROM alerts a WHERE alert_id = %s",
        (alert_id,),
    ).fetchone()
    assert row is not None
    return dict(row)


def test_acknowledge_records_the_caller_and_the_comment(
    conn: psycopg.Connection[Any], caller: CallerOf, alert: int
) -> None:
    operator = caller("operator")
    row = service.acknowledge(conn, operator, alert_id=alert, comment="  called the driver ")
    assert (row["state"], row["acked_by"], row["ack_comment"]) == (
        "acknowledged",
        operator.actor,
        "called the driver",
    )
    assert [e["kind"] for e in row["events"]] == ["opened", "acknowledged"]
    (entry,) = [r for r in audit_rows(conn, "alerts") if r["action"] == "update"]
    assert (entry["actor"], entry["actor_role"], entry["reason"]) == (
        PEOPLE["operator"][0],
        "operator",
        "called the driver",
    )
    assert entry["entity_id"] == str(alert)
    assert entry["source"].startswith(SOURCE)
    assert "not verified" not in entry["source"]  # the token was checked by the database
    assert (entry["before"]["state"], entry["after"]["state"]) == ("open", "acknowledged")


@pytest.mark.parametrize("role", ["viewer", "qa"])
@pytest.mark.parametrize("action", [service.acknowledge, service.resolve])
def test_a_role_without_alerts_act_changes_nothing(
    conn: psycopg.Connection[Any], caller: CallerOf, alert: int, role: Role, action: Any
) -> None:
    before = _state(conn, alert)
    with pytest.raises(PermissionDeniedError, match=r"'alerts\.act' permission"):
        action(conn, caller(role), alert_id=alert, comment="not mine to do")
    with pytest.raises(PermissionDeniedError):
        service.assign(
            conn, caller(role), alert_id=alert, assignee=PEOPLE["operator"][0], comment=None
        )
    assert _state(conn, alert) == before
    assert [r for r in audit_rows(conn, "alerts") if r["action"] == "update"] == []


def test_a_comment_over_the_limit_is_refused_naming_the_field(
    conn: psycopg.Connection[Any], caller: CallerOf, alert: int
) -> None:
    before = _state(conn, alert)
    longest = "x" * service.COMMENT_MAX_LENGTH
    with pytest.raises(InvalidAlertActionError, match=r"^comment: "):
        service.resolve(conn, caller("operator"), alert_id=alert, comment=longest + "y")
    assert _state(conn, alert) == before
    row = service.resolve(conn, caller("operator"), alert_id=alert, comment=longest)
    assert row["state"] == "resolved" and row["events"][-1]["comment"] == longest


@pytest.mark.parametrize("comment", [None, "", "   \n "])
def test_acknowledge_without_a_comment_is_refused_naming_the_field(
    conn: psycopg.Connection[Any], caller: CallerOf, alert: int, comment: str | None
) -> None:
    before = _state(conn, alert)
    with pytest.raises(InvalidAlertActionError, match=r"^comment: required to acknowledge"):
        service.acknowledge(conn, caller("operator"), alert_id=alert, comment=comment)
    assert _state(conn, alert) == before
    assert [r for r in audit_rows(conn, "alerts") if r["action"] == "update"] == []


def test_a_blank_comment_on_resolve_is_no_comment(
    conn: psycopg.Connection[Any], caller: CallerOf, alert: int
) -> None:
    row = service.resolve(conn, caller("admin"), alert_id=alert, comment="   ")
    assert row["events"][-1]["comment"] is None
    (entry,) = [r for r in audit_rows(conn, "alerts") if r["action"] == "update"]
    assert entry["reason"] is None


def test_assign_takes_an_active_user_in_any_case(
    conn: psycopg.Connection[Any], db_dsn: str, caller: CallerOf, alert: int
) -> None:
    add_user(db_dsn, "gone.user", "operator")
    conn.execute("UPDATE app_users SET active = false WHERE username = 'gone.user'")
    before = _state(conn, alert)
    for nobody in ("gone.user", "no.such.user"):
        with pytest.raises(InvalidAlertActionError, match=f"^assignee: '{nobody}'"):
            service.assign(conn, caller("operator"), alert_id=alert, assignee=nobody, comment=None)
    assert _state(conn, alert) == before
    operator = PEOPLE["operator"][0]
    row = service.assign(
        conn, caller("admin"), alert_id=alert, assignee=f" {operator.upper()} ", comment="yours"
    )
    assert row["assignee"] == operator
    assert row["events"][-1]["actor"] == PEOPLE["admin"][0]
    (entry,) = [r for r in audit_rows(conn, "alerts") if r["action"] == "update"]
    assert (entry["actor"], entry["reason"]) == (PEOPLE["admin"][0], "yours")


def test_the_state_rules_and_a_missing_alert(
    conn: psycopg.Connection[Any], caller: CallerOf, alert: int
) -> None:
    operator = caller("operator")
    service.resolve(conn, operator, alert_id=alert, comment=None)
    with pytest.raises(AlertConflictError, match=f"alert {alert}"):
        service.acknowledge(conn, operator, alert_id=alert, comment="too late")
    missing = alert + 1000
    with pytest.raises(NotFoundError, match=f"alert {missing}"):
        service.resolve(conn, operator, alert_id=missing, comment=None)
    with pytest.raises(NotFoundError):
        service.get_alert(conn, alert_id=missing)


def test_list_filters_by_state_and_shipment(
    conn: psycopg.Connection[Any], db_dsn: str, caller: CallerOf, alert: int
) -> None:
    with psycopg.connect(db_dsn) as rows:
        other = add_shipment(rows, "SHP-2", product=None)
        second = add_alert(rows, other, severity="warning", triggered_at=datetime.now(UTC))
    service.acknowledge(conn, caller("operator"), alert_id=second, comment="seen")
    assert [a["id"] for a in service.list_alerts(conn, states=["open"]).items] == [alert]
    page = service.list_alerts(conn, shipment="SHP-2")
    assert ([a["id"] for a in page.items], page.total) == ([second], 1)
    assert service.list_alerts(conn, states=["open"], shipment="SHP-2").total == 0
    with pytest.raises(NotFoundError, match="SHP-404"):
        service.list_alerts(conn, shipment="SHP-404")


def test_the_dashboard_acts_through_the_service(
    conn: psycopg.Connection[Any], people: dict[Role, Person], alert: int
) -> None:
    """The alerts page's action: the same refusals as the API, as messages on screen."""
    viewer = principal_for_secret(conn, people["viewer"].token)
    operator = principal_for_secret(conn, people["operator"].token)
    assert viewer is not None and operator is not None
    before = _state(conn, alert)
    ok, message = perform(
        conn, alert_id=alert, action="acknowledge", principal=viewer, comment=None
    )
    assert not ok and "viewer" in message
    ok, message = perform(
        conn, alert_id=alert, action="acknowledge", principal=operator, comment=" "
    )
    assert not ok and message.startswith("Not acknowledged: type a comment in this row")
    too_long = "x" * (service.COMMENT_MAX_LENGTH + 1)
    ok, message = perform(
        conn, alert_id=alert, action="resolve", principal=operator, comment=too_long
    )
    assert not ok and message.startswith("comment: ")
    assert _state(conn, alert) == before
    ok, message = perform(
        conn, alert_id=alert, action="resolve", principal=operator, comment="done", source=SOURCE
    )
    assert ok and _state(conn, alert)["resolved_by"] == operator.actor
    (entry,) = [r for r in audit_rows(conn, "alerts") if r["action"] == "update"]
    assert (entry["actor"], entry["reason"]) == (operator.actor, "done")
