"""Shipments: the fleet list, one shipment in full, its readings and its excursions."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query
from pydantic import AwareDatetime

from api.deps import ConnDep, OfflineFactorDep, SettingsDep
from api.schemas import (
    Condition,
    Excursion,
    ReadingSeries,
    ShipmentDetail,
    ShipmentForecast,
    ShipmentPage,
    ShipmentStatus,
)
from services import forecast as forecast_s
from services import shipments as shipment_s

router = APIRouter(prefix="/shipments", tags=["shipments"])

ShipmentKey = Annotated[
    str,
    Path(min_length=1, max_length=200, description="the shipment's numeric id or its reference"),
]
Start = Annotated[AwareDatetime | None, Query(description="inclusive, ISO 8601 with time zone")]
End = Annotated[AwareDatetime | None, Query(description="exclusive, ISO 8601 with time zone")]
MaxPoints = Annotated[
    int,
    Query(ge=10, le=20_000, description="above this many readings, down-sample into buckets"),
]


def check_range(start: AwareDatetime | None, end: AwareDatetime | None) -> None:
    """422 unless ``start`` is before ``end`` (when both are given)."""
    if start is not None and end is not None and end <= start:
        raise HTTPException(
            status_code=422,
            detail=[
                {
                    "type": "value_error",
                    "loc": ["query", "end"],
                    "msg": "end must be after start",
                    "input": end.isoformat(),
                }
            ],
        )


@router.get("")
def list_shipments(
    conn: ConnDep,
    offline_factor: OfflineFactorDep,
    status: ShipmentStatus | None = None,
    condition: Condition | None = None,
    q: Annotated[
        str | None,
        Query(
            max_length=200,
            description="search in reference, origin, destination and the external references (purchase order, sales order, customer …)",
        ),
    ] = None,
    has_open_alerts: bool | None = None,
    lane: Annotated[
        str | None, Query(max_length=200, description="origin → destination, as `lane` shows it")
    ] = None,
    carrier: Annotated[
        str | None, Query(max_length=200, description="the shipment's or any leg's carrier")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> ShipmentPage:
    """Shipments with their live picture; those needing action first (alarm, warning, offline),
    then the longest out of range. Each says since when it is out of range, its peak, budget
    used, QA state, carriers and planned arrival, as the dashboard's fleet table does."""
    page = shipment_s.list_shipments(
        conn,
        offline_factor=offline_factor,
        status=status,
        condition=condition,
        q=q,
        has_open_alerts=has_open_alerts,
        lane=lane,
        carrier=carrier,
        limit=limit,
        offset=offset,
    )
    return ShipmentPage.model_validate(
        {"items": page.items, "total": page.total, "limit": page.limit, "offset": page.offset}
    )


@router.get("/{key}")
def get_shipment(
    key: ShipmentKey, conn: ConnDep, offline_factor: OfflineFactorDep
) -> ShipmentDetail:
    """One shipment by id or reference: legs, loggers, product, latest reading, alerts, units."""
    detail = shipment_s.shipment_detail(conn, key=key, offline_factor=offline_factor)
    return ShipmentDetail.model_validate(detail)


@router.get("/{key}/readings")
def shipment_readings(
    key: ShipmentKey,
    conn: ConnDep,
    start: Start = None,
    end: End = None,
    max_points: MaxPoints = 2000,
) -> ReadingSeries:
    """The readings of the shipment's loggers during their assignments, in [start, end).

    When the range holds more than ``max_points`` readings they are down-sampled server-side
    with TimescaleDB ``time_bucket`` (min, mean and max per bucket).
    """
    check_range(start, end)
    shipment_id = shipment_s.find_shipment(conn, key=key)
    series = shipment_s.shipment_readings(
        conn, shipment_id=shipment_id, start=start, end=end, max_points=max_points
    )
    return ReadingSeries.model_validate(
        {
            "shipment_id": shipment_id,
            "start": start,
            "end": end,
            "resolution": series.resolution,
            "bucket_s": series.bucket_s,
            "total_readings": series.total_readings,
            "points": series.points,
        }
    )


@router.get("/{key}/excursions")
def shipment_excursions(key: ShipmentKey, conn: ConnDep) -> list[Excursion]:
    """The shipment's current excursions (superseded versions left out), oldest first."""
    shipment_id = shipment_s.find_shipment(conn, key=key)
    return [
        Excursion.model_validate(r) for r in shipment_s.excursions(conn, shipment_id=shipment_id)
    ]


@router.get("/{key}/forecast")
def shipment_forecast(key: ShipmentKey, conn: ConnDep, settings: SettingsDep) -> ShipmentForecast:
    """The forecast of a shipment in transit: expected arrival with its 10–90 % interval, the
    chance of an excursion and of exhausting the stability budget before arrival, and the
    lane's history it rests on (README "Forecast"). ``forecast`` is null when the shipment is
    not in transit."""
    shipment_id, found = forecast_s.forecast(
        conn, key=key, now=datetime.now(UTC), trend_weight=settings.forecast.trend_weight
    )
    return ShipmentForecast.model_validate(
        {
            "shipment_id": shipment_id,
            "forecast": None if found is None else found.to_json(),
            "reason": None
            if found is not None
            else "not in transit: a forecast is for the road ahead",
        }
    )
