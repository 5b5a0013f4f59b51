"""The ingester's statements: one transaction per batch, staged through binary COPY."""

from __future__ import annotations

STAGING_CREATE = """
CREATE TEMP TABLE IF NOT EXISTS staging_readings (
    device_id text, ts timestamptz, temp_c double precision, rh double precision,
    lat double precision, lon double precision, battery real
) ON COMMIT DELETE ROWS
"""

STAGING_COPY = "COPY staging_readings (device_id, ts, temp_c, rh, lat, lon, battery) FROM STDIN (FORMAT BINARY)"
STAGING_TYPES = ["text", "timestamptz", "float8", "float8", "float8", "float8", "float4"]

# Re-sent readings (QoS 1 re-delivery, re-uploaded buffers) hit the primary key and are skipped;
# only what was really inserted updates device_state and the change log the rules engine reads.
MERGE_STAGED = """
WITH ins AS (
    INSERT INTO readings (device_id, ts, temp_c, rh, lat, lon, battery, received_at)
    SELECT DISTINCT ON (device_id, ts) device_id, ts, temp_c, rh, lat, lon, battery, now()
    FROM staging_readings
    ORDER BY device_id, ts
    ON CONFLICT (device_id, ts) DO NOTHING
    RETURNING device_id, ts, temp_c, rh, lat, lon, battery
),
latest AS (
    SELECT DISTINCT ON (device_id) * FROM ins ORDER BY device_id, ts DESC
),
state AS (
    INSERT INTO device_state AS s (device_id, ts, temp_c, rh, lat, lon, battery, received_at)
    SELECT device_id, ts, temp_c, rh, lat, lon, battery, now() FROM latest
    ON CONFLICT (device_id) DO UPDATE SET
        ts = excluded.ts, temp_c = excluded.temp_c, rh = excluded.rh,
        lat = coalesce(excluded.lat, s.lat), lon = coalesce(excluded.lon, s.lon),
        battery = coalesce(excluded.battery, s.battery), received_at = excluded.received_at,
        online = true
    WHERE s.ts < excluded.ts
),
changes AS (
    INSERT INTO reading_changes (device_id, ts_min, ts_max, n_readings)
    SELECT device_id, min(ts), max(ts), count(*) FROM ins GROUP BY device_id
    RETURNING n_readings
)
SELECT coalesce(sum(n_readings), 0)::bigint FROM changes
"""

INSERT_DEAD_LETTER = """
INSERT INTO dead_letters (topic, device_id, reason, batch_index, payload)
VALUES (%s, %s, %s, %s, %s)
"""

UPSERT_STATUS = """
INSERT INTO device_state AS s (device_id, ts, battery, received_at, online, firmware, status_at)
VALUES (%(device_id)s, coalesce(%(ts)s, now()), %(battery)s, now(), %(online)s, %(firmware)s,
        coalesce(%(ts)s, now()))
ON CONFLICT (device_id) DO UPDATE SET
    online = excluded.online,
    battery = coalesce(excluded.battery, s.battery),
    firmware = coalesce(excluded.firmware, s.firmware),
    status_at = excluded.status_at
"""

NOTIFY_CHANGES = "SELECT pg_notify('reading_changes', %s)"

KNOWN_DEVICES = "SELECT device_id FROM devices"
