"""Readings of one logger, whatever shipment it rode in."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from api.deps import ConnDep
from api.routers.shipments import End, MaxPoints, Start, check_range
from api.schemas import ReadingSeries
from services import shipments as shipment_s

router = APIRouter(tags=["readings"])


@router.get("/devices/{device_id}/readings")
def device_readings(
    device_id: Annotated[str, Path(min_length=1, max_length=64)],
    conn: ConnDep,
    start: Start = None,
    end: End = None,
    max_points: MaxPoints = 2000,
) -> ReadingSeries:
    """A logger's readings in [start, end), down-sampled like a shipment's above ``max_points``."""
    check_range(start, end)
    series = shipment_s.device_readings(
        conn, device_id=device_id, start=start, end=end, max_points=max_points
    )
    return ReadingSeries.model_validate(
        {
            "device_id": device_id,
            "start": start,
            "end": end,
            "resolution": series.resolution,
            "bucket_s": series.bucket_s,
            "total_readings": series.total_readings,
            "points": series.points,
        }
    )
