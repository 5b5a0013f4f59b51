"""Booking shipments and moving them through their life (issue 13): create (idempotent), update
(If-Match), planned legs, references, items, units, loggers, start / arrive / cancel, the timeline, the
verdicts; and QA's queue.

Who: every change needs ``shipments.manage`` (operator and admin); the reads need ``read``.

Lost updates: ``GET /shipments/{key}/booking`` returns the booking's ``version`` and an ETag
``"<version>"``; ``PATCH /shipments/{key}`` requires ``If-Match`` with it (428 without, 412 when
someone changed the shipment since). Idempotent creation: ``POST /shipments`` answers 201 with a
new shipment, 200 with the one a previous identical request made (same ``Idempotency-Key``, or
same reference or external reference), 409 when the key or a reference belongs to a different
request's shipment (:mod:`services.bookings`).
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Path, Query, Response
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from api.deps import (
    CallerDep,
    ConnDep,
    ReportSettingsDep,
    SettingsDep,
    requires,
)
from api.preconditions import PRECONDITION_RESPONSES, expected_version, set_etag
from api.schemas import ErrorOut
from coldchain.runtime import utcnow
from services import booking_legs, bookings, lifecycle, units_on_board

router = APIRouter(prefix="/shipments", tags=["bookings"])
qa_router = APIRouter(prefix="/qa", tags=["bookings"])

MANAGE = requires("shipments.manage")

ShipmentKey = Annotated[
    str,
    Path(min_length=1, max_length=200, description="the shipment's numeric id or its reference"),
]
ReferenceKind = Literal["purchase_order", "sales_order", "customer", "other"]

R409 = {"model": ErrorOut, "description": "the change conflicts with the shipment's state, "
        "another shipment, or the logger's calibration"}  # fmt: skip
R422 = {"description": "a field is invalid: detail names it (loc)"}
WRITE_RESPONSES: dict[int | str, dict[str, Any]] = {409: R409, 422: R422}


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ExternalReference(Model):
    kind: ReferenceKind
    value: str = Field(min_length=1, max_length=200)


class ItemIn(Model):
    gtin: str = Field(min_length=8, max_length=14, pattern=r"^[0-9]+$")
    lot: str = Field(min_length=1, max_length=20)
    quantity: int = Field(gt=0, le=2_000_000_000)


class LegIn(Model):
    """A planned leg; its ``seq`` is its place in the list (1, 2, …)."""

    mode: booking_legs.LegMode = Field(
        description="a lane's transport mode, or warehouse (a stay between legs); on a "
        "single-mode lane every transport leg has the lane's mode"
    )
    origin: str = Field(min_length=1, max_length=200)
    destination: str = Field(min_length=1, max_length=200)
    carrier: str | None = Field(default=None, max_length=200)
    planned_departure: AwareDatetime | None = None
    planned_arrival: AwareDatetime | None = None


LEGS_RULE = (
    "in order; the times run forward (a leg arrives after it departs and departs no earlier "
    "than the previous leg arrived), within the shipment's planned departure and arrival"
)


class LegOut(BaseModel):
    seq: int
    mode: str
    origin: str
    destination: str
    carrier: str | None
    planned_departure: AwareDatetime | None
    planned_arrival: AwareDatetime | None


class ShipmentCreate(Model):
    """A booking. ``origin``/``destination`` are taken from the lane when ``lane_id`` is given."""

    reference: str = Field(min_length=1, max_length=100)
    origin: str | None = Field(default=None, min_length=1, max_length=200)
    destination: str | None = Field(default=None, min_length=1, max_length=200)
    product_gtin: str | None = Field(default=None, min_length=8, max_length=14, pattern=r"^[0-9]+$")
    lane_id: int | None = Field(default=None, ge=1, le=2**63 - 1)
    carrier_id: int | None = Field(default=None, ge=1, le=2**63 - 1)
    carrier: str | None = Field(default=None, max_length=200)
    planned_departure: AwareDatetime | None = None
    planned_arrival: AwareDatetime | None = None
    references: list[ExternalReference] = Field(default_factory=list, max_length=20)
    items: list[ItemIn] = Field(default_factory=list, max_length=500)
    legs: list[LegIn] = Field(
        default_factory=list,
        max_length=booking_legs.MAX_LEGS,
        description="the planned legs, " + LEGS_RULE,
    )


class ShipmentPatch(Model):
    """The booking fields that may change while the shipment is planned or in transit."""

    planned_departure: AwareDatetime | None = None
    planned_arrival: AwareDatetime | None = None
    carrier: str | None = Field(default=None, max_length=200)
    carrier_id: int | None = Field(default=None, ge=1, le=2**63 - 1)
    lane_id: int | None = Field(default=None, ge=1, le=2**63 - 1)
    legs: list[LegIn] | None = Field(
        default=None,
        max_length=booking_legs.MAX_LEGS,
        description="the whole new plan of legs ([] removes them; absent or null: unchanged), "
        + LEGS_RULE,
    )
    reason: str | None = Field(default=None, max_length=2000)


class ItemOut(BaseModel):
    gtin: str
    product_name: str
    lot: str
    quantity: int


class Assignment(BaseModel):
    device_id: str
    calibration_due: date | None
    assigned_from: AwareDatetime | None
    assigned_to: AwareDatetime | None
    attached: bool


class Booking(BaseModel):
    shipment_id: int
    reference: str
    status: str
    version: int
    product_gtin: str | None
    origin: str
    destination: str
    planned_departure: AwareDatetime | None
    planned_arrival: AwareDatetime | None
    carrier: str | None
    lane_id: int | None
    carrier_id: int | None
    started_at: AwareDatetime | None
    arrived_at: AwareDatetime | None
    created_at: AwareDatetime
    references: list[ExternalReference]
    items: list[ItemOut]
    legs: list[LegOut]
    loggers: list[Assignment]


class Attach(Model):
    device_id: str = Field(min_length=1, max_length=64)
    override_reason: str | None = Field(
        default=None,
        max_length=2000,
        description="required to attach a logger whose calibration is past due; audited",
    )


class Because(Model):
    reason: str | None = Field(default=None, max_length=2000)


class CancelBody(Model):
    reason: str = Field(min_length=1, max_length=2000)


class UnitScan(Model):
    scan: str = Field(min_length=1, max_length=500, description="an SSCC or SGTIN in any GS1 form")


class UnitOut(BaseModel):
    epc: str


class StateOut(BaseModel):
    shipment_id: int
    status: str
    version: int
    started_at: AwareDatetime | None
    arrived_at: AwareDatetime | None


class TimelineEntry(BaseModel):
    event_id: int
    at: AwareDatetime
    event: str
    from_state: str | None
    to_state: str | None
    actor: str
    reason: str | None
    data: dict[str, Any]


class VerdictOut(BaseModel):
    verdict_id: int
    shipment_id: int
    gtin: str
    verdict: Literal["conforming", "exception"]
    reasons: list[dict[str, Any]]
    figures: dict[str, Any]
    profile_version: int | None
    evaluated_at: AwareDatetime
    evaluated_by: str


class QueueEntry(BaseModel):
    shipment_id: int
    reference: str
    status: str
    arrived_at: AwareDatetime | None
    origin: str
    destination: str
    has_exception: bool
    max_budget_share: float | None = Field(
        description="the largest share of a band budget any product used (1.0 = all of it); "
        "a used zero budget is a very large number"
    )
    n_reasons: int
    verdicts: list[dict[str, Any]]


def _id(conn: ConnDep, key: str) -> int:
    return bookings.resolve(conn, key=key)


def _booking(row: dict[str, Any], response: Response) -> Booking:
    set_etag(response, row)
    return Booking.model_validate(row)


def _new(body: ShipmentCreate) -> bookings.NewShipment:
    return bookings.NewShipment(
        reference=body.reference,
        origin=body.origin,
        destination=body.destination,
        product_gtin=body.product_gtin,
        lane_id=body.lane_id,
        carrier_id=body.carrier_id,
        carrier=body.carrier,
        planned_departure=body.planned_departure,
        planned_arrival=body.planned_arrival,
        references=tuple((r.kind, r.value) for r in body.references),
        items=tuple(bookings.Item(i.gtin, i.lot, i.quantity) for i in body.items),
        legs=_legs(body.legs),
    )


def _legs(legs: list[LegIn]) -> tuple[booking_legs.Leg, ...]:
    return tuple(booking_legs.Leg(**leg.model_dump()) for leg in legs)


@router.post(
    "",
    status_code=201,
    openapi_extra=MANAGE,
    responses={
        200: {"model": Booking, "description": "a repeat: the shipment made first"},
        **WRITE_RESPONSES,
    },
)
def create_shipment(
    body: ShipmentCreate,
    caller: CallerDep,
    response: Response,
    conn: ConnDep,
    idempotency_key: Annotated[
        str | None,
        Header(max_length=200, description="makes a retried create return the first shipment"),
    ] = None,
) -> Booking:
    """Book a shipment (planned); a retry of the same request returns the first one (200)."""
    row, created = bookings.create(
        conn, caller, new=_new(body), now=utcnow(),
        idempotency_key=idempotency_key,
    )  # fmt: skip
    response.status_code = 201 if created else 200
    return _booking(row, response)


@router.get("/{key}/booking")
def get_booking(key: ShipmentKey, conn: ConnDep, response: Response) -> Booking:
    """The booking with its ``version`` (also the ETag, for If-Match)."""
    return _booking(bookings.get(conn, shipment_id=_id(conn, key)), response)


@router.patch(
    "/{key}",
    openapi_extra=MANAGE,
    responses={**PRECONDITION_RESPONSES, **WRITE_RESPONSES},
)
def update_shipment(
    key: ShipmentKey,
    body: ShipmentPatch,
    caller: CallerDep,
    response: Response,
    conn: ConnDep,
    version: Annotated[int, Depends(expected_version)],
) -> Booking:
    """Change the plans, lane, carrier or planned legs (only the fields sent; ``legs`` replaces
    the whole plan), at the version read (``If-Match``)."""
    changes = body.model_dump(exclude_unset=True, exclude={"legs"})
    reason = changes.pop("reason", None)
    if body.legs is not None:
        changes["legs"] = _legs(body.legs)
    row = bookings.update(
        conn, caller, shipment_id=_id(conn, key), version=version, changes=changes,
        reason=reason, now=utcnow(),
    )  # fmt: skip
    return _booking(row, response)


@router.post("/{key}/references", openapi_extra=MANAGE, responses=WRITE_RESPONSES)
def add_reference(
    key: ShipmentKey, body: ExternalReference, caller: CallerDep, conn: ConnDep
) -> list[ExternalReference]:
    """Add an external reference (unique in the installation)."""
    rows = bookings.add_reference(
        conn, caller, shipment_id=_id(conn, key), kind=body.kind, value=body.value
    )
    return [ExternalReference.model_validate(r) for r in rows]


@router.delete("/{key}/references/{kind}/{value}", openapi_extra=MANAGE, responses=WRITE_RESPONSES)
def remove_reference(
    key: ShipmentKey,
    kind: ReferenceKind,
    value: Annotated[str, Path(min_length=1, max_length=200)],
    caller: CallerDep,
    conn: ConnDep,
) -> list[ExternalReference]:
    """Remove an external reference."""
    rows = bookings.remove_reference(
        conn, caller, shipment_id=_id(conn, key), kind=kind, value=value
    )
    return [ExternalReference.model_validate(r) for r in rows]


@router.post("/{key}/items", openapi_extra=MANAGE, responses=WRITE_RESPONSES)
def set_item(key: ShipmentKey, body: ItemIn, caller: CallerDep, conn: ConnDep) -> list[ItemOut]:
    """Put a product lot on board, or change its quantity (while planned)."""
    rows = bookings.set_item(
        conn, caller, shipment_id=_id(conn, key), gtin=body.gtin, lot=body.lot,
        quantity=body.quantity,
    )  # fmt: skip
    return [ItemOut.model_validate(r) for r in rows]


@router.delete("/{key}/items/{gtin}/{lot}", openapi_extra=MANAGE, responses=WRITE_RESPONSES)
def remove_item(
    key: ShipmentKey,
    gtin: Annotated[str, Path(min_length=8, max_length=14, pattern=r"^[0-9]+$")],
    lot: Annotated[str, Path(min_length=1, max_length=20)],
    caller: CallerDep,
    conn: ConnDep,
) -> list[ItemOut]:
    """Take a product lot off the shipment (while planned)."""
    rows = bookings.remove_item(conn, caller, shipment_id=_id(conn, key), gtin=gtin, lot=lot)
    return [ItemOut.model_validate(r) for r in rows]


@router.post("/{key}/units", openapi_extra=MANAGE, responses=WRITE_RESPONSES)
def add_unit(key: ShipmentKey, body: UnitScan, caller: CallerDep, conn: ConnDep) -> UnitOut:
    """Put a serialised unit on board by its scan (SSCC, or SGTIN with serial)."""
    epc = units_on_board.add_unit(
        conn, caller, shipment_id=_id(conn, key), scan=body.scan,
        now=utcnow(),
    )  # fmt: skip
    return UnitOut(epc=epc)


@router.post("/{key}/loggers", openapi_extra=MANAGE, responses=WRITE_RESPONSES)
def attach_logger(
    key: ShipmentKey, body: Attach, caller: CallerDep, conn: ConnDep
) -> list[Assignment]:
    """Attach a logger from now (409 if it rides in another shipment, or its calibration is
    past due and no ``override_reason`` is given)."""
    rows = bookings.attach(
        conn, caller, shipment_id=_id(conn, key), device_id=body.device_id,
        now=utcnow(), override_reason=body.override_reason,
    )  # fmt: skip
    return [Assignment.model_validate(r) for r in rows]


@router.post("/{key}/loggers/{device_id}/detach", openapi_extra=MANAGE, responses=WRITE_RESPONSES)
def detach_logger(
    key: ShipmentKey,
    device_id: Annotated[str, Path(min_length=1, max_length=64)],
    body: Because,
    caller: CallerDep,
    conn: ConnDep,
) -> list[Assignment]:
    """Detach a logger now; its readings until now stay the shipment's."""
    rows = bookings.detach(
        conn, caller, shipment_id=_id(conn, key), device_id=device_id,
        now=utcnow(), reason=body.reason,
    )  # fmt: skip
    return [Assignment.model_validate(r) for r in rows]


