"""Loggers: the list with their latest state, and one logger with its assignments."""

from __future__ import annotations

from coldchain.errors import NotFoundError
from db.types import Conn, Row

_DEVICE_COLUMNS = """
SELECT d.device_id, d.model, d.calibration_cert, d.calibration_due, d.interval_s, d.created_at,
       ds.ts AS last_seen, ds.temp_c, ds.rh, ds.lat, ds.lon, ds.battery, ds.online, ds.firmware,
       cur.shipment_id AS current_shipment_id, cur.reference AS current_shipment_reference
FROM devices d
LEFT JOIN device_state ds ON ds.device_id = d.device_id
LEFT JOIN LATERAL (
    SELECT s.shipment_id, s.reference
    FROM device_assignments a JOIN shipments s ON s.shipment_id = a.shipment_id
    WHERE a.device_id = d.device_id AND a.during @> now()
    LIMIT 1
) cur ON true
"""

LIST_DEVICES = _DEVICE_COLUMNS + " ORDER BY d.device_id"
SELECT_DEVICE = _DEVICE_COLUMNS + " WHERE d.device_id = %(device_id)s"

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
