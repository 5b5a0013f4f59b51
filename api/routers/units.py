"""Serialised units: a unit's temperature passport, scan verification, recall of an excursion,
a lot's exposure, and counterfeit signals.

Identifiers are given as the query parameter ``id`` (or in a JSON body for verification) in any
form: EPC URI, GS1 Digital Link, element string as printed or as a scanner types it (FNC1 as the
GS character or a stand-in such as ``<GS>``), or a bare SSCC. They are matched by GTIN + serial
or by SSCC digits, whatever company prefix length they were written with (docs/TRACE.md).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from api.deps import ConnDep, ReportSettingsDep, SettingsDep, requires
from api.routers.recalls import Lot
from coldchain.gs1 import IdentifierError
from services import trace
from services.trace import Verification

router = APIRouter(prefix="/units", tags=["units"])

Identifier = Annotated[
    str,
    Query(
        min_length=1,
        max_length=400,
        description="SGTIN or SSCC: EPC URI, Digital Link, element string (scanned) or SSCC",
    ),
]


class _Out(BaseModel):
    model_config = ConfigDict(extra="ignore")


class UnitOut(_Out):
    """A serialised unit as stored."""

    epc: str
    kind: Literal["sgtin", "sscc"]
    gtin: str | None
    serial: str | None
    sscc: str | None
    lot: str | None
    expiry: date | None
    commissioned_at: AwareDatetime | None


class ProductOut(_Out):
    """The product the unit is judged against."""

    gtin: str
    name: str | None
    temp_min_c: float | None
    temp_max_c: float | None
    freeze_limit_c: float | None
    stability_budget_s: int | None
    mkt_limit_c: float | None


class ContainerOut(_Out):
    """The unit was (through ``chain``) inside ``container`` over [start, end)."""

    container: str
    kind: str
    depth: int
    chain: list[str]
    start: AwareDatetime | None
    end: AwareDatetime | None


class LegOut(_Out):
    """A planned leg of a shipment."""

    seq: int
    mode: str
    origin: str
    destination: str
    carrier: str | None


class CustodyOut(_Out):
    """``container`` rode in the shipment over [start, end) with the unit inside."""

    container: str
    chain: list[str]
    shipment_id: int
    shipment_reference: str
    start: AwareDatetime | None
    end: AwareDatetime | None
    legs: list[LegOut]


class PieceOut(_Out):
    """Over [start, end) the unit inherits this logger's readings."""

    device_id: str
    shipment_id: int
    shipment_reference: str
    container: str
    chain: list[str]
    start: AwareDatetime | None
    end: AwareDatetime | None


class BudgetOut(_Out):
    """Cumulative time out of range against the stability budget (coldchain.thermal.budget)."""

    budget_s: float | None
    time_in_s: float
    time_out_s: float
    time_gap_s: float
    counted_s: float
    count_gaps_as_out: bool
    remaining_s: float | None
    share_used: float | None
    status: Literal["ok", "warning", "exhausted"] | None
    exhausted_at: AwareDatetime | None


class MKTOut(_Out):
    """Mean kinetic temperature with what it depends on (coldchain.thermal.mkt)."""

    mkt_c: float
    delta_h_j_mol: float
    weighting: str
    max_gap_s: float
    duration_covered_s: float
    n_readings: int
    window_start: AwareDatetime
    window_end: AwareDatetime


class TrackOut(_Out):
    """One coherent series (one logger at a time) of the unit's history."""

    devices: list[str]
    start: AwareDatetime | None
    end: AwareDatetime | None
    as_of: AwareDatetime
    n_readings: int
    budget: BudgetOut | None
    mkt: MKTOut | None


class ComputedExcursionOut(_Out):
    """An excursion found in the unit's own series with its product's limits."""

    track: int
    direction: Literal["high", "low"]
    limit_c: float
    start: AwareDatetime
    end: AwareDatetime | None
    open: bool
    duration_s: float
    min_c: float
    max_c: float
    degree_minutes: float
    n_readings: int
    alarm: bool
    freeze_alarm: bool
    ended_by_gap: bool


class LimitsOut(_Out):
    """The range the passport judges by: the rules engine's for the unit's shipments."""

    low_c: float | None
    high_c: float | None
    freeze_c: float | None
    alarm_delay_s: float
    sources: list[str]


class FiguresOut(_Out):
    """The passport's figures; ``budget`` and ``mkt`` are the worst track's."""

    limits: LimitsOut | None
    max_gap_s: float
    weighting: str
    delta_h_j_mol: float
    n_readings: int
    tracks: list[TrackOut]
    budget: BudgetOut | None
    mkt: MKTOut | None
    mkt_above_limit: bool | None
    excursions: list[ComputedExcursionOut]


