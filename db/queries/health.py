"""The pipeline's own health: the web process's database check, and the figures that say whether
the rules engine keeps up and the outbox drains (``/healthz``, ``/metrics``, the engine's
heartbeat: alerts/heartbeat.py)."""

from __future__ import annotations

from typing import Any

from db.types import Conn


def ping(*, conn: Conn) -> bool:
    """True when the database answers ``SELECT 1``."""
    row = conn.execute("SELECT 1 AS ok").fetchone()
    return row is not None and row["ok"] == 1


# How far behind the rules engines are, as an age: the commit time of the oldest change after
# the lowest partition cursor (``prefix`` is alerts.partitions.cursor_prefix), 0 when there is
# none; before any engine has started, the oldest change of all. A change whose transaction is
# still running counts too (it was stamped at its insert): for an age, that errs on the side of
# "behind". Uses the (xid, change_id) index of reading_changes.
ENGINE_LAG = """
WITH lowest AS (
    SELECT last_xid, last_change_id FROM engine_cursor WHERE name LIKE %(prefix)s || '%%'
    ORDER BY last_xid, last_change_id LIMIT 1
)
SELECT coalesce(extract(epoch FROM now() - min(r.committed_at)), 0)::float8 AS engine_lag_s
FROM reading_changes r
WHERE NOT EXISTS (SELECT 1 FROM lowest)
   OR (r.xid, r.change_id) > (SELECT last_xid, last_change_id FROM lowest)
"""

# The outbox (notifications, db/migrations/0004): the age of the oldest notification neither
# delivered nor given up (0: none waiting), how many of those have failed at least once and
# wait for a retry, how many were given up within the last hour; and the rules engines whose
# claims beat within ``timeout_s`` (alerts.partitions).
PIPELINE = f"""
SELECT
    ({ENGINE_LAG}) AS engine_lag_s,
    (SELECT coalesce(extract(epoch FROM now() - min(created_at)), 0)::float8
     FROM notifications WHERE delivered_at IS NULL AND gave_up_at IS NULL) AS outbox_oldest_s,
    (SELECT count(*) FROM notifications
     WHERE delivered_at IS NULL AND gave_up_at IS NULL AND attempts > 0) AS notifications_retrying,
    (SELECT count(*) FROM notifications
     WHERE gave_up_at > now() - interval '1 hour') AS deliveries_failed_1h,
    (SELECT count(*) FROM rules_engines
     WHERE heartbeat_at > now() - make_interval(secs => %(timeout_s)s)) AS engines
"""


def pipeline(*, conn: Conn, prefix: str, timeout_s: float) -> dict[str, Any]:
    """The figures of :data:`PIPELINE` (seconds as floats, counts as ints)."""
    row = conn.execute(PIPELINE, {"prefix": prefix, "timeout_s": timeout_s}).fetchone()
    assert row is not None
    return dict(row)


# The fleet's ingest (alerts/ingest_watch.py), on the database's clock: when the last reading
# was stored (the newest change: change ids are drawn in insert order, and the primary key finds
# it at once), how long ago, and how many loggers are expected to report: assigned now to a
# shipment in transit, and reporting when ingest went quiet (their latest reading received
# within offline_factor × their interval before the last stored reading).
INGEST_SILENCE = """
WITH last AS (
    SELECT committed_at AS at FROM reading_changes ORDER BY change_id DESC LIMIT 1
)
SELECT (SELECT at FROM last) AS last_stored_at,
       extract(epoch FROM now() - (SELECT at FROM last))::float8 AS silent_s,
       (SELECT count(DISTINCT a.device_id)
        FROM device_assignments a
        JOIN shipments s ON s.shipment_id = a.shipment_id AND s.status = 'in_transit'
        JOIN device_state ds ON ds.device_id = a.device_id
        LEFT JOIN devices d ON d.device_id = a.device_id
        WHERE a.during @> now()
          AND ds.received_at >= (SELECT at FROM last)
              - make_interval(secs => %(offline_factor)s * coalesce(d.interval_s, 300))
       ) AS expected
"""

# A system alert (no shipment: db/migrations/0027), at most one unresolved per rule.
UNRESOLVED_SYSTEM_ALERT = """
SELECT alert_id, shipment_id, NULL::text AS reference, rule_key, severity, state,
       cleared_at IS NOT NULL AS cleared, title, device_id, triggered_at, value, thresholds,
       escalation_level
FROM alerts
WHERE shipment_id IS NULL AND rule_key = %(rule_key)s AND state <> 'resolved'
FOR UPDATE
"""

OPEN_SYSTEM_ALERT = """
INSERT INTO alerts (shipment_id, rule_key, severity, title, triggered_at, value, details)
VALUES (NULL, %(rule_key)s, %(severity)s, %(title)s, now(), %(value)s, %(details)s)
RETURNING alert_id, triggered_at
"""
