"""Lane risk, carrier scorecards and the weekly lane report (:mod:`services.insight`,
:mod:`services.lane_reports`; README "Insight").

Every role reads the figures. ``since``/``until`` bound the shipments' arrival; the minimum
volumes are the settings' (``insight.min_shipments``, ``insight.min_carrier_legs``). The report
of a week (``GET /insight/report.{csv,pdf}?lane=…|carrier=…&week=2026-W05``; default: the last
complete week) is the one the subscriptions are mailed. A subscription is its person's: anyone
who reads subscribes themselves; an admin may subscribe anyone, list everyone's (``?all=true``)
and end any.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from fastapi.responses import Response
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

from api.deps import CallerDep, ConnDep, SettingsDep, requires
from api.schemas import ErrorOut
from coldchain.errors import InvalidRecordError
from coldchain.insight.weeks import last_complete_week, parse_week
from services import insight, lane_reports

router = APIRouter(prefix="/insight", tags=["insight"])

LaneCode = Annotated[
    str, Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$", description="the lane's code")
]
Since = Annotated[AwareDatetime | None, Query(description="shipments that arrived from then")]
Until = Annotated[AwareDatetime | None, Query(description="shipments that arrived before then")]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class ScorePartOut(BaseModel):
    """One part of a lane's risk score: its figure, weight and points."""

    name: str
    label: str
    figure: float
    weight: float
    points: float


class LaneRiskOut(BaseModel):
    """A lane's figures (or one month's); ``score`` only from the minimum volume (``note``)."""

    lane: str
    mode: str
    month: str | None
    shipments: int
    with_excursions: int
    excursion_rate: float | None
    time_out_mean_s: float | None
    time_out_p90_s: float | None
    band_low_c: float | None
    band_high_c: float | None
    band_readings: int
    with_plan: int
    delay_median_s: float | None
    late_share: float | None
    alerts: int
    alarm_rate: float | None
    minimum: int
    score: float | None
    parts: list[ScorePartOut]
    note: str | None


class CarrierScoreOut(BaseModel):
    """One carrier on one lane, leg by leg; scored (``enough``) from the minimum volume."""

    lane: str
    carrier: str
    legs: int
    shipments: int
    timed_legs: int
    on_time_share: float | None
    excursions: int
    excursions_per_100: float
    time_out_per_shipment_s: float
    minimum: int
    enough: bool
    note: str | None


class SubscriptionIn(BaseModel):
    """A subscription to the weekly report of one lane (code) or one carrier (name)."""

    model_config = ConfigDict(extra="forbid")
    lane: Name | None = None
    carrier: Name | None = None
    email: Annotated[str, StringConstraints(strip_whitespace=True, max_length=320)] | None = Field(
        default=None, description="default: the person's address on file"
    )
    username: Name | None = Field(default=None, description="someone else (admin only)")


class SubscriptionOut(BaseModel):
    subscription_id: int
    username: str
    lane: str | None
    carrier: str | None
    email: str
    created_at: AwareDatetime
    active: bool
    ended_at: AwareDatetime | None


def _out(rows: list[Any], model: type[BaseModel]) -> list[Any]:
    return [model.model_validate(r.to_dict() if hasattr(r, "to_dict") else r) for r in rows]


@router.get("/lanes")
def lanes(
    conn: ConnDep, cfg: SettingsDep, since: Since = None, until: Until = None
) -> list[LaneRiskOut]:
    """Every lane's risk, the riskiest first; lanes below the minimum after, with a note."""
    rows = insight.lane_risk(conn, since=since, until=until, minimum=cfg.insight.min_shipments)
    return _out(rows, LaneRiskOut)


@router.get("/lanes/{lane}")
def lane(
    lane: LaneCode, conn: ConnDep, cfg: SettingsDep, since: Since = None, until: Until = None
) -> LaneRiskOut:
    """One lane's risk."""
    (row,) = insight.lane_risk(
        conn, lane=lane, since=since, until=until, minimum=cfg.insight.min_shipments
    )
    return LaneRiskOut.model_validate(row.to_dict())


