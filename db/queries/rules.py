"""The rules engine's statements (evaluation, alerts, escalation, the notification outbox).

Every column the engine reads has a name (an alias where it is an expression): alerts/rows.py
decodes the rows by column name into typed records, so a column added, removed or moved here is
an error at once, never a value read into the wrong field.

Set-oriented on purpose: a round loads the context, readings, stored excursions and states of
all its (shipment, device) pairs with a handful of statements over arrays (``unnest``), so a
catch-up over a thousand shipments costs a few round trips, not thousands.

The stored rule definitions (one layer of rules per product or shipment, versioned) are at
the end: the API reads and adds versions, :mod:`db.queries.limits` reads them for the engine.
"""

from __future__ import annotations

from typing import Any

from psycopg.types.json import Jsonb

from coldchain.errors import NotFoundError
from db.queries.shipments import find_shipment_id
from db.types import Conn, Row

# The change log and its cursors (``engine_cursor``): a position is (last_xid, last_change_id) and
# moves by the transaction horizon, never by change_id alone (coldchain/changes.py says why).
ENSURE_CURSOR = """
INSERT INTO engine_cursor (name) VALUES (%s) ON CONFLICT (name) DO NOTHING
"""

LOCK_CURSOR = """
SELECT last_xid::text::bigint AS last_xid, last_change_id FROM engine_cursor
WHERE name = %s FOR UPDATE
"""

# Forward only: a position never moves back.
MOVE_CURSOR = """
UPDATE engine_cursor SET last_xid = %(xid)s::text::xid8, last_change_id = %(change_id)s,
                         updated_at = now()
WHERE name = %(name)s AND (last_xid, last_change_id) < (%(xid)s::text::xid8, %(change_id)s)
"""

# The horizon: every transaction below it has ended (its snapshot's xmin, cluster-wide).
HORIZON = "SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint AS horizon"

# The rows after a position, of transactions below the horizon read before (same transaction),
# in (xid, change_id) order: the index reading_changes_xid.
PENDING_CHANGES = """
SELECT change_id, xid::text::bigint AS xid, device_id, ts_min, ts_max FROM reading_changes
WHERE (xid, change_id) > (%(xid)s::text::xid8, %(change_id)s::bigint)
  AND xid < %(horizon)s::text::xid8
ORDER BY xid, change_id LIMIT %(limit)s
"""

# Which (shipment, device) pairs a set of changes touches, through the assignment intervals:
# a reading that arrives late still lands in the shipment the logger rode in at that time.
# Only the pairs of the partitions given (``held``), each change only if it comes after that
# partition's cursor: the changes are given in the order read, and ``first`` says how many of
# them are at or behind each partition's cursor (in the same order as ``held``;
# coldchain.changes.first_after): alerts/partitions.py.
AFFECTED_PAIRS = """
SELECT DISTINCT a.shipment_id, a.device_id
FROM unnest(%(device_id)s::text[], %(ts_min)s::timestamptz[], %(ts_max)s::timestamptz[])
     WITH ORDINALITY AS c(device_id, ts_min, ts_max, i)
JOIN device_assignments a
  ON a.device_id = c.device_id AND a.during && tstzrange(c.ts_min, c.ts_max, '[]')
JOIN unnest(%(held)s::int[], %(first)s::int[]) AS h(partition, first)
  ON h.partition = rules_partition(a.shipment_id, %(partitions)s) AND c.i > h.first
"""

# The periodic statements take the partitions to work on: ``held`` of ``partitions``.
_IN_PARTITIONS = "rules_partition(shipment_id, %(partitions)s) = ANY(%(held)s::int[])"
_A_IN_PARTITIONS = _IN_PARTITIONS.replace("shipment_id", "a.shipment_id")

