"""Loggers: calibration, latest state, where they ride now and where they rode; registered,
changed and retired by the roles with ``devices.manage`` (admin).

A logger's serial number is its ``device_id``. Registering one answers its MQTT password once
(``mqtt_password``; a retried registration answers the stored logger and no password) and
rewrites the broker's password file and ACL when this host has them (``{stack.data_dir}/mosquitto``);
the broker applies them on SIGHUP (README "Master data").
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Response
from pydantic import BaseModel, Field

from api.deps import ClientDep, ConnDep, PrincipalDep, SettingsDep, requires
from api.preconditions import PRECONDITION_RESPONSES, expected_version, patch_model, set_etag
from api.schemas import Device, DeviceDetail, ErrorOut
from services import loggers as service
from services.caller import Caller
from services.loggers import LoggerIn

router = APIRouter(prefix="/devices", tags=["devices"])
_MANAGE = requires("devices.manage")

DevicePath = Annotated[str, Path(min_length=1, max_length=64)]
ReasonQuery = Annotated[
    str, Query(min_length=1, max_length=2000, description="why: recorded in the audit trail")
]
VersionDep = Annotated[int, Depends(expected_version)]
LoggerPatch = patch_model(LoggerIn, exclude=("device_id",))
_WRITE_RESPONSES: dict[int | str, dict[str, Any]] = {
    409: {"model": ErrorOut, "description": "the serial is another logger, or it is retired"},
    422: {"model": ErrorOut, "description": "a value the logger may not have (field named)"},
}


class RegisteredLogger(BaseModel):
    """A registered logger and, when new, its MQTT credentials: shown this once."""

    logger: DeviceDetail
    created: bool
    mqtt_username: str
    mqtt_password: str | None = Field(description="shown once; null on a retried registration")
    telemetry_topic: str
    broker_files_written: bool = Field(
        description="whether this host's broker password file and ACL were rewritten "
        "(the broker applies them on SIGHUP)"
    )


@router.get("")
def list_devices(conn: ConnDep) -> list[Device]:
    """Every logger with its latest state and current shipment."""
    return [Device.model_validate(r) for r in service.list_loggers(conn)]


@router.get("/{device_id}")
def get_device(device_id: DevicePath, conn: ConnDep, response: Response) -> DeviceDetail:
    """One logger with its assignments, newest first; its ETag is its version."""
    row = service.get_logger(conn, device_id)
    set_etag(response, row)
    return DeviceDetail.model_validate(row)


@router.post(
    "",
    status_code=201,
    openapi_extra=_MANAGE,
    responses={
        200: {"model": RegisteredLogger, "description": "already registered as given"},
        **_WRITE_RESPONSES,
    },
)
def register_device(
    body: LoggerIn,
    conn: ConnDep,
    principal: PrincipalDep,
    client: ClientDep,
    settings: SettingsDep,
    response: Response,
) -> RegisteredLogger:
    """Register a logger (its serial as device_id) and issue its MQTT password."""
    done = service.register_logger(
        conn,
        Caller.of(principal, client),
        logger=body,
        topic_root=settings.mqtt.topic_root,
        broker_dir=service.broker_dir(settings),
    )
    response.status_code = 201 if done.created else 200
    set_etag(response, done.logger)
    return RegisteredLogger(
        logger=DeviceDetail.model_validate(done.logger),
        created=done.created,
        mqtt_username=body.device_id,
        mqtt_password=done.mqtt_password,
        telemetry_topic=f"{settings.mqtt.topic_root}/devices/{body.device_id}/telemetry",
        broker_files_written=done.broker_files_written,
    )


@router.patch(
    "/{device_id}",
    openapi_extra=_MANAGE,
    responses=PRECONDITION_RESPONSES | _WRITE_RESPONSES,
)
def update_device(
    device_id: DevicePath,
    body: LoggerPatch,  # type: ignore[valid-type]
    reason: ReasonQuery,
    version: VersionDep,
    conn: ConnDep,
    principal: PrincipalDep,
    client: ClientDep,
    response: Response,
) -> DeviceDetail:
    """Change a logger's model, interval or calibration."""
    row = service.update_logger(
        conn,
        Caller.of(principal, client),
        device_id=device_id,
        changes=body.model_dump(exclude_unset=True),  # type: ignore[attr-defined]
        expected_version=version,
        reason=reason,
    )
    set_etag(response, row)
    return DeviceDetail.model_validate(row)


@router.post(
    "/{device_id}/retire",
    openapi_extra=_MANAGE,
    responses=PRECONDITION_RESPONSES | _WRITE_RESPONSES,
)
def retire_device(
    device_id: DevicePath,
    reason: ReasonQuery,
    version: VersionDep,
    conn: ConnDep,
    principal: PrincipalDep,
    client: ClientDep,
    settings: SettingsDep,
    response: Response,
) -> DeviceDetail:
    """Retire a logger: its MQTT credential is revoked; its history stays."""
    row = service.retire_logger(
        conn,
        Caller.of(principal, client),
        device_id=device_id,
        expected_version=version,
        reason=reason,
        topic_root=settings.mqtt.topic_root,
        broker_dir=service.broker_dir(settings),
    )
    set_etag(response, row)
    return DeviceDetail.model_validate(row)
