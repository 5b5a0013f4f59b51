"""The statements that share the rules engine's work between engines (alerts/partitions.py).

A shipment's partition is ``rules_partition(shipment_id, partitions)``, a SQL function
(db/migrations/0015_rules_partitions.sql) that every statement here and in
:mod:`db.queries.rules` calls: the engine never computes it itself, so two engines cannot
disagree on it. Each partition has its cursor row in ``engine_cursor``; the rows and locks are
explained in :mod:`alerts.partitions`.
"""

from __future__ import annotations

#: The single engine's cursor before partitions (0001). It no longer moves; a new set of
#: partition cursors starts from it, and every round takes it FOR SHARE (see alerts.partitions).
LEGACY_CURSOR = "rules"

# A new set of partition cursors (``rules/<partitions>/<p>``) starts at the lowest cursor of the
# set in use last (the one moved most recently, the former single cursor included): nothing
# committed after it is lost; what is re-evaluated gives the same results (idempotent). A
# position is (last_xid, last_change_id), ordered as a pair (coldchain/changes.py).
ENSURE_PARTITION_CURSORS = """
WITH c AS (
    SELECT regexp_replace(name, '/[0-9]+$', '') AS cursor_set, last_xid, last_change_id,
           updated_at
    FROM engine_cursor
    WHERE name = 'rules' OR name LIKE 'rules/%%'
),
latest AS (SELECT cursor_set FROM c ORDER BY updated_at DESC LIMIT 1),
lowest AS (
    SELECT last_xid, last_change_id FROM c WHERE cursor_set = (SELECT cursor_set FROM latest)
    ORDER BY last_xid, last_change_id LIMIT 1
)
INSERT INTO engine_cursor (name, last_xid, last_change_id)
SELECT %(prefix)s || p,
       coalesce((SELECT last_xid FROM lowest), '0'),
       coalesce((SELECT last_change_id FROM lowest), 0)
FROM generate_series(0, %(partitions)s - 1) AS p
ON CONFLICT (name) DO NOTHING
"""

# An engine of the former single-cursor kind still running during an upgrade holds this row
# FOR UPDATE while it works: FOR SHARE waits for it, and two partitioned engines do not wait
# for each other.
SHARE_LEGACY_CURSOR = "SELECT 1 FROM engine_cursor WHERE name = 'rules' FOR SHARE"

# The cursors of the partitions an engine holds, locked for its transaction. SKIP LOCKED: a
# partition another engine is still finishing a transaction on (a takeover) is left for the
# next round instead of waiting for it.
LOCK_PARTITION_CURSORS = """
SELECT name, last_xid::text::bigint AS last_xid, last_change_id FROM engine_cursor
WHERE name = ANY(%(names)s) ORDER BY name
FOR UPDATE SKIP LOCKED
"""

# Forward only: a partition whose cursor is already past the new position stays where it is.
MOVE_PARTITION_CURSORS = """
UPDATE engine_cursor SET
    last_xid = CASE WHEN (last_xid, last_change_id) < (%(xid)s::text::xid8, %(change_id)s)
                    THEN %(xid)s::text::xid8 ELSE last_xid END,
    last_change_id = CASE WHEN (last_xid, last_change_id) < (%(xid)s::text::xid8, %(change_id)s)
                          THEN %(change_id)s ELSE last_change_id END,
    updated_at = now()
WHERE name = ANY(%(names)s)
"""

# How far behind the consumers are: changes after the lowest cursor whose name starts with
# ``prefix`` (a partition set ``rules/<n>/``, or ``automation``), for tests, benches and the
# operator. No such cursor yet: every change is behind. Rows of transactions still running are
# not visible, hence not counted.
CHANGES_BEHIND = """
WITH lowest AS (
    SELECT last_xid, last_change_id FROM engine_cursor WHERE name LIKE %(prefix)s || '%%'
    ORDER BY last_xid, last_change_id LIMIT 1
)
SELECT count(*) AS behind FROM reading_changes r
WHERE NOT EXISTS (SELECT 1 FROM lowest)
   OR (r.xid, r.change_id) > (SELECT last_xid, last_change_id FROM lowest)
"""

# Engines

REGISTER_ENGINE = """
INSERT INTO rules_engines (engine_id, host, pid, backend_pid, partitions)
VALUES (%(engine_id)s, %(host)s, %(pid)s, pg_backend_pid(), %(partitions)s)
ON CONFLICT (engine_id) DO UPDATE SET
    backend_pid = excluded.backend_pid, held = '{}', heartbeat_at = now()
"""

HEARTBEAT = """
UPDATE rules_engines SET heartbeat_at = now(), held = %(held)s WHERE engine_id = %(engine_id)s
RETURNING engine_id
"""

# Every registered engine: ``fresh`` (a heartbeat within the timeout) and ``connected`` (the
# backend of its claiming connection still exists: a killed process's connection closes, its
# backend exits and its advisory locks go with it, at once).
ENGINES = """
SELECT e.engine_id, e.partitions, cardinality(e.held) AS n_held,
       e.heartbeat_at > now() - make_interval(secs => %(timeout_s)s) AS fresh,
       EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.pid = e.backend_pid) AS connected
FROM rules_engines e
"""

# A stopped engine (its heartbeat too old while its connections stay open: a hung or
# suspended process, a host cut off) is fenced: its connections are ended, which rolls back
# whatever it was doing and frees its partitions. Every connection of an engine carries its
# application_name (alerts.partitions.application_name).
END_ENGINE_CONNECTIONS = """
SELECT count(pg_terminate_backend(pid)) AS ended FROM pg_stat_activity
WHERE application_name = %(application_name)s AND pid <> pg_backend_pid()
"""

FORGET_ENGINE = "DELETE FROM rules_engines WHERE engine_id = %(engine_id)s"

# Advisory lock keys: (class, partition). The class is fixed ('rulp' as an int4); the
# partition count is not in the key, which is why engines that disagree on it claim nothing.
LOCK_CLASS = 0x72756C70

TRY_CLAIM = "SELECT pg_try_advisory_lock(%(cls)s, %(partition)s) AS claimed"

RELEASE = "SELECT pg_advisory_unlock(%(cls)s, %(partition)s) AS released"
