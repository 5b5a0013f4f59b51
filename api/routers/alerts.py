"""Alerts: list, one with its timeline, and the lifecycle actions (acknowledge, resolve, assign).

The operations are :mod:`services.alerts` (the dashboard's alerts page calls the same ones):
each action writes the alert row and an ``alert_events`` row in one transaction; an action the
alert's state does not allow (acknowledging a resolved alert…) is a 409 that says why; an
acknowledgement without a comment (or a blank one), or an assignee who is not an active user, a
422 whose detail names the field. Who acts is the authenticated caller (operators and
admins), never a name in the body; the comment is also the "why" of the audit entry.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict

from api.deps import ClientDep, ConnDep, PrincipalDep, requires
from api.schemas import (
    Actor,
    AlertDetail,
    AlertPage,
    AlertState,
    Comment,
    ErrorOut,
)
from coldchain.severity import Severity
from services import alerts as service
from services.caller import Caller

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
    page = service.list_alerts(
        conn,
        states=list(state) if state else None,
        severities=list(severity) if severity else None,
        shipment=shipment,
        limit=limit,
        offset=offset,
    )
    return AlertPage.model_validate(
        {"items": page.items, "total": page.total, "limit": page.limit, "offset": page.offset}
    )


@router.get("/{alert_id}", responses={404: _ACTION_ERRORS[404]})
def get_alert(alert_id: AlertId, conn: ConnDep) -> AlertDetail:
    """One alert with its timeline (opened, acknowledged, assigned, resolved…)."""
    return AlertDetail.model_validate(service.get_alert(conn, alert_id=alert_id))


class ActionIn(BaseModel):
    """Why (the actor is the authenticated caller). Required to acknowledge (a 422 naming
    ``comment`` without one); optional to resolve."""

    model_config = ConfigDict(extra="forbid")

    comment: Comment | None = None


class AssignToIn(BaseModel):
    """Who takes the alert: an active user's name (the assigner is the caller)."""

    model_config = ConfigDict(extra="forbid")

    assignee: Actor
    comment: Comment | None = None


_ACT = requires("alerts.act")


@router.post(
    "/{alert_id}/acknowledge",
    responses={
        **_ACTION_ERRORS,
        422: {
            "model": ErrorOut,
            "description": "no comment (or a blank one): acknowledging takes one",
        },
    },
    openapi_extra=_ACT,
)
def acknowledge(
    alert_id: AlertId,
    body: ActionIn,
    conn: ConnDep,
    principal: PrincipalDep,
    client: ClientDep,
) -> AlertDetail:
    """Acknowledge an open alert, with a comment (required: what was done, or why); the caller
    is recorded as who."""
    row = service.acknowledge(
        conn, Caller.of(principal, client), alert_id=alert_id, comment=body.comment
    )
    return AlertDetail.model_validate(row)


@router.post("/{alert_id}/resolve", responses=_ACTION_ERRORS, openapi_extra=_ACT)
def resolve(
    alert_id: AlertId,
    body: ActionIn,
    conn: ConnDep,
    principal: PrincipalDep,
    client: ClientDep,
) -> AlertDetail:
    """Resolve an open or acknowledged alert, with a comment; the caller is recorded as who."""
    row = service.resolve(
        conn, Caller.of(principal, client), alert_id=alert_id, comment=body.comment
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
    conn: ConnDep,
    principal: PrincipalDep,
    client: ClientDep,
) -> AlertDetail:
    """Assign an unresolved alert to an active user; the caller is recorded as who assigned."""
    row = service.assign(
        conn,
        Caller.of(principal, client),
        alert_id=alert_id,
        assignee=body.assignee,
        comment=body.comment,
    )
    return AlertDetail.model_validate(row)