# Pairs whose result can change without a new reading: an open excursion (silence ends it by a
# data gap) or a rule that holds (a trend prediction goes stale when the logger falls silent).
RECHECK_PAIRS = f"""
SELECT shipment_id, device_id FROM excursions
WHERE superseded_at IS NULL AND end_ts IS NULL AND {_IN_PARTITIONS}
UNION
SELECT shipment_id, device_id FROM rule_states
WHERE holding AND rule_key NOT IN ('device_offline', 'excursion_risk') AND {_IN_PARTITIONS}
"""

# Every (shipment, logger) pair of some shipments (a history back-fill judges its own).
SHIPMENT_PAIRS = """
SELECT DISTINCT shipment_id, device_id FROM device_assignments
WHERE shipment_id = ANY(%(ids)s::bigint[])
ORDER BY shipment_id, device_id
"""

# Per pair: the logger's interval and when its assignment(s) to the shipment end (NULL: open).
PAIR_INFO = """
SELECT k.shipment_id, k.device_id, coalesce(d.interval_s, 300) AS interval_s,
       CASE WHEN bool_or(upper_inf(a.during)) THEN NULL ELSE max(upper(a.during)) END
           AS assigned_until,
       string_agg(a.during::text, ',' ORDER BY lower(a.during)) AS assignments
FROM unnest(%s::bigint[], %s::text[]) AS k(shipment_id, device_id)
JOIN device_assignments a ON a.shipment_id = k.shipment_id AND a.device_id = k.device_id
LEFT JOIN devices d ON d.device_id = k.device_id
GROUP BY k.shipment_id, k.device_id, d.interval_s
"""

# The readings of many pairs in one statement: a row per pair (its index in the arrays given)
# with one binary array per column (array_send: 8-byte elements, NULL sent as NaN), which numpy
# reads in one step each. Sorting by time is left to the client (cheaper than ORDER BY inside
# the aggregates); the arrays of one row share the same row order. The third array is, per
# pair, the time its readings are wanted from (a checkpoint), NULL for all of them. The time
# bounds are in a LATERAL subquery so that they are index conditions of each chunk's scan: as a
# join filter, every reading of the trip was read and then dropped (14 s instead of 0.5 s for
# 250 pairs × 30 days, bench/rules_incremental.py).
PAIR_READINGS = """
SELECT k.i::int4 AS pair_index,
       array_send(array_agg(r.ts)) AS ts,
       array_send(array_agg(coalesce(r.temp_c, 'NaN'))) AS temp_c,
       array_send(array_agg(coalesce(r.rh, 'NaN'))) AS rh,
       array_send(array_agg(coalesce(r.battery::float8, 'NaN'))) AS battery
FROM unnest(%s::bigint[], %s::text[], %s::timestamptz[])
    WITH ORDINALITY AS k(shipment_id, device_id, since, i)
JOIN device_assignments a ON a.shipment_id = k.shipment_id AND a.device_id = k.device_id
CROSS JOIN LATERAL (
    SELECT r.ts, r.temp_c, r.rh, r.battery
    FROM readings r
    WHERE r.device_id = a.device_id
      AND r.ts >= greatest(coalesce(lower(a.during), '-infinity'), coalesce(k.since, '-infinity'))
      AND r.ts <= coalesce(upper(a.during), 'infinity')
      AND a.during @> r.ts
) r
GROUP BY k.i
"""

CURRENT_EXCURSIONS = """
SELECT e.shipment_id, e.excursion_id, e.device_id, e.direction, e.start_ts, e.end_ts,
       e.last_out_ts, e.ended_by_gap, e.min_c, e.max_c, e.degree_minutes, e.n_readings,
       e.readings_over_40, e.readings_freezing, e.alarm, e.alarm_at, e.alert_id
FROM unnest(%s::bigint[], %s::text[]) AS k(shipment_id, device_id)
JOIN excursions e ON e.shipment_id = k.shipment_id AND e.device_id = k.device_id
WHERE e.superseded_at IS NULL
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

_STATE_COLUMNS = """
    s.shipment_id, s.device_id, s.rule_key, s.holding, s.as_of, s.since, s.alarm_at, s.ended_at,
    s.severity, s.value, s.trigger_at, s.details, s.alert_id, s.alerted_since
