"""The rules engine's statements."""

from __future__ import annotations

ENSURE_CURSOR = """
INSERT INTO engine_cursor (name) VALUES (%s) ON CONFLICT (name) DO NOTHING
"""

LOCK_CURSOR = "SELECT last_change_id FROM engine_cursor WHERE name = %s FOR UPDATE"

MOVE_CURSOR = "UPDATE engine_cursor SET last_change_id = %s, updated_at = now() WHERE name = %s"

PENDING_CHANGES = """
SELECT change_id, device_id, ts_min, ts_max FROM reading_changes
WHERE change_id > %s ORDER BY change_id LIMIT %s
"""

# Which (shipment, device) pairs a set of changes touches, through the assignment intervals:
# a reading that arrives late still lands in the shipment the logger rode in at that time.
AFFECTED_PAIRS = """
SELECT DISTINCT a.shipment_id, a.device_id
FROM device_assignments a
JOIN unnest(%s::text[], %s::timestamptz[], %s::timestamptz[]) AS c(device_id, ts_min, ts_max)
  ON a.device_id = c.device_id AND a.during && tstzrange(c.ts_min, c.ts_max, '[]')
"""

# Pairs with an excursion still open: re-judged periodically, since silence also changes them.
OPEN_PAIRS = """
SELECT DISTINCT shipment_id, device_id FROM excursions
WHERE superseded_at IS NULL AND end_ts IS NULL
"""

SHIPMENT_PROFILE = """
SELECT s.reference, p.gtin, p.name, p.temp_min_c, p.temp_max_c, p.freeze_limit_c, p.alarm_delay_s
FROM shipments s LEFT JOIN products p ON p.gtin = s.product_gtin
WHERE s.shipment_id = %s
"""

DEVICE_INTERVAL = "SELECT interval_s FROM devices WHERE device_id = %s"

SHIPMENT_DEVICE_READINGS = """
SELECT r.ts, r.temp_c
FROM device_assignments a
JOIN readings r ON r.device_id = a.device_id AND a.during @> r.ts
WHERE a.shipment_id = %s AND a.device_id = %s AND r.temp_c IS NOT NULL
ORDER BY r.ts
"""

CURRENT_EXCURSIONS = """
SELECT excursion_id, device_id, direction, start_ts, end_ts, last_out_ts, ended_by_gap, min_c, max_c,
       degree_minutes, n_readings, readings_over_40, readings_freezing, alarm, alarm_at, alert_id
FROM excursions
WHERE shipment_id = %s AND device_id = %s AND superseded_at IS NULL
"""

SUPERSEDE_EXCURSION = """
UPDATE excursions SET superseded_at = now(), superseded_reason = %s WHERE excursion_id = %s
"""

INSERT_EXCURSION = """
INSERT INTO excursions (shipment_id, device_id, direction, start_ts, end_ts, last_out_ts, ended_by_gap,
    min_c, max_c, degree_minutes, n_readings, readings_over_40, readings_freezing, alarm, alarm_at,
    freeze_alarm, rule_key, alert_id, thresholds)
VALUES (%(shipment_id)s, %(device_id)s, %(direction)s, %(start_ts)s, %(end_ts)s, %(last_out_ts)s,
    %(ended_by_gap)s, %(min_c)s, %(max_c)s, %(degree_minutes)s, %(n_readings)s,
    %(readings_over_40)s, %(readings_freezing)s, %(alarm)s, %(alarm_at)s, %(freeze_alarm)s,
    %(rule_key)s, %(alert_id)s, %(thresholds)s)
"""

ALARMED_UNLINKED = """
SELECT excursion_id, device_id, direction, alarm_at, freeze_alarm, rule_key,
       CASE WHEN direction = 'high' THEN max_c ELSE min_c END AS extreme, thresholds
FROM excursions
WHERE shipment_id = %s AND superseded_at IS NULL AND alarm AND alert_id IS NULL
ORDER BY alarm_at
"""

UNRESOLVED_ALERT = """
SELECT alert_id, severity, state, cleared_at IS NOT NULL FROM alerts
WHERE shipment_id = %s AND rule_key = %s AND state <> 'resolved'
FOR UPDATE
"""

OPEN_ALERT = """
INSERT INTO alerts (shipment_id, rule_key, severity, title, device_id, triggered_at, value, thresholds,
                    details)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)
RETURNING alert_id
"""

LINK_EXCURSION = "UPDATE excursions SET alert_id = %s WHERE excursion_id = %s"

UPGRADE_ALERT = """
UPDATE alerts SET severity = %s, title = %s, value = %s, updated_at = now() WHERE alert_id = %s
"""

ALERT_EVENT = """
INSERT INTO alert_events (alert_id, kind, actor, comment, data) VALUES (%s, %s, %s, %s, %s)
"""

TEMP_ALERTS_WITH_OPEN_COUNT = """
SELECT a.alert_id, a.rule_key, a.severity, a.state, a.cleared_at IS NOT NULL,
       count(e.excursion_id) FILTER (WHERE e.end_ts IS NULL) AS open_excursions
FROM alerts a
LEFT JOIN excursions e ON e.alert_id = a.alert_id AND e.superseded_at IS NULL
WHERE a.shipment_id = %s AND a.state <> 'resolved' AND a.rule_key IN ('temp_high', 'temp_low')
GROUP BY a.alert_id
"""

CLEAR_ALERT = "UPDATE alerts SET cleared_at = now(), updated_at = now() WHERE alert_id = %s"

REOPEN_ALERT = "UPDATE alerts SET cleared_at = NULL, updated_at = now() WHERE alert_id = %s"

RESOLVE_ALERT = """
UPDATE alerts SET state = 'resolved', resolved_at = now(), resolved_by = %s, cleared_at = coalesce(cleared_at, now()),
       updated_at = now()
WHERE alert_id = %s
"""
