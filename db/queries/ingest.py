"""The ingester's statements: one statement, so one round trip and one transaction, per batch.

The readings arrive as seven parallel arrays (binary parameters, ``%(name)b``: psycopg's text
array format quotes every element through a regex, ten times slower) and are merged
with ``unnest`` in a single statement that also records the dead letters, updates
``device_state`` and the change log, and sends the NOTIFY. Run in autocommit mode, the statement
is its own transaction: no BEGIN and no COMMIT round trips. Profiled under load, the round trips
of the former staging path (BEGIN, CREATE TEMP TABLE, COPY, merge, NOTIFY, COMMIT), each
waiting its turn on a busy event loop, took longer than the database's own work.

Two statements do it. :data:`INSERT_BATCH`, the usual one, inserts the readings as they come:
the ingester has already worked out, per device, the time range, count and latest reading
(``coldchain.telemetry_columns.ReadingColumns.spans``), so PostgreSQL gets ``device_state`` and
the change log as a few rows and does no more per reading than COPY does. It holds only when every
reading is new: a reading already stored (a QoS 1 re-delivery, a re-uploaded buffer) or twice in
the batch fails it on the primary key, the whole statement is undone, and the sink merges that
batch with :data:`MERGE_BATCH` (``ON CONFLICT DO NOTHING`` … ``RETURNING``: the same outcome, at
about 1.5 times the database's work per reading, measured: bench/ingest_merge.py). Both give the
same rows, ``device_state``, change log and NOTIFY.

The staging path (a temp table filled by binary COPY, then :data:`MERGE_STAGED`) stays for bulk
loads outside the ingester (test fixtures, back-fills); its merge has the same semantics.
"""

from __future__ import annotations

# A device's newest reading, from ``{latest}``: only a newer one replaces what device_state holds.
_STATE_UPSERT = """
    INSERT INTO device_state AS s (device_id, ts, temp_c, rh, lat, lon, battery, received_at)
    SELECT device_id, ts, temp_c, rh, lat, lon, battery, now() FROM {latest}
    ON CONFLICT (device_id) DO UPDATE SET
        ts = excluded.ts, temp_c = excluded.temp_c, rh = excluded.rh,
        lat = coalesce(excluded.lat, s.lat), lon = coalesce(excluded.lon, s.lon),
        battery = coalesce(excluded.battery, s.battery), received_at = excluded.received_at,
        online = true
    WHERE s.ts < excluded.ts
"""
_STATE_UPSERT_LATEST = _STATE_UPSERT.format(latest="latest")

# Re-sent readings (QoS 1 re-delivery, re-uploaded buffers) hit the primary key and are skipped;
# only what was really inserted updates device_state and the change log the rules engine reads.
# device_state is written in device order (DISTINCT ON … ORDER BY device_id), so two ingesters
# committing at once take its row locks in the same order and cannot deadlock.
_MERGE_CTES = f"""
ins AS (
    INSERT INTO readings (device_id, ts, temp_c, rh, lat, lon, battery, received_at)
    SELECT DISTINCT ON (device_id, ts) device_id, ts, temp_c, rh, lat, lon, battery, now()
    FROM {{source}}
    ORDER BY device_id, ts
    ON CONFLICT (device_id, ts) DO NOTHING
    RETURNING device_id, ts, temp_c, rh, lat, lon, battery
),
latest AS (
    SELECT DISTINCT ON (device_id) * FROM ins ORDER BY device_id, ts DESC
),
state AS ({_STATE_UPSERT_LATEST}),
changes AS (
    INSERT INTO reading_changes (device_id, ts_min, ts_max, n_readings)
    SELECT device_id, min(ts), max(ts), count(*) FROM ins GROUP BY device_id
    RETURNING n_readings
)"""

_DEAD_LETTERS = """dead AS (
    INSERT INTO dead_letters (topic, device_id, reason, batch_index, payload, refused, reasons)
    SELECT topic, device_id, reason, batch_index, payload, refused, reasons::jsonb FROM unnest(
        %(dl_topic)b::text[], %(dl_device_id)b::text[], %(dl_reason)b::text[],
        %(dl_index)b::int[], %(dl_payload)b::bytea[], %(dl_refused)b::int[],
        %(dl_reasons)b::text[]
    ) AS d (topic, device_id, reason, batch_index, payload, refused, reasons)
)"""