"""

PAIR_STATES = f"""
SELECT {_STATE_COLUMNS}
FROM unnest(%s::bigint[], %s::text[]) AS k(shipment_id, device_id)
JOIN rule_states s ON s.shipment_id = k.shipment_id AND s.device_id = k.device_id
"""

SHIPMENT_STATES = f"""
SELECT {_STATE_COLUMNS} FROM rule_states s WHERE s.shipment_id = ANY(%s)
"""

# The evaluation owns the condition columns; which episode an alert took (alert_id,
# alerted_since) is written only by TAKE_STATE, when the alert takes it.
UPSERT_STATE = """
INSERT INTO rule_states AS s (shipment_id, device_id, rule_key, holding, as_of, since, alarm_at,
    ended_at, severity, value, trigger_at, details, thresholds, updated_at)
VALUES (%(shipment_id)s, %(device_id)s, %(rule_key)s, %(holding)s, %(as_of)s, %(since)s,
    %(alarm_at)s, %(ended_at)s, %(severity)s, %(value)s, %(trigger_at)s, %(details)s,
    %(thresholds)s, now())
ON CONFLICT (shipment_id, device_id, rule_key) DO UPDATE SET
    holding = excluded.holding, as_of = excluded.as_of, since = excluded.since,
    alarm_at = excluded.alarm_at, ended_at = excluded.ended_at, severity = excluded.severity,
    value = excluded.value, trigger_at = excluded.trigger_at, details = excluded.details,
    thresholds = excluded.thresholds, updated_at = now()
"""

TAKE_STATE = """
UPDATE rule_states SET alert_id = %s, alerted_since = since, trigger_at = NULL, updated_at = now()
WHERE shipment_id = %s AND device_id = %s AND rule_key = %s
"""

UNRESOLVED_ALERTS = """
SELECT a.alert_id, a.shipment_id, a.rule_key, a.severity, a.state,
       a.cleared_at IS NOT NULL AS cleared, a.title, a.device_id, a.triggered_at, a.value,
       a.thresholds, a.escalation_level
FROM alerts a
WHERE a.shipment_id = ANY(%s) AND a.state <> 'resolved'
FOR UPDATE
"""

ALARMED_UNLINKED = """
SELECT excursion_id, shipment_id, device_id, direction, alarm_at, freeze_alarm, rule_key,
       CASE WHEN direction = 'high' THEN max_c ELSE min_c END AS extreme, thresholds
FROM excursions
WHERE shipment_id = ANY(%s) AND superseded_at IS NULL AND alarm AND alert_id IS NULL
ORDER BY shipment_id, alarm_at, excursion_id
"""

# Per temperature alert: how many of its excursions are still open, when the last one ended
# and how far its loggers' data has got since (the clear delay runs on the data's time).
TEMP_ALERT_STATUS = """
SELECT a.alert_id,
       count(e.excursion_id) FILTER (WHERE e.end_ts IS NULL) AS open_excursions,
       max(coalesce(e.end_ts, e.last_out_ts)) AS last_end,
       (SELECT max(ds.ts) FROM device_state ds
        WHERE ds.device_id IN (SELECT x.device_id FROM excursions x WHERE x.alert_id = a.alert_id)
       ) AS as_of
FROM alerts a
LEFT JOIN excursions e ON e.alert_id = a.alert_id AND e.superseded_at IS NULL
WHERE a.alert_id = ANY(%s)
GROUP BY a.alert_id
"""

OPEN_ALERT = """
INSERT INTO alerts (shipment_id, rule_key, severity, title, device_id, triggered_at, value, thresholds,
                    details)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)
