"""QA dispositions of a shipment or of one of its lots, with electronic signatures.

Signing (qa role only) needs the signer's password again, a mandatory reason, and the
``as_of``/``report_hash`` of the report they reviewed: when the report at that instant no longer
has that hash, the answer is 409 and nothing is signed. A signed record is never edited; signing
again for the same shipment/lot supersedes the record in force, and both stay listed.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

from api.deps import ClientDep, ConnDep, LimiterDep, PrincipalDep, ReportSettingsDep, requires
from api.routers.shipments import ShipmentKey
from api.schemas import ErrorOut
from security.passwords import MAX_LENGTH
from services import reports
from services.caller import Caller

router = APIRouter(prefix="/shipments", tags=["dispositions"])


class DispositionIn(BaseModel):
    """A signed decision about the shipment (or one lot) on the report reviewed."""

    model_config = ConfigDict(extra="forbid")

    decision: Literal["release", "quarantine", "reject", "return"]
    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]
    lot: Annotated[str, StringConstraints(min_length=1, max_length=20)] | None = Field(
        default=None, description="a lot on board; omitted: the whole shipment"
    )
    as_of: AwareDatetime = Field(description="the as_of of the report reviewed")
    report_hash: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")] = Field(
        description="the content hash of the report reviewed"
    )
    password: Annotated[str, StringConstraints(min_length=1, max_length=MAX_LENGTH)] = Field(
        description="the signer's own password, entered again"
    )


class Disposition(BaseModel):
    """A signed disposition; ``signature`` is the signature as printed."""

    id: int
    shipment_id: int
    lot: str | None
    decision: str
    reason: str
    meaning: str
    signer_username: str
    signer_name: str
    signer_role: str
    signed_at: AwareDatetime
    report_hash: str
    snapshot_id: int
    supersedes: int | None
    superseded_by: int | None
    current: bool
    signature_hash: str
    signature: str


class DispositionList(BaseModel):
    """Every disposition of a shipment, oldest first, and the lots a new one may name."""

    lots: list[str]
    items: list[Disposition]


@router.get("/{key}/dispositions")
def list_dispositions(key: ShipmentKey, conn: ConnDep) -> DispositionList:
    """Signed dispositions, superseded ones included (marked), oldest first."""
    found = reports.dispositions(conn, key=key)
    return DispositionList(
        lots=found.lots, items=[Disposition.model_validate(r) for r in found.records]
    )


@router.post(
    "/{key}/dispositions",
    status_code=201,
    openapi_extra=requires("dispositions.sign"),
    responses={
        401: {"model": ErrorOut, "description": "wrong password"},
        404: {"model": ErrorOut},
        409: {"model": ErrorOut, "description": "the report changed since it was reviewed"},
        422: {"model": ErrorOut},
        429: {"model": ErrorOut, "description": "too many wrong passwords"},
    },
)
def sign(
    key: ShipmentKey,
    body: DispositionIn,
    conn: ConnDep,
    principal: PrincipalDep,
    limiter: LimiterDep,
    cfg: ReportSettingsDep,
    client: ClientDep,
) -> Disposition:
    """Sign a disposition (qa): release, quarantine, reject or return, with a reason."""
    record = reports.sign(
        conn,
        Caller.of(principal, client),
        cfg,
        key=key,
        lot=body.lot,
        decision=body.decision,
        reason=body.reason,
        as_of=body.as_of,
        report_hash=body.report_hash,
        password=body.password,
        limiter=limiter,
        now=datetime.now(UTC),
    )
    return Disposition.model_validate(record)