class RecordedExcursionOut(_Out):
    """An excursion the rules engine recorded while the unit was in the logger's shipment, with
    the signed QA disposition that decides its clearance for the unit (docs/TRACE.md)."""

    id: int
    shipment_id: int
    shipment_reference: str
    device_id: str
    direction: Literal["high", "low"]
    start_ts: AwareDatetime
    end_ts: AwareDatetime | None
    min_c: float
    max_c: float
    degree_minutes: float
    alarm: bool
    exposed_from: AwareDatetime
    exposed_to: AwareDatetime | None
    review_disposition: str | None = Field(
        description="the decision of the disposition in force for the unit (the later signed of "
        "the shipment's and the unit's lot's records); None: none signed"
    )
    reviewed_by: str | None = Field(description="who signed it (user name)")
    reviewed_at: AwareDatetime | None = Field(description="when it was signed")
    disposition_id: int | None
    disposition_lot: str | None = Field(description="the lot it is about; None: whole shipment")
    review_covers: bool = Field(
        description="it was signed on a report that held this excursion row (a release signed "
        "before late data superseded the row QA saw does not clear the new row)"
    )
    cleared: bool = Field(description="released, and review_covers")
    qa_state: str


class ReadingOut(_Out):
    """A reading the unit inherits."""

    device_id: str
    ts: AwareDatetime
    temp_c: float | None
    rh: float | None
    lat: float | None
    lon: float | None


class PassportOut(_Out):
    """A unit's temperature history across every container, shipment and leg."""

    unit: UnitOut
    product: ProductOut | None
    as_of: AwareDatetime
    containers: list[ContainerOut]
    custody: list[CustodyOut]
    pieces: list[PieceOut]
    figures: FiguresOut
    recorded_excursions: list[RecordedExcursionOut]
    readings: list[ReadingOut] | None = Field(description="None when include_readings=false")
    notes: list[str]


class TravelOut(_Out):
    """Two sightings too far apart for the time between them."""

    first_at: AwareDatetime
    first_place: str | None
    second_at: AwareDatetime
    second_place: str | None
    distance_km: float
    hours: float
    speed_kmh: float | None = Field(description="None: both sightings at the same instant")


class VerificationOut(_Out):
    """The verdict on a scanned identifier (docs/TRACE.md, "Verification")."""

    input: str
    status: Literal["invalid", "unknown", "recalled", "suspect", "expired", "exposed", "ok"]
    sellable: bool
    reasons: list[str]
    flags: list[str]
    epc: str | None
    kind: str | None
    gtin: str | None
    product_name: str | None
    lot: str | None
    expiry: date | None
    expired: bool | None
    commissioned_at: AwareDatetime | None
    recalls: list[dict[str, Any]]
    uncleared_excursions: list[RecordedExcursionOut]
    cleared_excursions: list[RecordedExcursionOut]
    impossible_travel: list[TravelOut]


class VerifyRequest(BaseModel):
    """A scanned identifier, as the scanner typed it (GS characters allowed)."""

    model_config = ConfigDict(extra="forbid")
    id: str = Field(min_length=1, max_length=400)


class ExposedUnitOut(_Out):
    """A unit inside the excursion's shipment while the logger was out of range."""

    epc: str
    kind: Literal["sgtin", "sscc"]
    gtin: str | None
    serial: str | None
    sscc: str | None
    lot: str | None
    expiry: date | None
    exposed_from: AwareDatetime | None
    exposed_to: AwareDatetime | None


class ExposedLotOut(_Out):
    """A lot with units exposed to the excursion."""

    gtin: str
    lot: str | None
    expiry: date | None
    units: int


class RecallOut(_Out):
    """Everything exposed to one excursion."""

    excursion: dict[str, Any]
    units: list[ExposedUnitOut]
    lots: list[ExposedLotOut]


class LotExcursionOut(_Out):
    """An excursion some of the lot's units were exposed to."""

    id: int
    shipment_id: int
    shipment_reference: str
    device_id: str
    direction: Literal["high", "low"]
    start_ts: AwareDatetime
    end_ts: AwareDatetime | None
    open: bool
    min_c: float
    max_c: float
    degree_minutes: float
    alarm: bool
    units_exposed: int
    review_disposition: str | None
    reviewed_by: str | None
    reviewed_at: AwareDatetime | None
    disposition_id: int | None
    disposition_lot: str | None
    review_covers: bool
    cleared: bool
    qa_state: str


class LotImpactOut(_Out):
    """Every excursion a lot's units were exposed to."""

    gtin: str
    lot: str
    units: int
    excursions: list[LotExcursionOut]


class UncommissionedOut(_Out):
    """A unit seen in EPCIS events but never commissioned, or seen before it was."""

    epc: str
    kind: str
    commissioned_at: AwareDatetime | None
    first_seen: AwareDatetime
    events: int


class SignalsOut(_Out):
    """Counterfeit signals among recent EPCIS events."""

    since: AwareDatetime
    impossible_travel: list[dict[str, Any]]
    uncommissioned: list[UncommissionedOut]


def _unprocessable(error: IdentifierError, field: str) -> HTTPException:
    return HTTPException(
        status_code=422,
        detail=[{"type": "value_error", "loc": ["query", field], "msg": str(error)}],
    )


