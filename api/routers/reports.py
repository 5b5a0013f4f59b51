"""The per-shipment excursion report as JSON, CSV or PDF.

``GET /shipments/{key}/report.{json,csv,pdf}`` builds it live, as of ``as_of`` (default: now):
the same ``as_of`` gives the same report, and its content hash (also in the ``X-Content-SHA256``
header) is what a QA signature refers to. ``?disposition=<id>`` returns the record as signed
instead: the evidence frozen when that disposition was signed, byte for byte.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query
from fastapi.responses import Response
from pydantic import AwareDatetime

from api.deps import ConnDep, ReportSettingsDep
from api.routers.shipments import ShipmentKey
from api.schemas import ErrorOut
from db.queries import shipments as shipment_q
from reports import render
from reports.service import report_document

router = APIRouter(prefix="/shipments", tags=["reports"])

Format = Literal["json", "csv", "pdf"]
MEDIA_TYPES: dict[str, str] = {
    "json": "application/json",
    "csv": "text/csv; charset=utf-8",
    "pdf": "application/pdf",
}


@router.get(
    "/{key}/report.{fmt}",
    response_class=Response,
    responses={
        200: {
            "content": {"application/json": {}, "text/csv": {}, "application/pdf": {}},
            "description": "the report; X-Content-SHA256 carries its content hash",
        },
        404: {"model": ErrorOut, "description": "no such shipment or disposition"},
        422: {"model": ErrorOut, "description": "as_of in the future"},
    },
)
def shipment_report(
    key: ShipmentKey,
    fmt: Annotated[Format, Path(description="json, csv or pdf")],
    conn: ConnDep,
    cfg: ReportSettingsDep,
    as_of: Annotated[
        AwareDatetime | None, Query(description="evidence as of this instant (default: now)")
    ] = None,
    disposition: Annotated[
        int | None,
        Query(ge=1, lt=2**63, description="the record as signed by this disposition"),
    ] = None,
) -> Response:
    """The excursion report of one shipment (see the module docstring)."""
    shipment_id = shipment_q.find_shipment_id(conn=conn, key=key)
    doc = report_document(
        conn,
        shipment_id=shipment_id,
        as_of=as_of,
        cfg=cfg,
        disposition_id=disposition,
        now=datetime.now(UTC),
    )
    body = {"json": render.render_json, "csv": render.render_csv, "pdf": render.render_pdf}[fmt](
        doc
    )
    reference = doc["evidence"]["shipment"]["reference"]
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in reference)[:80]
    suffix = f"-signed-{disposition}" if disposition is not None else ""
    return Response(
        content=body,
        media_type=MEDIA_TYPES[fmt],
        headers={
            "X-Content-SHA256": doc["content_hash"],
            "Content-Disposition": f'attachment; filename="report-{safe}{suffix}.{fmt}"',
        },
    )