RETURNING alert_id
"""

RETIME_ALERT = """
UPDATE alerts SET triggered_at = %s, device_id = %s, updated_at = now() WHERE alert_id = %s
"""

LINK_EXCURSION = "UPDATE excursions SET alert_id = %s WHERE excursion_id = %s"

UPGRADE_ALERT = """
UPDATE alerts SET severity = %s, title = %s, value = %s, updated_at = now() WHERE alert_id = %s
"""

ALERT_EVENT = """
INSERT INTO alert_events (alert_id, kind, actor, comment, data) VALUES (%s, %s, %s, %s, %s)
"""

CLEAR_ALERT = "UPDATE alerts SET cleared_at = now(), updated_at = now() WHERE alert_id = %s"

REOPEN_ALERT = "UPDATE alerts SET cleared_at = NULL, updated_at = now() WHERE alert_id = %s"

RESOLVE_ALERT = """
UPDATE alerts SET state = 'resolved', resolved_at = now(), resolved_by = %s, cleared_at = coalesce(cleared_at, now()),
       updated_at = now()
WHERE alert_id = %s
"""

# Loggers that should be reporting now: assigned at ``now`` to a shipment in transit, with how
# long ago (seconds, on the database's clock) their latest reading was received.
OFFLINE_CANDIDATES = f"""
SELECT a.shipment_id, a.device_id, coalesce(d.interval_s, 300) AS interval_s,
       lower(a.during) AS assigned_since, ds.ts AS last_ts,
       extract(epoch FROM clock_timestamp() - ds.received_at)::float8 AS received_ago_s
FROM device_assignments a
JOIN shipments s ON s.shipment_id = a.shipment_id AND s.status = 'in_transit'
LEFT JOIN devices d ON d.device_id = a.device_id
LEFT JOIN device_state ds ON ds.device_id = a.device_id
WHERE a.during @> %(now)s::timestamptz AND {_A_IN_PARTITIONS}
"""

HOLDING_OFFLINE = f"""
SELECT shipment_id, device_id FROM rule_states
WHERE rule_key = 'device_offline' AND holding AND {_IN_PARTITIONS}
"""

# Shipments whose alerts may need a decision without any new reading (e.g. acknowledged after
# their condition cleared, which resolves them), with those given (``also``: not settled last
# time), of the partitions given.
SHIPMENTS_TO_SETTLE = f"""
SELECT shipment_id FROM (
    SELECT shipment_id FROM alerts WHERE state <> 'resolved'
    UNION
    SELECT unnest(%(also)s::bigint[])
) AS s (shipment_id)
WHERE {_IN_PARTITIONS}
"""

# Unacknowledged alerts below the last tier; SKIP LOCKED leaves alone one that a person is
# acknowledging this very moment (the API locks the row), so acknowledging wins the race.
ESCALATION_CANDIDATES = f"""
SELECT a.alert_id, a.shipment_id, s.reference, a.rule_key, a.severity, a.state, a.title,
       a.device_id, a.triggered_at, a.value, a.thresholds, a.escalation_level, a.created_at,
       a.cleared_at IS NOT NULL AS cleared
FROM alerts a JOIN shipments s ON s.shipment_id = a.shipment_id
WHERE a.state = 'open' AND a.escalation_level < %(last_tier)s
  AND {_A_IN_PARTITIONS}
ORDER BY a.created_at
FOR UPDATE OF a SKIP LOCKED
"""

# escalated_at is the engine's clock: reminders are counted from it (alerts/reminders.py).
ESCALATE_ALERT = """
UPDATE alerts SET escalation_level = %s, escalated_at = %s, updated_at = now() WHERE alert_id = %s
"""

# Unacknowledged alerts (reminders: alerts/reminders.py), with their last notification: the
# latest of opening, escalation and reminder; only those notified before ``due_before`` (now
# minus the shortest interval of any severity), so the rows locked are those that may be due.
# SKIP LOCKED as for escalation.
REMINDER_CANDIDATES = f"""
SELECT a.alert_id, a.shipment_id, s.reference, a.rule_key, a.severity, a.state, a.title,
       a.device_id, a.triggered_at, a.value, a.thresholds, a.escalation_level, a.created_at,
       a.cleared_at IS NOT NULL AS cleared,
       greatest(a.created_at, a.escalated_at, a.reminded_at) AS last_notified_at,
       a.reminders_sent, a.reminder_held_since
