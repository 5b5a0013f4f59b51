"""What the lifecycle automation reads and writes (``services/automation.py``;
``db/migrations/0012_lifecycle_automation.sql``).

Keyword-only functions taking ``conn``, parameterised SQL, dict rows. The cursor over
``reading_changes`` is the rules engine's mechanism (:mod:`db.queries.rules`) under a name of
its own, so the two never move each other's position; it moves by the transaction horizon
(:mod:`coldchain.changes`), so a change committed after a later one is not passed over.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from psycopg.types.json import Jsonb

from coldchain.changes import START, Position
from db.queries import rules as rules_q
from db.types import Conn, Row

# Shipments the automation may move: planned or in transit, with a logger assigned (of one of
# ``devices`` when given), with the geofences of their lane's origin and destination.
CANDIDATES = """
SELECT s.shipment_id, s.reference, s.status, s.planned_departure, s.started_at,
       o.gln AS origin_gln, o.location_id AS origin_id, o.lat AS origin_lat,
       o.lon AS origin_lon, o.geofence_m AS origin_geofence_m,
       d.gln AS destination_gln, d.location_id AS destination_id, d.lat AS destination_lat,
       d.lon AS destination_lon, d.geofence_m AS destination_geofence_m
FROM shipments s
LEFT JOIN lanes l ON l.lane_id = s.lane_id
LEFT JOIN locations o ON o.location_id = l.origin_location_id
LEFT JOIN locations d ON d.location_id = l.destination_location_id
WHERE s.status IN ('planned', 'in_transit')
  AND EXISTS (SELECT 1 FROM device_assignments a
              WHERE a.shipment_id = s.shipment_id
                AND (%(devices)s::text[] IS NULL OR a.device_id = ANY(%(devices)s::text[])))
ORDER BY s.shipment_id
"""

# The readings of the shipment's loggers within their assignments, from ``since`` on, and
# (when a box is given) only positions inside the box: the exact geofence test is the core's
# (coldchain.geo); the box lets the (device_id, ts) index and a cheap filter do the bulk.
FIXES = """
SELECT r.ts, r.device_id, r.lat, r.lon
FROM device_assignments a
JOIN readings r ON r.device_id = a.device_id
 AND r.ts >= coalesce(lower(a.during), '-infinity')
 AND r.ts < coalesce(upper(a.during), 'infinity')
WHERE a.shipment_id = %(id)s
  AND r.ts >= coalesce(%(since)s::timestamptz, '-infinity')
  AND (NOT %(boxed)s OR (r.lat BETWEEN %(lat_min)s AND %(lat_max)s
                         AND r.lon BETWEEN %(lon_min)s AND %(lon_max)s))
ORDER BY r.ts, r.device_id
"""

# The shipment a unit is on board at a time, with its lane's destination site (a dock scan).
SHIPMENT_OF_UNIT = """
SELECT s.shipment_id, s.reference, s.status, d.gln AS destination_gln,
       d.location_id AS destination_id
FROM units u
JOIN shipment_units su ON su.epc = u.epc AND su.during @> %(at)s::timestamptz
JOIN shipments s ON s.shipment_id = su.shipment_id
LEFT JOIN lanes l ON l.lane_id = s.lane_id
LEFT JOIN locations d ON d.location_id = l.destination_location_id
WHERE (%(kind)s = 'sscc' AND u.sscc = %(sscc)s)
   OR (%(kind)s = 'sgtin' AND u.gtin = %(gtin)s AND u.serial = %(serial)s)
"""

# Timeline entries waiting for their webhooks, oldest first, with their shipment.
PENDING_WEBHOOKS = """
SELECT e.event_id, e.shipment_id, e.at, e.event, e.from_state, e.to_state, e.actor, e.reason,
       e.data, s.reference, s.status
