"""EPCIS export: a shipment's units, packing, logger windows, readings and excursions."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from coldchain.errors import NotFoundError
from db.queries.trace.containment import MAX_DEPTH
from db.types import Conn, Row

SELECT_SHIPMENT = """
SELECT shipment_id, reference, origin, destination, product_gtin, status
FROM shipments WHERE shipment_id = %(shipment_id)s
"""

# The shipment's logistic units and when they rode.
SHIPMENT_RIDES = """
SELECT su.epc, lower(su.during) AS starts, upper(su.during) AS ends, su.event_key
FROM shipment_units su WHERE su.shipment_id = %(shipment_id)s
ORDER BY lower(su.during), su.epc
"""

# Packing below the shipment's logistic units while they rode (the whole tree, every level).
SHIPMENT_PACKING = f"""
WITH RECURSIVE tree (epc, parent, depth, chain, during, packed) AS (
    SELECT su.epc, NULL::text, 0, ARRAY[su.epc], su.during, su.during
    FROM shipment_units su WHERE su.shipment_id = %(shipment_id)s
  UNION ALL
    SELECT a.child_epc, a.parent_epc, t.depth + 1, t.chain || a.child_epc, t.during * a.during,
           a.during
    FROM tree t
    JOIN aggregations a ON a.parent_epc = t.epc AND a.during && t.during
    WHERE t.depth < {MAX_DEPTH} AND a.child_epc <> ALL(t.chain)
)
SELECT DISTINCT parent AS parent_epc, epc AS child_epc, lower(packed) AS starts,
       upper(packed) AS ends
FROM tree
WHERE depth > 0
ORDER BY starts NULLS FIRST, parent_epc, child_epc
"""

# The raw packing rows along one unit's path (every level above it), for its EPCIS export.
UNIT_PACKING = f"""
WITH RECURSIVE path (node, depth, chain, during, packed, child) AS (
    SELECT u.epc, 0, ARRAY[u.epc], '(,)'::tstzrange, NULL::tstzrange, NULL::text
    FROM units u WHERE u.epc = %(epc)s
  UNION ALL
    SELECT a.parent_epc, p.depth + 1, p.chain || a.parent_epc, p.during * a.during, a.during,
           a.child_epc
    FROM path p
    JOIN aggregations a ON a.child_epc = p.node AND a.during && p.during
    WHERE p.depth < {MAX_DEPTH} AND a.parent_epc <> ALL(p.chain)
)
SELECT DISTINCT node AS parent_epc, child AS child_epc, lower(packed) AS starts,
       upper(packed) AS ends
FROM path
WHERE depth > 0
ORDER BY starts NULLS FIRST, parent_epc, child_epc
"""

SHIPMENT_WINDOWS = """
SELECT device_id, lower(during) AS starts, upper(during) AS ends
FROM device_assignments WHERE shipment_id = %(shipment_id)s
ORDER BY lower(during), device_id
"""

# Per logger window and time bucket: temperature and humidity min/max/mean, the last position.
WINDOW_BUCKETS = """
SELECT r.device_id,
       time_bucket(make_interval(secs => %(bucket_s)s), r.ts) AS bucket,
       min(r.ts) AS first_ts, max(r.ts) AS last_ts, count(*) AS n,
       min(r.temp_c) AS temp_min, max(r.temp_c) AS temp_max, avg(r.temp_c) AS temp_mean,
       min(r.rh) AS rh_min, max(r.rh) AS rh_max, avg(r.rh) AS rh_mean,
       last(r.lat, r.ts) FILTER (WHERE r.lat IS NOT NULL) AS lat,
       last(r.lon, r.ts) FILTER (WHERE r.lon IS NOT NULL) AS lon
FROM unnest(%(devices)s::text[], %(starts)s::timestamptz[], %(ends)s::timestamptz[])
     AS w(device_id, starts, ends)
JOIN readings r
  ON r.device_id = w.device_id
 AND r.ts >= coalesce(w.starts, '-infinity') AND r.ts < coalesce(w.ends, 'infinity')
GROUP BY r.device_id, bucket
ORDER BY bucket, r.device_id
"""

SHIPMENT_EXCURSIONS = """
SELECT excursion_id AS id, device_id, direction, start_ts, end_ts, last_out_ts, min_c, max_c,
       thresholds
FROM excursions WHERE shipment_id = %(shipment_id)s AND superseded_at IS NULL
ORDER BY start_ts, device_id
"""


def get_shipment(*, conn: Conn, shipment_id: int) -> Row:
    """A shipment's identity; raises NotFoundError."""
    row = conn.execute(SELECT_SHIPMENT, {"shipment_id": shipment_id}).fetchone()
    if row is None:
        raise NotFoundError(f"shipment {shipment_id} not found")
    return row


def shipment_rides(*, conn: Conn, shipment_id: int) -> list[Row]:
    """The logistic units that rode in the shipment, and when."""
    return conn.execute(SHIPMENT_RIDES, {"shipment_id": shipment_id}).fetchall()


def shipment_packing(*, conn: Conn, shipment_id: int) -> list[Row]:
    """Every packing interval below the shipment's logistic units (overlapping their ride)."""
    return conn.execute(SHIPMENT_PACKING, {"shipment_id": shipment_id}).fetchall()


def unit_packing(*, conn: Conn, epc: str) -> list[Row]:
    """The packing rows along a unit's path, every level above it."""
    return conn.execute(UNIT_PACKING, {"epc": epc}).fetchall()


def shipment_windows(*, conn: Conn, shipment_id: int) -> list[Row]:
    """The shipment's logger assignments."""
    return conn.execute(SHIPMENT_WINDOWS, {"shipment_id": shipment_id}).fetchall()


def shipment_excursions(*, conn: Conn, shipment_id: int) -> list[Row]:
    """The shipment's current excursions."""
    return conn.execute(SHIPMENT_EXCURSIONS, {"shipment_id": shipment_id}).fetchall()


def window_buckets(
    *,
    conn: Conn,
    windows: Sequence[tuple[str, datetime | None, datetime | None]],
    bucket_s: int,
) -> list[Row]:
    """Per (device window, time bucket) summary of the readings (see WINDOW_BUCKETS)."""
    if not windows:
        return []
    return conn.execute(
        WINDOW_BUCKETS,
        {
            "devices": [w[0] for w in windows],
            "starts": [w[1] for w in windows],
            "ends": [w[2] for w in windows],
            "bucket_s": bucket_s,
        },
    ).fetchall()