FROM alerts a JOIN shipments s ON s.shipment_id = a.shipment_id
WHERE a.state = 'open' AND {_A_IN_PARTITIONS}
  AND greatest(a.created_at, a.escalated_at, a.reminded_at) <= %(due_before)s
ORDER BY a.created_at
FOR UPDATE OF a SKIP LOCKED
"""

REMIND_ALERT = """
UPDATE alerts SET reminded_at = %s, reminders_sent = reminders_sent + 1,
       reminder_held_since = NULL
WHERE alert_id = %s
"""

HOLD_REMINDER = """
UPDATE alerts SET reminder_held_since = %s WHERE alert_id = %s AND reminder_held_since IS NULL
"""

INSERT_NOTIFICATION = """
INSERT INTO notifications (alert_id, event, tier, channel, target, payload)
VALUES (%s, %s, %s, %s, %s, %s)
RETURNING id
"""

NOTIFY_NOTIFICATIONS = "SELECT pg_notify('alert_notifications', '')"

# Claim due notifications: the attempt is counted and the row leased (not due again until the
# lease ends) in one statement, so two workers never send the same row at the same time.
# An alert's events reach each recipient in order: a row waits while an earlier one of the same
# alert to the same recipient is still pending (retrying after a 429, say), so PagerDuty never
# hears "acknowledge" before the "trigger" it acknowledges. A row that flood control holds does
# not hold the later ones back (for up to the digest's delay): they meet flood control in turn (a
# critical one is never held), and the digest tells of the held one. A backlog digest's members
# do hold them back, until the digest, sent at once, is delivered.
CLAIM_NOTIFICATIONS = """
UPDATE notifications n
SET attempts = n.attempts + 1, next_attempt_at = now() + make_interval(secs => %(lease_s)s)
WHERE n.id IN (
    SELECT id FROM notifications o
    WHERE delivered_at IS NULL AND gave_up_at IS NULL AND next_attempt_at <= now()
      AND NOT EXISTS (
          SELECT 1 FROM notifications e
          WHERE o.alert_id IS NOT NULL AND e.alert_id = o.alert_id AND e.id < o.id
            AND e.channel = o.channel AND e.target = o.target
            AND e.delivered_at IS NULL AND e.gave_up_at IS NULL
            AND e.held_at IS NULL
      )
    ORDER BY next_attempt_at, id
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
)
RETURNING n.id, n.alert_id, n.event, n.tier, n.channel, n.target, n.payload, n.attempts
"""

RECORD_DELIVERY = """
INSERT INTO deliveries (alert_id, channel, target, event, attempt, ok, response, notification_id,
                        duration_ms)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)
