"""Loggers: calibration, latest state, where they ride now and where they rode."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from api.deps import ConnDep
from api.schemas import Device, DeviceDetail
from db.queries import devices as device_q

router = APIRouter(prefix="/devices", tags=["devices"])


@router.get("")
def list_devices(conn: ConnDep) -> list[Device]:
    """Every logger with its latest state and current shipment."""
    return [Device.model_validate(r) for r in device_q.list_devices(conn=conn)]


@router.get("/{device_id}")
def get_device(
    device_id: Annotated[str, Path(min_length=1, max_length=64)], conn: ConnDep
) -> DeviceDetail:
    """One logger with its assignments, newest first."""
    return DeviceDetail.model_validate(device_q.get_device(conn=conn, device_id=device_id))