@router.post("/{key}/start", openapi_extra=MANAGE, responses=WRITE_RESPONSES)
def start(key: ShipmentKey, body: Because, caller: CallerDep, conn: ConnDep) -> StateOut:
    """planned → in_transit."""
    row = lifecycle.start(
        conn, caller, shipment_id=_id(conn, key), now=utcnow(),
        reason=body.reason,
    )  # fmt: skip
    return StateOut.model_validate(row)


@router.post("/{key}/arrive", openapi_extra=MANAGE, responses=WRITE_RESPONSES)
def arrive(
    key: ShipmentKey,
    body: Because,
    caller: CallerDep,
    conn: ConnDep,
    settings: SettingsDep,
    cfg: ReportSettingsDep,
) -> list[VerdictOut]:
    """in_transit → arrived → under_review, with a verdict per product on board; a conforming
    shipment that QA's auto-release policies cover is then released."""
    rows = lifecycle.arrive(
        conn, caller, shipment_id=_id(conn, key), now=utcnow(),
        gap_factor=settings.alerts.gap_factor, reason=body.reason, release=cfg,
    )  # fmt: skip
    return [VerdictOut.model_validate(r) for r in rows]


@router.post("/{key}/cancel", openapi_extra=MANAGE, responses=WRITE_RESPONSES)
def cancel(key: ShipmentKey, body: CancelBody, caller: CallerDep, conn: ConnDep) -> StateOut:
    """planned → cancelled (a reason is required)."""
    row = lifecycle.cancel(
        conn, caller, shipment_id=_id(conn, key), now=utcnow(),
        reason=body.reason,
    )  # fmt: skip
    return StateOut.model_validate(row)


@router.get("/{key}/timeline")
def timeline(key: ShipmentKey, conn: ConnDep) -> list[TimelineEntry]:
    """Every transition and booking change, oldest first."""
    rows = lifecycle.timeline(conn, shipment_id=_id(conn, key))
    return [TimelineEntry.model_validate(r) for r in rows]


@router.get("/{key}/verdicts")
def verdicts(key: ShipmentKey, conn: ConnDep) -> list[VerdictOut]:
    """The latest arrival verdict of each product on board."""
    rows = lifecycle.verdicts(conn, shipment_id=_id(conn, key))
    return [VerdictOut.model_validate(r) for r in rows]


@qa_router.get("/queue")
def qa_queue(conn: ConnDep, limit: Annotated[int, Query(ge=1, le=500)] = 100) -> list[QueueEntry]:
    """Shipments waiting for QA, exceptions first, then by the largest budget share used."""
    return [QueueEntry.model_validate(r) for r in lifecycle.qa_queue(conn, limit=limit)]