"""

NOTIFICATION_DELIVERED = """
UPDATE notifications SET delivered_at = now(), last_error = NULL WHERE id = %s
"""

NOTIFICATION_GIVEN_UP = """
UPDATE notifications SET gave_up_at = now(), last_error = %s WHERE id = %s
"""

NOTIFICATION_RETRY = """
UPDATE notifications SET next_attempt_at = now() + make_interval(secs => %s), last_error = %s
WHERE id = %s
"""

NEXT_NOTIFICATION_DUE = """
SELECT extract(epoch FROM min(next_attempt_at) - now())::float8 FROM notifications
WHERE delivered_at IS NULL AND gave_up_at IS NULL
"""


# Rule definitions (one layer of rules per product or shipment, versioned)

# A scope is a product (gtin given, shipment_id NULL) or a shipment (the other way round);
# ``product_gtin = NULL`` matches nothing, so one statement serves both.
_RULE_SCOPE = "(product_gtin = %(gtin)s OR shipment_id = %(shipment_id)s)"
_RULE_VERSION_COLUMNS = "version, definition, created_by, created_at, comment AS reason"

RULE_VERSIONS = f"""
SELECT {_RULE_VERSION_COLUMNS} FROM rule_definitions WHERE {_RULE_SCOPE} ORDER BY version
"""

CURRENT_RULE_VERSION = f"""
SELECT {_RULE_VERSION_COLUMNS} FROM rule_definitions WHERE {_RULE_SCOPE}
ORDER BY version DESC LIMIT 1
"""

SELECT_SHIPMENT_SCOPE = """
SELECT shipment_id, reference, product_gtin FROM shipments WHERE shipment_id = %(shipment_id)s
"""

# Locking the product or shipment row serialises two changes of the same scope (so each takes
# the next version number) and finds a scope deleted meanwhile. NO KEY: the foreign keys of
# shipments and assignments (KEY SHARE) are not held up.
LOCK_RULE_PRODUCT = "SELECT 1 FROM products WHERE gtin = %(gtin)s FOR NO KEY UPDATE"
LOCK_RULE_SHIPMENT = "SELECT 1 FROM shipments WHERE shipment_id = %(shipment_id)s FOR NO KEY UPDATE"

INSERT_RULE_VERSION = f"""
INSERT INTO rule_definitions (product_gtin, shipment_id, version, definition, created_by, comment)
SELECT %(gtin)s::char(14), %(shipment_id)s::bigint, coalesce(max(version), 0) + 1,
       %(definition)s, %(created_by)s, %(reason)s
FROM rule_definitions WHERE {_RULE_SCOPE}
RETURNING {_RULE_VERSION_COLUMNS}
"""


def get_shipment_scope(*, conn: Conn, key: str) -> Row:
    """A shipment's id, reference and product GTIN by id or reference; raises NotFoundError."""
    shipment_id = find_shipment_id(conn=conn, key=key)
    row = conn.execute(SELECT_SHIPMENT_SCOPE, {"shipment_id": shipment_id}).fetchone()
    if row is None:
        raise NotFoundError(f"shipment {key!r} not found (give its id or its reference)")
    return row


def rule_versions(
    *, conn: Conn, gtin: str | None = None, shipment_id: int | None = None
) -> list[Row]:
    """Every stored version of a product's (``gtin``) or a shipment's rules, oldest first."""
    return conn.execute(RULE_VERSIONS, {"gtin": gtin, "shipment_id": shipment_id}).fetchall()


def current_rule_version(
    *, conn: Conn, gtin: str | None = None, shipment_id: int | None = None
) -> Row | None:
    """The version in force (the highest) of a product's or a shipment's rules, if any."""
    params = {"gtin": gtin, "shipment_id": shipment_id}
    return conn.execute(CURRENT_RULE_VERSION, params).fetchone()


def add_rule_version(
    *,
    conn: Conn,
    gtin: str | None = None,
    shipment_id: int | None = None,
    definition: dict[str, Any],
    created_by: str,
    reason: str,
) -> Row:
    """Store ``definition`` (validated by the caller) as the next version of the scope's rules.

    Never an update: earlier versions stay. The audit trigger records the new row with the
    context on the connection. Raises NotFoundError when the product or shipment is gone.
    """
    if (gtin is None) == (shipment_id is None):
        raise ValueError("give exactly one of gtin and shipment_id")
    params: dict[str, Any] = {
        "gtin": gtin,
        "shipment_id": shipment_id,
        "definition": Jsonb(definition),
        "created_by": created_by,
        "reason": reason,
    }
    with conn.transaction():
        lock = LOCK_RULE_PRODUCT if gtin is not None else LOCK_RULE_SHIPMENT
        if conn.execute(lock, params).fetchone() is None:
            scope = f"product with GTIN {gtin!r}" if gtin else f"shipment {shipment_id}"
            raise NotFoundError(f"{scope} not found")
        row = conn.execute(INSERT_RULE_VERSION, params).fetchone()
    assert row is not None
    return row
