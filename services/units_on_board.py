"""Serialised units on board a shipment, by scan: :func:`read_scan` reads an SSCC or an SGTIN in
any GS1 form (element string, Digital Link, EPC URI; pure), :func:`add_unit` puts the unit on
board (a unit already on board another shipment is refused, 409). The API's ``POST
/shipments/{key}/units``, the dashboard's New shipment form and the whole booking call these.
"""

from __future__ import annotations

from datetime import date, datetime

from coldchain.errors import IdentifierError, InvalidRecordError, RecordConflictError
from db.queries import bookings as q
from db.types import Conn
from services.bookings import require_booking
from services.caller import Caller, acting
from services.lifecycle import MANAGE
from traceability.identifiers import UnitKey, parse_unit


def read_scan(scan: str, *, today: date) -> UnitKey:
    """A unit's scan read (SSCC or SGTIN in any GS1 form; pure), or InvalidRecordError naming
    ``scan`` with what is wrong: what :func:`add_unit` and the dashboard's form check."""
    try:
        return parse_unit(scan, today=today)
    except IdentifierError as exc:
        raise InvalidRecordError("scan", str(exc)) from None


def add_unit(conn: Conn, caller: Caller, *, shipment_id: int, scan: str, now: datetime) -> str:
    """Put a serialised unit on board by its scan (SSCC or SGTIN in any GS1 form); its EPC."""
    caller.require(MANAGE)
    unit = read_scan(scan, today=now.date())
    key = {"kind": unit.kind, "sscc": unit.sscc, "gtin": unit.gtin, "serial": unit.serial}
    with acting(conn, caller, f"unit {unit.epc} loaded"), conn.transaction():
        require_booking(conn, shipment_id)
        epc = q.find_unit(conn=conn, key=key)
        if epc is None:
            epc = unit.epc
            q.insert_unit(conn=conn, unit={**key, "epc": epc, "lot": unit.lot,
                                           "expiry": unit.expiry})  # fmt: skip
        elsewhere = q.unit_elsewhere(conn=conn, epc=epc, at=now)
        if elsewhere is not None:
            if elsewhere["shipment_id"] == shipment_id:
                return epc
            raise RecordConflictError(f"unit {epc} is on board shipment {elsewhere['reference']}")
        q.add_unit(conn=conn, shipment_id=shipment_id, epc=epc, at=now)
    return epc
