"""Alerts as people handle them: the list, one alert with its timeline, and the lifecycle
actions (acknowledge, resolve, assign), for the API, the dashboard and any other edge alike.

Each action needs the ``alerts.act`` permission (operators and administrators), writes the
alert row and an ``alert_events`` row in one transaction (:mod:`db.queries.alerts`, which also
refuses a transition the alert's state does not allow with
:class:`~coldchain.errors.AlertConflictError`), and is recorded in the audit trail as the
caller's, with the comment as its "why". The actor is always the caller, never a name the
request carries. Acknowledging takes a comment (what was done, or why): an alert of a medicine's
excursion is not acknowledged in one click with nothing said, whichever edge it comes from.

Acknowledging and resolving also queue the event, in the same transaction, to everyone already
told of the alert (:func:`db.queries.escalation.queue_follow_up`): PagerDuty and Opsgenie
acknowledge and close their incident, and Slack, Teams, e-mail, SMS and webhooks get a short
"acknowledged by X" (or "resolved by X") with the comment, so nobody else keeps working on it.

:func:`alert_board` is the alerts page's read: a page of alerts with, per alert, whether its
condition is still under way (:mod:`coldchain.alert_condition`), when the product left its
range, the peak, the logger's current temperature and who was notified.
"""

from __future__ import annotations

from typing import Any, Final

from alerts.channels import display_target
from coldchain.alert_condition import ConditionFacts, condition_ended_at, condition_of
from coldchain.errors import InvalidAlertActionError
from db.queries import alerts as alert_q
from db.queries import escalation as escalation_q
from db.queries import security as security_q
from db.queries import shipments as shipment_q
from db.types import Conn, Page, Row
from security.roles import can
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
            "comment",
            f"{len(text)} characters, at most {COMMENT_MAX_LENGTH} are kept with an "
            "alert action: shorten it",
        )
    return text or None


def acknowledge(conn: Conn, caller: Caller, *, alert_id: int, comment: str | None) -> Row:
    """Acknowledge an open alert as ``caller``, with a comment; the alert with its timeline.
    InvalidAlertActionError (naming ``comment``) when the comment is missing or blank."""
    caller.require("alerts.act")
    text = comment_text(comment)
    if text is None:
        raise InvalidAlertActionError(
            "comment",
            "required to acknowledge an alert: say what was done or why "
            "(e.g. 'called the driver, reefer door closed')",
        )
    with acting(conn, caller, text), conn.transaction():
        row = alert_q.acknowledge_alert(conn=conn, alert_id=alert_id, by=caller.actor, comment=text)
        escalation_q.queue_follow_up(
            conn=conn,
            alert_id=alert_id,
            event="acknowledged",
            state="acknowledged",
            extra={"acknowledged_by": caller.actor, "comment": text},
        )
    return row


def resolve(conn: Conn, caller: Caller, *, alert_id: int, comment: str | None) -> Row:
    """Resolve an open or acknowledged alert as ``caller``; the alert with its timeline."""
    caller.require("alerts.act")
    text = comment_text(comment)
    with acting(conn, caller, text), conn.transaction():
        row = alert_q.resolve_alert(conn=conn, alert_id=alert_id, by=caller.actor, comment=text)
        escalation_q.queue_follow_up(
            conn=conn,
            alert_id=alert_id,
            event="resolved",
            state="resolved",
            extra={"resolved_by": caller.actor, "comment": text},
        )
    return row


def assign(conn: Conn, caller: Caller, *, alert_id: int, assignee: str, comment: str | None) -> Row:
    """Assign an unresolved alert to an active user (by user name, any case) as ``caller``;
    InvalidAlertActionError when the assignee is not an active user. The comment is the audit
    entry's "why" (the alert's timeline records who was assigned, and by whom)."""
    caller.require("alerts.act")
    text = comment_text(comment)
    person = security_q.user_for_login(conn=conn, username=assignee.strip().lower())
    if person is None or not person["active"]:
        raise InvalidAlertActionError("assignee", f"{assignee!r} is not an active user")
    with acting(conn, caller, text):
        return alert_q.assign_alert(
            conn=conn, alert_id=alert_id, assignee=person["username"], by=caller.actor
        )


def alert_board(
    conn: Conn,
    *,
    states: list[str] | None = None,
    severities: list[str] | None = None,
    limit: int = 500,
    offset: int = 0,
) -> Page:
    """The alerts page's rows, in the list's order; each alert's columns plus:

    ``condition`` (``active``, ``ended`` or ``cleared``: :mod:`coldchain.alert_condition`) and
    ``condition_ended_at``; ``condition_since``: when the product left its range (the first
    excursion's start) or the rule's episode began, None when unknown; ``peak_high_c`` /
    ``peak_low_c``: the highest (high excursions) and lowest (low ones) temperature, °C;
    ``current_c`` / ``current_at``: the logger's latest reading; ``notified``: per recipient,
    the latest notification (channel, target, tier, event, status ``delivered`` / ``failed`` /
    ``pending`` / ``held`` (held back by flood control until its digest is sent; ``error``
    says which limit), at, error), lowest tier first, secrets in the target masked;
    ``notification_warnings``: why someone could not be told (a rotation's person without the
    contact a channel needs, nobody on call…), each once.
    """
    page = alert_q.alert_board(
        conn=conn,
        states=states or None,
        severities=severities or None,
        limit=limit,
        offset=offset,
    )
    return Page(
        items=[_board_row(r) for r in page.items],
        total=page.total,
        limit=page.limit,
        offset=page.offset,
    )


def _board_row(row: Row) -> Row:
    facts = ConditionFacts(
        cleared_at=row["cleared_at"],
        excursions=int(row.pop("excursions") or 0),
        open_excursions=int(row.pop("open_excursions") or 0),
        rule_states=int(row.pop("rule_states") or 0),
        holding=bool(row.pop("holding")),
        ended_at=_latest(row.pop("excursion_end"), row.pop("rule_ended_at")),
    )
    excursion_start, rule_since = row.pop("excursion_start"), row.pop("rule_since")
    for n in row.get("notified") or []:
        # Everyone who reads alerts sees this: a Slack URL or a routing key is a secret.
        n["target"] = display_target(str(n["channel"]), str(n["target"]))
    row["condition"] = condition_of(facts)
    row["condition_ended_at"] = condition_ended_at(facts)
    row["condition_since"] = excursion_start or rule_since
    return row


def _latest(*times: Any) -> Any:
    found = [t for t in times if t is not None]
    return max(found) if found else None


def assignees(conn: Conn, caller: Caller) -> list[Row]:
    """The people an alert can be assigned to (active users whose role acts on alerts), by
    name: ``username``, ``full_name``, ``role``. Needs ``alerts.act`` (who may assign)."""
    caller.require("alerts.act")
    return [
        {"username": u["username"], "full_name": u["full_name"], "role": u["role"]}
        for u in security_q.list_users(conn=conn)
        if u["active"] and can(u["role"], "alerts.act")
    ]
