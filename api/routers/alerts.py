"""Alerts: list, one with its timeline, and the lifecycle actions (acknowledge, resolve, assign).

Each action writes the alert row and an ``alert_events`` row in one transaction; an action the
alert's state does not allow (acknowledging a resolved alert…) is a 409 that says why.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from api.deps import ConnDep
from api.schemas import (
    AcknowledgeIn,
    AlertDetail,
    AlertPage,
    AlertState,
    AssignIn,
    ErrorOut,
    ResolveIn,
    Severity,
)
from db.queries import web

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
    shipment_id = None if shipment is None else web.find_shipment_id(conn=conn, key=shipment)
    page = web.list_alerts(
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
    return AlertDetail.model_validate(web.get_alert(conn=conn, alert_id=alert_id))


@router.post("/{alert_id}/acknowledge", responses=_ACTION_ERRORS)
def acknowledge(alert_id: AlertId, body: AcknowledgeIn, conn: ConnDep) -> AlertDetail:
    """Acknowledge an open alert: who, and a comment."""
    row = web.acknowledge_alert(conn=conn, alert_id=alert_id, by=body.by, comment=body.comment)
    return AlertDetail.model_validate(row)


@router.post("/{alert_id}/resolve", responses=_ACTION_ERRORS)
def resolve(alert_id: AlertId, body: ResolveIn, conn: ConnDep) -> AlertDetail:
    """Resolve an open or acknowledged alert: who, and a comment."""
    row = web.resolve_alert(conn=conn, alert_id=alert_id, by=body.by, comment=body.comment)
    return AlertDetail.model_validate(row)


@router.post("/{alert_id}/assign", responses=_ACTION_ERRORS)
def assign(alert_id: AlertId, body: AssignIn, conn: ConnDep) -> AlertDetail:
    """Assign an unresolved alert to someone."""
    row = web.assign_alert(conn=conn, alert_id=alert_id, assignee=body.assignee, by=body.by)
    return AlertDetail.model_validate(row)
