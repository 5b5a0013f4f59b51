"""EPCIS 2.0: import documents (JSON or JSON-LD), export a shipment or a unit as JSON-LD.

An import is validated against the official EPCIS 2.0 JSON schema and our own rules and then
stored in one transaction, or refused whole (422 with every reason, nothing stored). Importing
the same events again changes nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict

from api.deps import ClientDep, ConnDep, PrincipalDep
from api.schemas import ErrorOut
from coldchain.errors import EPCISRejected
from coldchain.gs1 import IdentifierError
from services import trace
from services.caller import Caller

router = APIRouter(prefix="/epcis", tags=["epcis"])

#: Refuse bodies above this size before parsing them.
MAX_DOCUMENT_BYTES = 32 * 1024 * 1024
JSON_LD = "application/ld+json"


class ImportOut(BaseModel):
    """What an import did (``import_id`` None: every event was known already)."""

    model_config = ConfigDict(extra="ignore")
    import_id: int | None
    document_id: str | None
    n_events: int
    n_new: int
    n_known: int
    units_created: int
    commissioned: int
    packing_children: int
    custody_units: int
    untracked: list[str]


def _rejected(error: EPCISRejected) -> JSONResponse:
    return JSONResponse(
        status_code=422,
        content={
            "detail": {
                "message": "EPCIS document refused; nothing was stored",
                "problems": [{"path": p.path, "message": p.message} for p in error.problems],
            }
        },
    )


@router.post(
    "/events",
    responses={422: {"description": "the document was refused whole; every reason is listed"}},
)
async def import_events(
    request: Request, conn: ConnDep, principal: PrincipalDep, client: ClientDep
) -> Any:
    """Import one EPCIS 2.0 document (``application/json`` or ``application/ld+json``)."""
    raw = await request.body()
    if len(raw) > MAX_DOCUMENT_BYTES:
        raise HTTPException(status_code=413, detail="document larger than 32 MiB")
    now = datetime.now(UTC)
    try:
        result = await run_in_threadpool(
            lambda: trace.import_epcis(
                conn, Caller.of(principal, client), document=raw, source="api", today=now.date()
            )
        )
    except EPCISRejected as error:
        return _rejected(error)
    return ImportOut.model_validate(
        {name: getattr(result, name) for name in ImportOut.model_fields}
    )


@router.get(
    "/export",
    response_class=JSONResponse,
    responses={
        200: {"content": {JSON_LD: {}}, "description": "an EPCIS 2.0 JSON-LD document"},
        400: {"model": ErrorOut, "description": "neither or both of shipment= and unit="},
    },
)
def export(
    conn: ConnDep,
    shipment: Annotated[str | None, Query(max_length=200, description="id or reference")] = None,
    unit: Annotated[
        str | None, Query(max_length=400, description="SGTIN or SSCC, any form")
    ] = None,
    interval_min: Annotated[
        int, Query(ge=1, le=1440, description="sensor report interval, minutes")
    ] = 60,
) -> JSONResponse:
    """A shipment's or a unit's packing, custody and per-interval sensor reports (min, max,
    mean temperature and humidity, GPS, excursion alarms) as an EPCIS 2.0 JSON-LD document."""
    if (shipment is None) == (unit is None):
        # Not "everything": a document per shipment or unit is what EPCIS partners exchange,
        # and all of them at once has no bound.
        raise HTTPException(status_code=400, detail="give exactly one of shipment= or unit=")
    now = datetime.now(UTC)
    if shipment is not None:
        document = trace.export_shipment(conn, key=shipment, now=now, interval_min=interval_min)
    else:
        assert unit is not None
        try:
            document = trace.export_unit(conn, identifier=unit, now=now, interval_min=interval_min)
        except IdentifierError as error:
            raise HTTPException(status_code=422, detail=str(error)) from None
    return JSONResponse(document, media_type=JSON_LD)