def verification_json(v: Verification) -> dict[str, Any]:
    """A verification as the API returns it."""
    return {
        "input": v.input,
        "status": v.status,
        "sellable": v.sellable,
        "reasons": list(v.reasons),
        "flags": list(v.flags),
        "epc": v.epc if v.epc is not None else (v.key.epc if v.key else None),
        "kind": v.kind if v.kind is not None else (v.key.kind if v.key else None),
        "gtin": v.gtin if v.gtin is not None else (v.key.gtin if v.key else None),
        "product_name": v.product_name,
        "lot": v.lot if v.lot is not None else (v.key.lot if v.key else None),
        "expiry": v.expiry,
        "expired": v.expired,
        "commissioned_at": v.commissioned_at,
        "recalls": [dict(r) for r in v.recalls],
        "uncleared_excursions": [_recorded(e) for e in v.uncleared_excursions],
        "cleared_excursions": [_recorded(e) for e in v.cleared_excursions],
        "impossible_travel": [
            {
                "first_at": t.first.at,
                "first_place": t.first.place,
                "second_at": t.second.at,
                "second_place": t.second.place,
                "distance_km": t.distance_km,
                "hours": t.hours,
                "speed_kmh": None if t.hours <= 0 else t.speed_kmh,
            }
            for t in v.travel
        ],
    }


def _recorded(e: Any) -> dict[str, Any]:
    fields = RecordedExcursionOut.model_fields
    return {name: getattr(e, name) for name in fields}


@router.get("/passport")
def passport(
    id: Identifier,
    conn: ConnDep,
    settings: SettingsDep,
    cfg: ReportSettingsDep,
    include_readings: bool = True,
) -> PassportOut:
    """The unit's temperature history across every container, shipment and leg it was in: the
    readings it inherited, the excursions it was exposed to, its time out of range against the
    stability budget, its MKT, and its chain of custody."""
    now = datetime.now(UTC)
    try:
        result = trace.passport(
            conn, cfg, identifier=id, now=now, gap_factor=settings.alerts.gap_factor
        )
    except IdentifierError as error:
        raise _unprocessable(error, "id") from None
    return PassportOut.model_validate(
        trace.passport_json(result, include_readings=include_readings)
    )


@router.get("/verify")
def verify(id: Identifier, conn: ConnDep) -> VerificationOut:
    """Is this scanned identifier known, which product/lot/expiry, is it expired, recalled,
    exposed to an excursion QA has not released, or showing counterfeit signals? Always 200:
    the verdict is in ``status`` (``invalid`` and ``unknown`` included)."""
    today = datetime.now(UTC).date()
    return VerificationOut.model_validate(
        verification_json(trace.verify(conn, identifier=id, today=today))
    )


# A scan is a read, even when the scanner posts it: pharmacies and warehouses verify.
@router.post("/verify", openapi_extra=requires("read"))
def verify_scan(body: VerifyRequest, conn: ConnDep) -> VerificationOut:
    """As ``GET /units/verify``, with the scan in a JSON body (raw scanner output, GS included)."""
    today = datetime.now(UTC).date()
    return VerificationOut.model_validate(
        verification_json(trace.verify(conn, identifier=body.id, today=today))
    )


@router.get("/exposed")
def exposed_to_excursion(
    conn: ConnDep,
    excursion_id: Annotated[int, Query(ge=1, description="the excursion's id")],
) -> RecallOut:
    """Recall: every unit (pallets, cases, items) and lot that was inside the excursion's
    shipment while its logger was out of range, with when."""
    return RecallOut.model_validate(trace.exposed(conn, excursion_id=excursion_id))


@router.get("/lot-excursions")
def lot_excursions(
    conn: ConnDep,
    gtin: Annotated[str, Query(pattern=r"^[0-9]{14}$", description="GTIN-14")],
    lot: Annotated[Lot, Query(description="the lot (AI 10)")],
) -> LotImpactOut:
    """Impact: every excursion any unit of the lot was exposed to, with how many units were."""
    return LotImpactOut.model_validate(trace.lot_impact(conn, gtin=gtin, lot=lot))


@router.get("/signals")
def counterfeit_signals(
    conn: ConnDep,
    days: Annotated[float, Query(gt=0, le=366, description="look back this many days")] = 30,
) -> SignalsOut:
    """Counterfeit signals: one serial at two places that cannot both be true, and units seen
    in events but never commissioned (or before their commissioning)."""
    found = trace.signals(conn, now=datetime.now(UTC), days=days)
    return SignalsOut.model_validate(
        {
            "since": found.since,
            "impossible_travel": [
                {
                    "epc": t.epc,
                    "first_at": t.first.at,
                    "first_place": t.first.place,
                    "second_at": t.second.at,
                    "second_place": t.second.place,
                    "distance_km": round(t.distance_km, 1),
                    "speed_kmh": None if t.hours <= 0 else round(t.speed_kmh, 1),
                }
                for t in found.impossible_travel
            ],
            "uncommissioned": [dict(r) for r in found.uncommissioned],
        }
    )
