"""A dock scan: a unit on board scanned at a site arrives its shipment (issue 13).

``POST /shipments/arrivals`` with the scan of an SSCC or SGTIN label and the GLN of the dock:
the shipment that has the unit on board, if in transit, arrives now with its verdicts
(:func:`services.automation.dock_scan`); already arrived, nothing changes (``arrived`` false);
bound for another site, 409; no shipment has the unit on board, 404. Needs
``shipments.manage``.
"""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from api.deps import CallerDep, ConnDep, ReportSettingsDep, SettingsDep, requires
from api.routers.bookings import R409, R422, VerdictOut
from api.schemas import ErrorOut
from coldchain.runtime import utcnow
from services import automation

router = APIRouter(prefix="/shipments", tags=["bookings"])


class DockScanIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    scan: str = Field(
        min_length=1, max_length=200, description="an SSCC or SGTIN label, in any GS1 form"
    )
    gln: str = Field(min_length=13, max_length=13, pattern=r"^[0-9]{13}$",
                     description="the GLN of the site where it was scanned")  # fmt: skip


class ArrivalOut(BaseModel):
    shipment_id: int
    reference: str
    status: str
    arrived: bool = Field(description="false: the shipment had arrived already")
    verdicts: list[VerdictOut]


@router.post(
    "/arrivals",
    openapi_extra=requires("shipments.manage"),
    responses={
        404: {"model": ErrorOut, "description": "no shipment has this unit on board"},
        409: R409,
        422: R422,
    },
)
def dock_scan(
    body: DockScanIn,
    caller: CallerDep,
    conn: ConnDep,
    settings: SettingsDep,
    report_settings: ReportSettingsDep,
) -> ArrivalOut:
    """Arrive the shipment that has the scanned unit on board, scanned at the site ``gln``."""
    done = automation.dock_scan(
        conn, caller, scan=body.scan, gln=body.gln, now=utcnow(),
        gap_factor=settings.alerts.gap_factor, release=report_settings,
    )  # fmt: skip
    return ArrivalOut(
        shipment_id=done.shipment_id,
        reference=done.reference,
        status=done.status,
        arrived=done.arrived,
        verdicts=[VerdictOut.model_validate(v) for v in done.verdicts],
    )
