"""Alerts as people handle them: the list, one alert with its events, and the state machine.

A forbidden transition (acknowledging a resolved alert, say) raises
:class:`~coldchain.errors.AlertConflictError`; the caller turns it into a 409 or a message on
screen. Every change writes an alert event in the same transaction.
"""

from __future__ import annotations

from datetime import UTC
from typing import Any, Literal

from psycopg.types.json import Jsonb

from coldchain import severity
from coldchain.errors import AlertConflictError, NotFoundError
from db.types import Conn, Page, Row

AlertAction = Literal["acknowledge", "resolve", "assign"]


_ALERT_COLUMNS = """
    x.alert_id AS id, x.shipment_id, s.reference AS shipment_reference, x.rule_key, x.severity,
    x.state, x.title, x.device_id, x.triggered_at, x.value, x.thresholds, x.details,
    x.assignee, x.acked_by, x.acked_at, x.ack_comment, x.resolved_by, x.resolved_at,
    x.escalation_level, x.cleared_at, x.created_at, x.updated_at
"""

LIST_ALERTS = f"""
SELECT {_ALERT_COLUMNS}, count(*) OVER () AS total
FROM alerts x
JOIN shipments s ON s.shipment_id = x.shipment_id
WHERE (%(states)s::text[] IS NULL OR x.state = ANY(%(states)s))
  AND (%(severities)s::text[] IS NULL OR x.severity = ANY(%(severities)s))
  AND (%(shipment_id)s::bigint IS NULL OR x.shipment_id = %(shipment_id)s)
ORDER BY (x.state = 'resolved'), {severity.rank_sql("x.severity")} DESC,
         x.triggered_at, x.alert_id
LIMIT %(limit)s OFFSET %(offset)s
"""

COUNT_ALERTS = """
SELECT count(*) AS total FROM alerts x
WHERE (%(states)s::text[] IS NULL OR x.state = ANY(%(states)s))
  AND (%(severities)s::text[] IS NULL OR x.severity = ANY(%(severities)s))
  AND (%(shipment_id)s::bigint IS NULL OR x.shipment_id = %(shipment_id)s)
"""

SELECT_ALERT = f"""
SELECT {_ALERT_COLUMNS}
FROM alerts x
JOIN shipments s ON s.shipment_id = x.shipment_id
WHERE x.alert_id = %(alert_id)s
"""

SELECT_ALERT_EVENTS = """
SELECT id, at, kind, actor, comment, data FROM alert_events
WHERE alert_id = %(alert_id)s ORDER BY at, id
"""

LOCK_ALERT = """
SELECT state, assignee, acked_by, acked_at, resolved_by, resolved_at
FROM alerts WHERE alert_id = %(alert_id)s
FOR UPDATE
"""

ACKNOWLEDGE_ALERT = """
UPDATE alerts SET state = 'acknowledged', acked_by = %(by)s, acked_at = now(),
    ack_comment = %(comment)s, updated_at = now()
WHERE alert_id = %(alert_id)s
"""

RESOLVE_ALERT = """
UPDATE alerts SET state = 'resolved', resolved_by = %(by)s, resolved_at = now(), updated_at = now()
WHERE alert_id = %(alert_id)s
"""

ASSIGN_ALERT = """
UPDATE alerts SET assignee = %(assignee)s, updated_at = now()
WHERE alert_id = %(alert_id)s
"""

INSERT_ALERT_EVENT = """
INSERT INTO alert_events (alert_id, kind, actor, comment, data)
VALUES (%(alert_id)s, %(kind)s, %(actor)s, %(comment)s, %(data)s)
"""


def list_alerts(
    *,
    conn: Conn,
    states: list[str] | None = None,
    severities: list[str] | None = None,
    shipment_id: int | None = None,
    limit: int = 100,
    offset: int = 0,
) -> Page:
    """Alerts, unresolved first, then by severity (strongest first) and age (oldest first)."""
    params: dict[str, Any] = {
        "states": states or None,
        "severities": severities or None,
        "shipment_id": shipment_id,
        "limit": limit,
        "offset": offset,
    }
    rows = conn.execute(LIST_ALERTS, params).fetchall()
    if rows:
        total = int(rows[0]["total"])
    elif offset == 0:
        total = 0
    else:
        found = conn.execute(COUNT_ALERTS, params).fetchone()
        total = int(found["total"]) if found else 0
    items = [{k: v for k, v in r.items() if k != "total"} for r in rows]
    return Page(items=items, total=total, limit=limit, offset=offset)


