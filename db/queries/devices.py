"""Loggers: the list with their latest state, and one logger with its assignments; and the
writes of :mod:`services.loggers` (register, change at the version read, retire). A logger's
serial number is its ``device_id`` (migration 0010)."""

from __future__ import annotations

from typing import Any

from coldchain.errors import NotFoundError
from db.types import Conn, Row

_DEVICE_SELECT = """
SELECT d.device_id, d.model, d.calibration_cert, d.calibration_due, d.interval_s, d.created_at,
       d.version, d.retired_at,
       ds.ts AS last_seen, ds.temp_c, ds.rh, ds.lat, ds.lon, ds.battery, ds.online, ds.firmware,
       cur.shipment_id AS current_shipment_id, cur.reference AS current_shipment_reference
FROM devices d
LEFT JOIN device_state ds ON ds.device_id = d.device_id
"""

# One logger: its current assignment looked up by its id.
_CURRENT_OF_ONE = """
LEFT JOIN LATERAL (
    SELECT s.shipment_id, s.reference
    FROM device_assignments a JOIN shipments s ON s.shipment_id = a.shipment_id
    WHERE a.device_id = d.device_id AND a.during @> now()
    LIMIT 1
) cur ON true
"""

# Every logger: the current assignments in one pass, hash-joined (at 5,000 loggers the lookup
# per logger above took 0.7 s; this, a few tens of ms). A logger has at most one current
# assignment (the exclusion constraint of device_assignments), so the join adds no rows.
_CURRENT_OF_ALL = """
LEFT JOIN (
    SELECT a.device_id, s.shipment_id, s.reference
    FROM device_assignments a JOIN shipments s ON s.shipment_id = a.shipment_id
    WHERE a.during @> now()
) cur ON cur.device_id = d.device_id
"""

LIST_DEVICES = _DEVICE_SELECT + _CURRENT_OF_ALL + " ORDER BY d.device_id"
SELECT_DEVICE = _DEVICE_SELECT + _CURRENT_OF_ONE + " WHERE d.device_id = %(device_id)s"

SELECT_DEVICE_ASSIGNMENTS = """
SELECT a.shipment_id, s.reference AS shipment_reference,
       lower(a.during) AS assigned_from, upper(a.during) AS assigned_to,
       (a.during @> now()) AS current
FROM device_assignments a JOIN shipments s ON s.shipment_id = a.shipment_id
WHERE a.device_id = %(device_id)s
ORDER BY lower(a.during) DESC NULLS LAST
"""


def list_devices(*, conn: Conn) -> list[Row]:
    """Every logger with its latest state and the shipment it rides in now (if any)."""
    return conn.execute(LIST_DEVICES).fetchall()


def get_device(*, conn: Conn, device_id: str) -> Row:
    """One logger with its latest state and its assignments (newest first); raises NotFoundError."""
    row = conn.execute(SELECT_DEVICE, {"device_id": device_id}).fetchone()
    if row is None:
        raise NotFoundError(f"device {device_id!r} not found")
    row["assignments"] = conn.execute(
        SELECT_DEVICE_ASSIGNMENTS, {"device_id": device_id}
    ).fetchall()
    return row


#: The columns a logger is registered or changed with (besides its serial, ``device_id``).
FIELDS = ("model", "calibration_cert", "calibration_due", "interval_s")

SELECT_DEVICE_RECORD = f"""
SELECT device_id, {", ".join(FIELDS)}, version, created_at, retired_at
FROM devices WHERE device_id = %(device_id)s FOR UPDATE
"""
SELECT_EXISTING_DEVICES = f"""
SELECT device_id, {", ".join(FIELDS)}, version, created_at, retired_at
FROM devices WHERE device_id = ANY(%(device_ids)s)
"""
INSERT_DEVICE = f"""
INSERT INTO devices (device_id, {", ".join(FIELDS)})
VALUES (%(device_id)s, {", ".join(f"%({f})s" for f in FIELDS)})
"""
UPDATE_DEVICE = f"""
UPDATE devices SET {", ".join(f"{f} = %({f})s" for f in FIELDS)}, version = version + 1
WHERE device_id = %(device_id)s AND version = %(expected_version)s AND retired_at IS NULL
RETURNING device_id
"""
RETIRE_DEVICE = """
UPDATE devices SET retired_at = now(), version = version + 1
WHERE device_id = %(device_id)s AND version = %(expected_version)s AND retired_at IS NULL
RETURNING device_id
"""


def lock_device(*, conn: Conn, device_id: str) -> Row | None:
    """A logger's own columns, locked until the transaction ends; None if not registered."""
    return conn.execute(SELECT_DEVICE_RECORD, {"device_id": device_id}).fetchone()


def devices_by_id(*, conn: Conn, device_ids: list[str]) -> dict[str, Row]:
    """The loggers among ``device_ids`` that are registered, by id."""
    return {
        r["device_id"]: r for r in conn.execute(SELECT_EXISTING_DEVICES, {"device_ids": device_ids})
    }


def insert_devices(*, conn: Conn, devices: list[dict[str, Any]]) -> None:
    """New loggers (``device_id`` and :data:`FIELDS` each)."""
    with conn.cursor() as cur:
        cur.executemany(INSERT_DEVICE, devices)


def update_device(
    *, conn: Conn, device_id: str, expected_version: int, fields: dict[str, Any]
) -> bool:
    """Set :data:`FIELDS` of a live logger at ``expected_version``; False if it is not there."""
    params = {**fields, "device_id": device_id, "expected_version": expected_version}
    return conn.execute(UPDATE_DEVICE, params).fetchone() is not None


def retire_device(*, conn: Conn, device_id: str, expected_version: int) -> bool:
    """Retire a live logger at ``expected_version``; False if it is not there."""
    params = {"device_id": device_id, "expected_version": expected_version}
    return conn.execute(RETIRE_DEVICE, params).fetchone() is not None