#: One batch: readings and dead letters as parallel arrays; returns the number of new readings
#: and NOTIFYs ``reading_changes`` when there are any (delivered at commit, which wakes the rules
#: engine without polling).
MERGE_BATCH = f"""
WITH batch AS (
    SELECT * FROM unnest(
        %(device_id)b::text[], %(ts)b::timestamptz[], %(temp_c)b::float8[], %(rh)b::float8[],
        %(lat)b::float8[], %(lon)b::float8[], %(battery)b::float4[]
    ) AS b (device_id, ts, temp_c, rh, lat, lon, battery)
),
{_MERGE_CTES.format(source="batch")},
{_DEAD_LETTERS}
SELECT n, CASE WHEN n > 0 THEN pg_notify('reading_changes', json_build_object('n', n)::text) END
FROM (SELECT coalesce(sum(n_readings), 0)::bigint AS n FROM changes) AS total
"""


_SPANS_LATEST = """unnest(
        %(s_device_id)b::text[], %(s_ts)b::timestamptz[], %(s_temp_c)b::float8[],
        %(s_rh)b::float8[], %(s_lat)b::float8[], %(s_lon)b::float8[], %(s_battery)b::float4[]
    ) AS l (device_id, ts, temp_c, rh, lat, lon, battery)
    ORDER BY device_id"""

#: One batch of readings that are all new (else it fails on the primary key, undone as a whole):
#: the readings as they come, sorted so that two writers take the key locks in one order;
#: ``device_state`` and the change log from the per-device spans (``s_*``, ``c_*``); the state
#: rows sorted here, by the database's collation as the merge sorts them, so that two writers
#: take their row locks in one order too, whichever statement each runs. The row count is the
#: readings stored.
#: The NOTIFY goes with the change log's rows (one per transaction: equal payloads fold).
INSERT_BATCH = f"""
WITH state AS ({_STATE_UPSERT.format(latest=_SPANS_LATEST)}),
changes AS (
    INSERT INTO reading_changes (device_id, ts_min, ts_max, n_readings)
    SELECT * FROM unnest(
        %(c_device_id)b::text[], %(c_ts_min)b::timestamptz[], %(c_ts_max)b::timestamptz[],
        %(c_n)b::int[]
    )
    RETURNING pg_notify('reading_changes', %(notify)s)
),
{_DEAD_LETTERS}
INSERT INTO readings (device_id, ts, temp_c, rh, lat, lon, battery, received_at)
SELECT device_id, ts, temp_c, rh, lat, lon, battery, now() FROM unnest(
    %(device_id)b::text[], %(ts)b::timestamptz[], %(temp_c)b::float8[], %(rh)b::float8[],
    %(lat)b::float8[], %(lon)b::float8[], %(battery)b::float4[]
) AS b (device_id, ts, temp_c, rh, lat, lon, battery)
ORDER BY device_id, ts
"""

STAGING_CREATE = """
CREATE TEMP TABLE IF NOT EXISTS staging_readings (
    device_id text, ts timestamptz, temp_c double precision, rh double precision,
    lat double precision, lon double precision, battery real
) ON COMMIT DELETE ROWS
"""

STAGING_COPY = "COPY staging_readings (device_id, ts, temp_c, rh, lat, lon, battery) FROM STDIN (FORMAT BINARY)"
STAGING_TYPES = ["text", "timestamptz", "float8", "float8", "float8", "float8", "float4"]

#: The staging path's merge (after STAGING_CREATE and a COPY); returns the new readings.
MERGE_STAGED = f"""
WITH {_MERGE_CTES.format(source="staging_readings").lstrip()}
SELECT coalesce(sum(n_readings), 0)::bigint FROM changes
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

KNOWN_DEVICES = "SELECT device_id FROM devices"
