"""The excursions the rules engine recorded for a shipment (the current ones, not superseded)."""

from __future__ import annotations

from db.types import Conn, Row

SELECT_EXCURSIONS = """
SELECT excursion_id AS id, shipment_id, device_id, direction, start_ts, end_ts, last_out_ts,
       (end_ts IS NULL) AS open, ended_by_gap,
       extract(epoch FROM coalesce(end_ts, last_out_ts) - start_ts)::double precision
           AS duration_s,
       min_c, max_c, degree_minutes, n_readings, readings_over_40, readings_freezing,
       alarm, alarm_at, freeze_alarm, rule_key, alert_id, thresholds
FROM excursions
WHERE shipment_id = %(shipment_id)s AND superseded_at IS NULL
ORDER BY start_ts, device_id
"""


def list_excursions(*, conn: Conn, shipment_id: int) -> list[Row]:
    """The current (not superseded) excursions of a shipment, oldest first."""
    return conn.execute(SELECT_EXCURSIONS, {"shipment_id": shipment_id}).fetchall()
