"""Alerts as people handle them: the list, one alert with its timeline, and the lifecycle
actions (acknowledge, resolve, assign), for the API, the dashboard and any other edge alike.

Each action needs the ``alerts.act`` permission (operators and administrators), writes the
alert row and an ``alert_events`` row in one transaction (:mod:`db.queries.alerts`, which also
refuses a transition the alert's state does not allow with
:class:`~coldchain.errors.AlertConflictError`), and is recorded in the audit trail as the
caller's, with the comment as its "why". The actor is always the caller, never a name the
request carries.
"""

from __future__ import annotations

from typing import Final

from coldchain.errors import InvalidAlertActionError
from db.queries import alerts as alert_q
from db.queries import security as security_q
from db.queries import shipments as shipment_q
from db.types import Conn, Page, Row
from services.caller import Caller, acting

#: The longest comment an alert action takes (the API's schema and the dashboard's box say so
#: too; this is where the rule is enforced).
COMMENT_MAX_LENGTH: Final = 2000


def list_alerts(
    conn: Conn,
    *,
    states: list[str] | None = None,
    severities: list[str] | None = None,
    shipment: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> Page:
    """Alerts, unresolved first, then the strongest severity, then the oldest; ``shipment`` is
    an id or a reference (NotFoundError if there is none such)."""
    shipment_id = None if shipment is None else shipment_q.find_shipment_id(conn=conn, key=shipment)
    return alert_q.list_alerts(
        conn=conn,
        states=states or None,
        severities=severities or None,
        shipment_id=shipment_id,
        limit=limit,
        offset=offset,
    )


def get_alert(conn: Conn, *, alert_id: int) -> Row:
    """One alert with its events, oldest first; NotFoundError if there is none."""
    return alert_q.get_alert(conn=conn, alert_id=alert_id)


def comment_text(comment: str | None) -> str | None:
    """The comment as stored: trimmed, None when blank; InvalidAlertActionError when longer
    than :data:`COMMENT_MAX_LENGTH` characters."""
    text = (comment or "").strip()
    if len(text) > COMMENT_MAX_LENGTH:
        raise InvalidAlertActionError(
            f"comment: {len(text)} characters, at most {COMMENT_MAX_LENGTH} are kept with an "
            "alert action: shorten it"
        )
    return text or None


def acknowledge(conn: Conn, caller: Caller, *, alert_id: int, comment: str | None) -> Row:
    """Acknowledge an open alert as ``caller``; the alert with its timeline."""
    caller.require("alerts.act")
    text = comment_text(comment)
    with acting(conn, caller, text):
        return alert_q.acknowledge_alert(
            conn=conn, alert_id=alert_id, by=caller.actor, comment=text
        )


def resolve(conn: Conn, caller: Caller, *, alert_id: int, comment: str | None) -> Row:
    """Resolve an open or acknowledged alert as ``caller``; the alert with its timeline."""
    caller.require("alerts.act")
    text = comment_text(comment)
    with acting(conn, caller, text):
        return alert_q.resolve_alert(conn=conn, alert_id=alert_id, by=caller.actor, comment=text)


def assign(conn: Conn, caller: Caller, *, alert_id: int, assignee: str, comment: str | None) -> Row:
    """Assign an unresolved alert to an active user (by user name, any case) as ``caller``;
    InvalidAlertActionError when the assignee is not an active user. The comment is the audit
    entry's "why" (the alert's timeline records who was assigned, and by whom)."""
    caller.require("alerts.act")
    text = comment_text(comment)
    person = security_q.user_for_login(conn=conn, username=assignee.strip().lower())
    if person is None or not person["active"]:
        raise InvalidAlertActionError(f"assignee: {assignee!r} is not an active user")
    with acting(conn, caller, text):
        return alert_q.assign_alert(
            conn=conn, alert_id=alert_id, assignee=person["username"], by=caller.actor
        )