FROM lifecycle_outbox o
JOIN shipment_events e USING (event_id)
JOIN shipments s ON s.shipment_id = e.shipment_id
WHERE o.handled_at IS NULL
ORDER BY o.event_id
LIMIT %(limit)s
FOR UPDATE OF o SKIP LOCKED
"""

INSERT_NOTIFICATION = """
INSERT INTO notifications (shipment_event_id, event, tier, channel, target, payload)
VALUES (%s, %s, 0, 'webhook', %s, %s)
"""

MARK_HANDLED = """
UPDATE lifecycle_outbox SET handled_at = now(), receivers = %s WHERE event_id = %s
"""


def ensure_cursor(*, conn: Conn, name: str) -> None:
    """Create the cursor ``name`` over reading_changes (at 0) unless it exists."""
    conn.execute(rules_q.ENSURE_CURSOR, (name,))


def lock_cursor(*, conn: Conn, name: str) -> Position:
    """The cursor's position, locked until the caller's transaction ends."""
    row = conn.execute(rules_q.LOCK_CURSOR, (name,)).fetchone()
    return START if row is None else Position(int(row["last_xid"]), int(row["last_change_id"]))


def move_cursor(*, conn: Conn, name: str, to: Position) -> None:
    """Move the cursor to ``to`` (never back)."""
    conn.execute(rules_q.MOVE_CURSOR, {**to._asdict(), "name": name})


def horizon(*, conn: Conn) -> int:
    """The transaction horizon: every transaction below it has ended (coldchain.changes)."""
    row = conn.execute(rules_q.HORIZON).fetchone()
    assert row is not None
    return int(row["horizon"])


def pending_changes(*, conn: Conn, after: Position, horizon: int, limit: int) -> list[Row]:
    """The reading changes after ``after`` of transactions below ``horizon``, in log order
    (change_id, xid, device_id, ts_min, ts_max)."""
    params = {**after._asdict(), "horizon": horizon, "limit": limit}
    return conn.execute(rules_q.PENDING_CHANGES, params).fetchall()


def candidates(*, conn: Conn, devices: Sequence[str] | None) -> list[Row]:
    """Planned and in-transit shipments with a logger (one of ``devices`` if given) and the
    geofences of their lane's ends."""
    return conn.execute(
        CANDIDATES, {"devices": None if devices is None else list(devices)}
    ).fetchall()


def fixes(
    *,
    conn: Conn,
    shipment_id: int,
    since: datetime | None,
    box: tuple[float, float, float, float] | None = None,
) -> list[Row]:
    """Readings (ts, device_id, lat, lon) of the shipment's loggers within their assignments,
    at or after ``since``; only those inside ``box`` (lat_min, lat_max, lon_min, lon_max) if
    given."""
    lat_min, lat_max, lon_min, lon_max = box or (0.0, 0.0, 0.0, 0.0)
    params = {
        "id": shipment_id,
        "since": since,
        "boxed": box is not None,
        "lat_min": lat_min,
        "lat_max": lat_max,
        "lon_min": lon_min,
        "lon_max": lon_max,
    }
    return conn.execute(FIXES, params).fetchall()


def shipment_of_unit(*, conn: Conn, key: dict[str, Any], at: datetime) -> Row | None:
    """The shipment the unit (``kind``, ``sscc``, ``gtin``, ``serial``) is on board at ``at``,
    with its lane's destination GLN."""
    return conn.execute(SHIPMENT_OF_UNIT, {**key, "at": at}).fetchone()


def pending_webhooks(*, conn: Conn, limit: int) -> list[Row]:
    """Timeline entries whose webhooks are not queued yet, locked (SKIP LOCKED), oldest first."""
    return conn.execute(PENDING_WEBHOOKS, {"limit": limit}).fetchall()


def queue_webhooks(
    *, conn: Conn, rows: Sequence[tuple[int, str, str, dict[str, Any]]], handled: Sequence[int]
) -> None:
    """Queue (event_id, event, target URL, payload) notifications and mark ``handled`` entries
    done with the number of receivers each got; wake the delivery worker."""
    if rows:
        with conn.cursor() as cur:
            cur.executemany(
                INSERT_NOTIFICATION,
                [(event_id, event, target, Jsonb(payload)) for event_id, event, target, payload
                 in rows],
            )  # fmt: skip
    per_event: dict[int, int] = {}
    for event_id, *_ in rows:
        per_event[event_id] = per_event.get(event_id, 0) + 1
    with conn.cursor() as cur:
        cur.executemany(MARK_HANDLED, [(per_event.get(e, 0), e) for e in handled])
    if rows:
        conn.execute(rules_q.NOTIFY_NOTIFICATIONS)
