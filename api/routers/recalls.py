"""Product recalls: QA records that a GTIN's lot (or every lot of it) must not be sold; every
role lists them. A recall is never edited nor deleted; verification then reports each unit of
the lot as ``recalled`` (docs/TRACE.md, "Verification").
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    WithJsonSchema,
)

from api.deps import ClientDep, ConnDep, PrincipalDep, requires
from api.schemas import ErrorOut
from coldchain.gs1 import check_lot, normalize_gtin
from services import trace
from services.caller import Caller

router = APIRouter(prefix="/recalls", tags=["recalls"])

#: A GTIN-8/12/13/14 with a correct check digit, as GTIN-14 (a wrong one is a 422 naming it).
Gtin = Annotated[
    str,
    StringConstraints(strip_whitespace=True, max_length=14),
    AfterValidator(normalize_gtin),
    # Documented, not enforced by the pattern: normalize_gtin's errors say what is wrong.
    WithJsonSchema({"type": "string", "pattern": r"^([0-9]{8}|[0-9]{12,14})$"}),
]
#: GS1 AI encodable character set 82, 1–20 of them: a lot (AI 10) as the schema documents it.
LOT_PATTERN = r"^[!\"%&'()*+,\-./0-9:;<=>?A-Z_a-z]{1,20}$"
#: A lot or batch number as printed (GS1 AI 10: 1–20 characters of set 82).
Lot = Annotated[
    str,
    StringConstraints(max_length=20),
    AfterValidator(check_lot),
    # Documented, not enforced by the pattern: check_lot's errors name the character refused.
    WithJsonSchema({"type": "string", "pattern": LOT_PATTERN}),
]


class RecallIn(BaseModel):
    """A recall of one lot of a product, or of every lot."""

    model_config = ConfigDict(extra="forbid")

    gtin: Gtin = Field(description="GTIN-8/12/13/14 with its check digit; stored as GTIN-14")
    lot: Lot | None = Field(default=None, description="the lot (AI 10); omitted: every lot")
    reason: Annotated[
        str,
        StringConstraints(strip_whitespace=True, min_length=1, max_length=trace.MAX_REASON_LENGTH),
        AfterValidator(trace.normalise_reason),
    ]


class Recall(BaseModel):
    """A recorded recall, with the product's name and the serialised items on record it covers."""

    id: int
    gtin: str
    lot: str | None = Field(description="None: every lot of the GTIN")
    reason: str
    recalled_by: str = Field(description="the person who recorded it (user name)")
    recalled_at: AwareDatetime
    product_name: str | None
    units_on_record: int = Field(description="SGTIN items on record of the GTIN (and lot)")


def _recall(row: dict[str, object]) -> Recall:
    return Recall.model_validate({**row, "id": row["recall_id"]})


@router.get("")
def list_recalls(
    conn: ConnDep,
    gtin: Annotated[Gtin | None, Query(description="only this product's recalls")] = None,
    lot: Annotated[
        Lot | None,
        Query(description="only the recalls covering this lot (its own and whole-GTIN ones)"),
    ] = None,
) -> list[Recall]:
    """Every recall, oldest first."""
    return [_recall(r) for r in trace.list_recalls(conn, gtin=gtin, lot=lot)]


@router.post(
    "",
    status_code=201,
    openapi_extra=requires("recalls.record"),
    responses={403: {"model": ErrorOut, "description": "not a person with the qa role"}},
)
def add_recall(body: RecallIn, conn: ConnDep, principal: PrincipalDep, client: ClientDep) -> Recall:
    """Record a recall (qa): from now on every unit of the lot verifies as ``recalled``."""
    row = trace.record_recall(
        conn, Caller.of(principal, client), gtin=body.gtin, lot=body.lot, reason=body.reason
    )
    return _recall(row)