@router.get("/lanes/{lane}/months")
def lane_months(
    lane: LaneCode, conn: ConnDep, cfg: SettingsDep, since: Since = None, until: Until = None
) -> list[LaneRiskOut]:
    """One lane's figures per calendar month of arrival, oldest first (seasonality)."""
    rows = insight.lane_months(
        conn, lane=lane, since=since, until=until, minimum=cfg.insight.min_shipments
    )
    return _out(rows, LaneRiskOut)


@router.get("/carriers")
def carriers(
    conn: ConnDep,
    cfg: SettingsDep,
    lane: Annotated[str | None, Query(max_length=64, description="one lane's code")] = None,
    carrier: Annotated[str | None, Query(max_length=200, description="one carrier")] = None,
    since: Since = None,
    until: Until = None,
) -> list[CarrierScoreOut]:
    """Carriers compared on each lane, leg by leg."""
    rows = insight.carrier_scores(
        conn,
        lane=lane,
        carrier=carrier,
        since=since,
        until=until,
        minimum=cfg.insight.min_carrier_legs,
    )
    return _out(rows, CarrierScoreOut)


MEDIA = {"csv": "text/csv; charset=utf-8", "pdf": "application/pdf"}


@router.get(
    "/report.{fmt}",
    response_class=Response,
    responses={
        200: {"content": {"text/csv": {}, "application/pdf": {}}, "description": "the report"},
        422: {"model": ErrorOut, "description": "no lane or carrier, both, or a bad week"},
    },
)
def weekly_report(
    fmt: Annotated[Literal["csv", "pdf"], Path(description="csv or pdf")],
    conn: ConnDep,
    cfg: SettingsDep,
    lane: Annotated[str | None, Query(max_length=64, description="one lane's code")] = None,
    carrier: Annotated[str | None, Query(max_length=200, description="one carrier")] = None,
    week: Annotated[
        str | None,
        Query(max_length=20, description="2026-W05 or a date in it (default: last week)"),
    ] = None,
) -> Response:
    """The weekly lane quality report of one lane or carrier."""
    try:
        when = last_complete_week(datetime.now(UTC)) if week is None else parse_week(week)
    except ValueError as exc:
        raise InvalidRecordError("week", str(exc)) from None
    report = lane_reports.weekly_report(
        conn,
        week=when,
        lane=lane,
        carrier=carrier,
        min_shipments=cfg.insight.min_shipments,
        min_carrier_legs=cfg.insight.min_carrier_legs,
    )
    body = report.csv if fmt == "csv" else report.pdf
    return Response(
        body,
        media_type=MEDIA[fmt],
        headers={"Content-Disposition": f'attachment; filename="{report.name}.{fmt}"'},
    )


@router.get("/subscriptions")
def subscriptions(
    conn: ConnDep,
    caller: CallerDep,
    everyone: Annotated[bool, Query(alias="all", description="everyone's (admin only)")] = False,
) -> list[SubscriptionOut]:
    """The caller's subscriptions to the weekly report (everyone's for an admin who asks)."""
    return _out(lane_reports.subscriptions(conn, caller, everyone=everyone), SubscriptionOut)


@router.post(
    "/subscriptions",
    openapi_extra=requires("read"),
    responses={422: {"model": ErrorOut}},
)
def subscribe(body: SubscriptionIn, conn: ConnDep, caller: CallerDep) -> SubscriptionOut:
    """Subscribe to the weekly report of one lane or carrier (the same again: the same one)."""
    row = lane_reports.subscribe(
        conn,
        caller,
        lane=body.lane,
        carrier=body.carrier,
        email=body.email,
        username=body.username,
    )
    return SubscriptionOut.model_validate(row)


@router.delete("/subscriptions/{subscription_id}", openapi_extra=requires("read"))
def unsubscribe(
    subscription_id: Annotated[int, Path(ge=1, le=2**63 - 1)], conn: ConnDep, caller: CallerDep
) -> SubscriptionOut:
    """End a subscription (one's own; an admin: anyone's)."""
    return SubscriptionOut.model_validate(lane_reports.unsubscribe(conn, caller, subscription_id))
