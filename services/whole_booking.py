"""A whole booking at once, as the dashboard's "New shipment" form submits it: the shipment,
its loggers and its units in one transaction (:func:`book`), through the same operations as
the API's separate calls (:mod:`services.bookings`).
"""

from __future__ import annotations

from datetime import datetime

from coldchain.errors import (
    InvalidRecordError,
    NotFoundError,
    RecordConflictError,
    ShipmentStateError,
)
from db.types import Conn, Row
from services.bookings import NewShipment, attach, create, get
from services.caller import Caller
from services.units_on_board import add_unit


def book(
    conn: Conn,
    caller: Caller,
    *,
    new: NewShipment,
    loggers: tuple[str, ...] = (),
    units: tuple[str, ...] = (),
    override_reason: str | None = None,
    now: datetime,
) -> tuple[Row, bool]:
    """A whole booking at once, as the dashboard's "New shipment" form submits it: :func:`create`,
    then :func:`attach` each logger and :func:`add_unit` each scan, in one transaction, so a
    refused logger or scan leaves no half-booked shipment behind. A refused logger or unit is
    an :class:`InvalidRecordError` naming ``loggers[i]`` / ``units[i]``, except an expired
    calibration, which stays a :class:`CalibrationExpiredError` (the form offers the override)."""
    with conn.transaction():
        row, created = create(conn, caller, new=new, now=now)
        shipment_id = int(row["shipment_id"])
        for i, device_id in enumerate(loggers):
            try:
                attach(conn, caller, shipment_id=shipment_id, device_id=device_id, now=now,
                       override_reason=override_reason)  # fmt: skip
            except (InvalidRecordError, NotFoundError, RecordConflictError,
                    ShipmentStateError) as exc:  # fmt: skip
                raise InvalidRecordError(f"loggers[{i}]", _message(exc)) from exc
        for i, scan in enumerate(units):
            try:
                add_unit(conn, caller, shipment_id=shipment_id, scan=scan, now=now)
            except (InvalidRecordError, NotFoundError, RecordConflictError) as exc:
                raise InvalidRecordError(f"units[{i}]", _message(exc)) from exc
    return get(conn, shipment_id=shipment_id), created


def _message(exc: Exception) -> str:
    """The refusal without the field an inner step named (the caller names its own)."""
    text = str(exc)
    if isinstance(exc, InvalidRecordError):
        return text.removeprefix(f"{exc.field}: ")
    return text
