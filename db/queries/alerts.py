"""Alerts as people handle them: the list, the alerts page's board (each alert with what the
rules engine linked to it, its logger's latest reading and its notifications), one alert with
its events, and the state machine.

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


def _alert_columns(a: str) -> str:
    """The columns of an alert as the API shows it, from alias ``a`` (and ``s``: its shipment)."""
    return f"""
    {a}.alert_id AS id, {a}.shipment_id, s.reference AS shipment_reference, {a}.rule_key,
    {a}.severity, {a}.state, {a}.title, {a}.device_id, {a}.triggered_at, {a}.value,
    {a}.thresholds, {a}.details, {a}.assignee, {a}.acked_by, {a}.acked_at, {a}.ack_comment,
    {a}.resolved_by, {a}.resolved_at, {a}.escalation_level, {a}.cleared_at, {a}.created_at,
    {a}.updated_at
"""


_ALERT_COLUMNS = _alert_columns("x")

LIST_ALERTS = f"""
SELECT {_ALERT_COLUMNS}, count(*) OVER () AS total
FROM alerts x
LEFT JOIN shipments s ON s.shipment_id = x.shipment_id  -- none for a system alert
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

# The alerts page's read, set-oriented: one page of alerts (the list's filters and order) with,
# per alert, what the rules engine linked to it (its excursions, or the rule states it took),
# its logger's latest reading, and the latest notification per recipient (the outbox). Each
# lateral join goes through an index that starts with the shipment or the alert
# (excursions_current, rule_states' key, notifications_alert, device_state's key), so the cost
# is that of the page, not of the table.
ALERT_BOARD = f"""
WITH page AS (
    SELECT x.*, count(*) OVER () AS total
    FROM alerts x
    WHERE (%(states)s::text[] IS NULL OR x.state = ANY(%(states)s))
      AND (%(severities)s::text[] IS NULL OR x.severity = ANY(%(severities)s))
    ORDER BY (x.state = 'resolved'), {severity.rank_sql("x.severity")} DESC,
             x.triggered_at, x.alert_id
    LIMIT %(limit)s OFFSET %(offset)s
)
SELECT {_alert_columns("p")}, p.total,
    ex.excursions, ex.open_excursions, ex.started_at AS excursion_start,
    ex.ended_at AS excursion_end, ex.peak_high_c, ex.peak_low_c,
    rs.rule_states, coalesce(rs.holding, false) AS holding, rs.since AS rule_since,
    rs.ended_at AS rule_ended_at,
    d.temp_c AS current_c, d.ts AS current_at,
    n.notified, w.notification_warnings
FROM page p
LEFT JOIN shipments s ON s.shipment_id = p.shipment_id  -- none for a system alert
LEFT JOIN LATERAL (
    SELECT count(*) AS excursions,
           count(*) FILTER (WHERE e.end_ts IS NULL) AS open_excursions,
           min(e.start_ts) AS started_at,
           max(e.end_ts) AS ended_at,
           max(e.max_c) FILTER (WHERE e.direction = 'high') AS peak_high_c,
           min(e.min_c) FILTER (WHERE e.direction = 'low') AS peak_low_c
    FROM excursions e
    WHERE e.shipment_id = p.shipment_id AND e.alert_id = p.alert_id
      AND e.superseded_at IS NULL
) ex ON true
LEFT JOIN LATERAL (
    SELECT count(*) AS rule_states, bool_or(r.holding) AS holding, min(r.since) AS since,
           max(r.ended_at) AS ended_at
    FROM rule_states r
    WHERE r.shipment_id = p.shipment_id AND r.rule_key = p.rule_key AND r.alert_id = p.alert_id
) rs ON true
LEFT JOIN device_state d ON d.device_id = p.device_id
LEFT JOIN LATERAL (
    SELECT coalesce(jsonb_agg(jsonb_build_object(
               'channel', last.channel, 'target', last.target, 'tier', last.tier,
               'event', last.event, 'attempts', last.attempts,
               'status', CASE WHEN last.delivered_at IS NOT NULL THEN 'delivered'
                              WHEN last.gave_up_at IS NOT NULL THEN 'failed'
                              WHEN last.held_at IS NOT NULL THEN 'held'
                              ELSE 'pending' END,
               'at', coalesce(last.delivered_at, last.gave_up_at, last.created_at),
               'error', coalesce(last.last_error, last.held_reason)
           ) ORDER BY last.tier, last.channel, last.target), '[]'::jsonb) AS notified
    FROM (
        SELECT DISTINCT ON (o.channel, o.target) o.*
        FROM notifications o
        WHERE o.alert_id = p.alert_id
        ORDER BY o.channel, o.target, o.created_at DESC, o.id DESC
    ) last
) n ON true
-- Why someone could not be told (a rotation tier's person without a phone…: alerts/escalation.py).
LEFT JOIN LATERAL (
    SELECT coalesce(array_agg(DISTINCT w.comment ORDER BY w.comment), '{{}}') AS notification_warnings
    FROM alert_events w
    WHERE w.alert_id = p.alert_id AND w.kind = 'notification_warning'
) w ON true
ORDER BY (p.state = 'resolved'), {severity.rank_sql("p.severity")} DESC,
         p.triggered_at, p.alert_id
"""

SELECT_ALERT = f"""
SELECT {_ALERT_COLUMNS}
FROM alerts x
LEFT JOIN shipments s ON s.shipment_id = x.shipment_id  -- none for a system alert
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


def alert_board(
    *,
    conn: Conn,
    states: list[str] | None = None,
    severities: list[str] | None = None,
    limit: int = 500,
    offset: int = 0,
) -> Page:
    """The alerts page's rows (the list's order), each with its excursions' start, end and
    peak, its rule states, its logger's latest reading and the latest notification per
    recipient (``notified``: a list of dicts, lowest tier first)."""
    params: dict[str, Any] = {
        "states": states or None,
        "severities": severities or None,
        "limit": limit,
        "offset": offset,
    }
    rows = conn.execute(ALERT_BOARD, params).fetchall()
    total = int(rows[0]["total"]) if rows else 0
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