def get_alert(*, conn: Conn, alert_id: int) -> Row:
    """One alert with its events (oldest first); raises NotFoundError."""
    row = conn.execute(SELECT_ALERT, {"alert_id": alert_id}).fetchone()
    if row is None:
        raise NotFoundError(f"alert {alert_id} not found")
    row["events"] = conn.execute(SELECT_ALERT_EVENTS, {"alert_id": alert_id}).fetchall()
    return row


def transition_error(*, state: str, action: AlertAction) -> str | None:
    """Why ``action`` is not allowed on an alert in ``state``, or None when it is.

    open → acknowledged → resolved; open → resolved; a resolved alert is final, and an
    acknowledged one is not acknowledged twice. Assigning works until the alert is resolved.
    """
    if state == "resolved":
        verb = {"acknowledge": "acknowledged", "resolve": "resolved", "assign": "assigned"}[action]
        return f"the alert is already resolved and cannot be {verb}"
    if action == "acknowledge" and state == "acknowledged":
        return "the alert is already acknowledged"
    return None


def _locked_state(conn: Conn, alert_id: int) -> Row:
    row = conn.execute(LOCK_ALERT, {"alert_id": alert_id}).fetchone()
    if row is None:
        raise NotFoundError(f"alert {alert_id} not found")
    return row


def _conflict(alert_id: int, action: AlertAction, state: Row) -> AlertConflictError | None:
    why = transition_error(state=state["state"], action=action)
    if why is None:
        return None
    if state["state"] == "resolved":
        who = f" by {state['resolved_by']}" if state["resolved_by"] else ""
        at = state["resolved_at"]
        when = f" at {at.astimezone(UTC):%Y-%m-%d %H:%M} UTC" if at else ""
        why += f" (resolved{who}{when})"
    elif state["state"] == "acknowledged":
        who = f" by {state['acked_by']}" if state["acked_by"] else ""
        why += f" (acknowledged{who})"
    return AlertConflictError(f"alert {alert_id}: {why}")


def acknowledge_alert(*, conn: Conn, alert_id: int, by: str, comment: str | None) -> Row:
    """Acknowledge an open alert and record who and why, in one transaction.

    Raises NotFoundError, or AlertConflictError when the alert is acknowledged or resolved.
    """
    comment = _blank_to_none(comment)
    with conn.transaction():
        state = _locked_state(conn, alert_id)
        if (err := _conflict(alert_id, "acknowledge", state)) is not None:
            raise err
        conn.execute(ACKNOWLEDGE_ALERT, {"alert_id": alert_id, "by": by, "comment": comment})
        _event(conn, alert_id, "acknowledged", by, comment, {"from": state["state"]})
    return get_alert(conn=conn, alert_id=alert_id)


def resolve_alert(*, conn: Conn, alert_id: int, by: str, comment: str | None) -> Row:
    """Resolve an open or acknowledged alert and record who and why, in one transaction.

    Raises NotFoundError, or AlertConflictError when it is resolved already.
    """
    comment = _blank_to_none(comment)
    with conn.transaction():
        state = _locked_state(conn, alert_id)
        if (err := _conflict(alert_id, "resolve", state)) is not None:
            raise err
        conn.execute(RESOLVE_ALERT, {"alert_id": alert_id, "by": by})
        _event(conn, alert_id, "resolved", by, comment, {"from": state["state"]})
    return get_alert(conn=conn, alert_id=alert_id)


def assign_alert(*, conn: Conn, alert_id: int, assignee: str, by: str) -> Row:
    """Assign an unresolved alert to someone and record who did it, in one transaction."""
    with conn.transaction():
        state = _locked_state(conn, alert_id)
        if (err := _conflict(alert_id, "assign", state)) is not None:
            raise err
        conn.execute(ASSIGN_ALERT, {"alert_id": alert_id, "assignee": assignee})
        data = {"assignee": assignee, "previous": state["assignee"]}
        _event(conn, alert_id, "assigned", by, None, data)
    return get_alert(conn=conn, alert_id=alert_id)


def _blank_to_none(text: str | None) -> str | None:
    if text is None or not text.strip():
        return None
    return text.strip()


def _event(
    conn: Conn, alert_id: int, kind: str, actor: str, comment: str | None, data: dict[str, Any]
) -> None:
    conn.execute(
        INSERT_ALERT_EVENT,
        {
            "alert_id": alert_id,
            "kind": kind,
            "actor": actor,
            "comment": comment,
            "data": Jsonb(data),
        },
    )
