"""The per-shipment excursion report as JSON, CSV (readings; summary) or PDF.

``GET /shipments/{key}/report.{json,csv,summary.csv,pdf}`` builds it live, as of ``as_of``
(default: now): ``report.csv`` is the readings, one row per reading, ``report.summary.csv`` every
other figure, one row per figure (:mod:`reports.csv_files`);
the same ``as_of`` gives the same report, and its content hash (also in the ``X-Content-SHA256``
header) is what a QA signature refers to. ``?disposition=<id>`` returns the record as signed
instead: the evidence frozen when that disposition was signed, byte for byte.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.responses import Response
from pydantic import AwareDatetime

from api.deps import ConnDep, ReportSettingsDep
from api.routers.shipments import ShipmentKey
from api.schemas import ErrorOut
from services import reports
from services.reports import Format

router = APIRouter(prefix="/shipments", tags=["reports"])


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
    fmt: Annotated[
        Format,
        Path(description="json, csv (the readings), summary.csv (the other figures) or pdf"),
    ],
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
    file = reports.report_file(
        conn,
        cfg,
        key=key,
        fmt=fmt,
        as_of=as_of,
        disposition_id=disposition,
        now=datetime.now(UTC),
    )
    return Response(
        content=file.content,
        media_type=file.media_type,
        headers={
            "X-Content-SHA256": file.content_hash,
            "Content-Disposition": f'attachment; filename="{file.filename}"',
        },
    )
