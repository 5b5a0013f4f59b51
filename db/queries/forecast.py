"""What a forecast of shipments in transit reads (:mod:`services.forecast`): the lanes' finished
shipments with their excursions, and the state of the shipments in transit. Two statements for a
whole page of shipments, never one per row.

The excursions are the rules engine's current ones (not superseded); the trend is the engine's
open ``predicted_breach`` alert (the "forecast" rule), so the trend a page shows is the one the
engine judged, and no page fits curves for 5,000 shipments.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from db.types import Conn, Row

#: The newest finished shipments of each lane a forecast learns from (older ones are left out:
#: a lane's carriers and packaging change).
HISTORY_LIMIT = 500

LANE_HISTORY = """
WITH finished AS (
    SELECT s.shipment_id, s.lane_id, s.started_at, s.arrived_at,
           row_number() OVER (PARTITION BY s.lane_id ORDER BY s.arrived_at DESC) AS recent
    FROM shipments s
    WHERE s.lane_id = ANY(%(lane_ids)s) AND s.status = ANY(%(finished)s)
      AND s.started_at IS NOT NULL AND s.arrived_at > s.started_at
)
SELECT f.lane_id, l.code AS lane_code, f.shipment_id, f.started_at, f.arrived_at,
       coalesce(array_agg(e.start_ts ORDER BY e.start_ts)
                FILTER (WHERE e.excursion_id IS NOT NULL), '{}') AS excursion_starts,
       coalesce(array_agg(coalesce(e.end_ts, e.last_out_ts) ORDER BY e.start_ts)
                FILTER (WHERE e.excursion_id IS NOT NULL), '{}') AS excursion_ends
FROM finished f
JOIN lanes l ON l.lane_id = f.lane_id
LEFT JOIN excursions e ON e.shipment_id = f.shipment_id AND e.superseded_at IS NULL
WHERE f.recent <= %(limit)s
GROUP BY f.lane_id, l.code, f.shipment_id, f.started_at, f.arrived_at
ORDER BY f.lane_id, f.arrived_at
"""

# One row per shipment in transit. Position: the newest of its riding loggers' latest positions
# (device_state, kept by the ingester). Time out of range so far: per logger, the sum of its
# excursions; the most of any logger (two loggers in one box see the same excursion). Budget:
# the smallest of the products on board.
_IN_TRANSIT = """
SELECT s.shipment_id, s.reference, s.lane_id, l.code AS lane_code, s.started_at,
       s.planned_arrival,
       o.lat AS origin_lat, o.lon AS origin_lon, d.lat AS destination_lat,
       d.lon AS destination_lon,
       (SELECT min(p.stability_budget_s) FROM products p
        WHERE p.gtin = s.product_gtin
           OR p.gtin IN (SELECT i.gtin FROM shipment_items i WHERE i.shipment_id = s.shipment_id)
       ) AS budget_s,
       pos.lat, pos.lon,
       coalesce(x.n, 0) AS n_excursions, coalesce(x.open, false) AS excursion_open,
       coalesce(x.out_s, 0) AS out_of_range_s,
       (fa.details ->> 'predicted_breach_at')::timestamptz AS trend_breach_at
FROM shipments s
LEFT JOIN lanes l ON l.lane_id = s.lane_id
LEFT JOIN locations o ON o.location_id = l.origin_location_id
LEFT JOIN locations d ON d.location_id = l.destination_location_id
LEFT JOIN LATERAL (
    SELECT ds.lat, ds.lon FROM device_assignments da JOIN device_state ds USING (device_id)
    WHERE da.shipment_id = s.shipment_id AND upper_inf(da.during)
      AND ds.lat IS NOT NULL AND ds.lon IS NOT NULL
    ORDER BY ds.ts DESC LIMIT 1
) pos ON true
LEFT JOIN LATERAL (
    SELECT sum(per.n)::int AS n, bool_or(per.open) AS open, max(per.out_s) AS out_s
    FROM (
        SELECT count(*) AS n, bool_or(e.end_ts IS NULL) AS open,
               sum(extract(epoch FROM coalesce(e.end_ts, e.last_out_ts) - e.start_ts)) AS out_s
        FROM excursions e
        WHERE e.shipment_id = s.shipment_id AND e.superseded_at IS NULL
        GROUP BY e.device_id
    ) per
) x ON true
LEFT JOIN alerts fa ON fa.shipment_id = s.shipment_id AND fa.rule_key = 'predicted_breach'
    AND fa.state <> 'resolved' AND fa.cleared_at IS NULL
WHERE s.status = 'in_transit' AND s.started_at IS NOT NULL
  AND {where}
ORDER BY s.shipment_id
"""


IN_TRANSIT = _IN_TRANSIT.format(where="(%(ids)s::bigint[] IS NULL OR s.shipment_id = ANY(%(ids)s))")

# The rules engine's ``excursion_risk`` rule (:mod:`alerts.risk`): the same rows, for the
# shipments of the partitions it holds (``held`` of ``partitions``, as db.queries.rules) that
# have a lane (without one there is no history, and the rule never holds).
IN_TRANSIT_HELD = _IN_TRANSIT.format(
    where="s.lane_id IS NOT NULL"
    " AND rules_partition(s.shipment_id, %(partitions)s) = ANY(%(held)s::int[])"
)

# Shipments whose risk state must be judged although they may no longer be in transit: it holds,
# or its alert is unresolved (a state that stopped holding is judged on until its clear delay
# has passed and the alert cleared).
RISK_TO_JUDGE = """
SELECT DISTINCT r.shipment_id FROM rule_states r
LEFT JOIN alerts a ON a.alert_id = r.alert_id
WHERE r.rule_key = 'excursion_risk' AND (r.holding OR a.state <> 'resolved')
  AND rules_partition(r.shipment_id, %(partitions)s) = ANY(%(held)s::int[])
"""


def lane_history(
    *, conn: Conn, lane_ids: Collection[int], finished: Collection[str], limit: int = HISTORY_LIMIT
) -> list[Row]:
    """The newest ``limit`` finished shipments of each lane, each with its excursions' starts
    and ends (``excursion_starts``, ``excursion_ends``), oldest first."""
    if not lane_ids:
        return []
    params = {"lane_ids": sorted(lane_ids), "finished": sorted(finished), "limit": limit}
    return conn.execute(LANE_HISTORY, params).fetchall()


def in_transit(*, conn: Conn, shipment_ids: Sequence[int] | None = None) -> list[Row]:
    """The shipments in transit (those of ``shipment_ids``; all when None) with what a
    forecast needs: lane and its sites' coordinates, latest position, excursions so far, budget,
    the engine's predicted breach."""
    ids = None if shipment_ids is None else list(shipment_ids)
    return conn.execute(IN_TRANSIT, {"ids": ids}).fetchall()
