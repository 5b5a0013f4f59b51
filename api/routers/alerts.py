"""Alerts: list, one with its timeline, and the lifecycle actions (acknowledge, resolve, assign).

Each action writes the alert row and an ``alert_events`` row in one transaction; an action the
alert's state does not allow (acknowledging a resolved alert…) is a 409 that says why. Who acts
is the authenticated caller (operators and admins), never a name in the body; the comment is
also the "why" of the audit entry.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query
from pydantic import BaseModel, ConfigDict

from api.deps import AuditedConnDep, ClientDep, ConnDep, PrincipalDep, requires
from api.schemas import (
    Actor,
    AlertDetail,
    AlertPage,
    AlertState,
    Comment,
    ErrorOut,
    Severity,
)
from db.queries import alerts as alert_q
from db.queries import security as security_q
from db.queries import shipments as shipment_q
from security.audit import apply_context

router = APIRouter(prefix="/alerts", tags=["alerts"])

AlertId = Annotated[int, Path(ge=1, lt=2**63)]
_ACTION_ERRORS: dict[int | str, dict[str, object]] = {
    404: {"model": ErrorOut, "description": "no such alert"},
    409: {"model": ErrorOut, "description": "the alert's state does not allow this action"},
}


@router.get("")
def list_alerts(
    conn: ConnDep,
    state: Annotated[list[AlertState] | None, Query(description="repeat for several")] = None,
    severity: Annotated[list[Severity] | None, Query(description="repeat for several")] = None,
    shipment: Annotated[
        str | None, Query(min_length=1, max_length=200, description="id or reference")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> AlertPage:
    """Alerts: unresolved first, then the strongest severity, then the oldest."""
    shipment_id = None if shipment is None else shipment_q.find_shipment_id(conn=conn, key=shipment)
    page = alert_q.list_alerts(
        conn=conn,
        states=list(state) if state else None,
        severities=list(severity) if severity else None,
        shipment_id=shipment_id,
        limit=limit,
        offset=offset,
    )
    return AlertPage.model_validate(
        {"items": page.items, "total": page.total, "limit": page.limit, "offset": page.offset}
    )


@router.get("/{alert_id}", responses={404: _ACTION_ERRORS[404]})
def get_alert(alert_id: AlertId, conn: ConnDep) -> AlertDetail:
    """One alert with its timeline (opened, acknowledged, assigned, resolved…)."""
    return AlertDetail.model_validate(alert_q.get_alert(conn=conn, alert_id=alert_id))


class ActionIn(BaseModel):
    """Why (the actor is the authenticated caller)."""

    model_config = ConfigDict(extra="forbid")

    comment: Comment | None = None


class AssignToIn(BaseModel):
    """Who takes the alert: an active user's name (the assigner is the caller)."""

    model_config = ConfigDict(extra="forbid")

    assignee: Actor
    comment: Comment | None = None


_ACT = requires("alerts.act")


@router.post("/{alert_id}/acknowledge", responses=_ACTION_ERRORS, openapi_extra=_ACT)
def acknowledge(
    alert_id: AlertId,
    body: ActionIn,
    conn: AuditedConnDep,
    principal: PrincipalDep,
    client: ClientDep,
) -> AlertDetail:
    """Acknowledge an open alert, with a comment; the caller is recorded as who."""
    apply_context(conn, principal.context(client, body.comment or None))
    row = alert_q.acknowledge_alert(
        conn=conn, alert_id=alert_id, by=principal.actor, comment=body.comment
    )
    return AlertDetail.model_validate(row)


@router.post("/{alert_id}/resolve", responses=_ACTION_ERRORS, openapi_extra=_ACT)
def resolve(
    alert_id: AlertId,
    body: ActionIn,
    conn: AuditedConnDep,
    principal: PrincipalDep,
    client: ClientDep,
) -> AlertDetail:
    """Resolve an open or acknowledged alert, with a comment; the caller is recorded as who."""
    apply_context(conn, principal.context(client, body.comment or None))
    row = alert_q.resolve_alert(
        conn=conn, alert_id=alert_id, by=principal.actor, comment=body.comment
    )
    return AlertDetail.model_validate(row)


@router.post(
    "/{alert_id}/assign",
    responses={
        **_ACTION_ERRORS,
        422: {"model": ErrorOut, "description": "the assignee is not an active user"},
    },
    openapi_extra=_ACT,
)
def assign(
    alert_id: AlertId,
    body: AssignToIn,
    conn: AuditedConnDep,
    principal: PrincipalDep,
    client: ClientDep,
) -> AlertDetail:
    """Assign an unresolved alert to an active user; the caller is recorded as who assigned."""
    assignee = security_q.user_for_login(conn=conn, username=body.assignee.lower())
    if assignee is None or not assignee["active"]:
        raise HTTPException(status_code=422, detail=f"{body.assignee!r} is not an active user")
    apply_context(conn, principal.context(client, body.comment or None))
    row = alert_q.assign_alert(
        conn=conn, alert_id=alert_id, assignee=assignee["username"], by=principal.actor
    )
    return AlertDetail.model_validate(row)
