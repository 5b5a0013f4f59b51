"""The web process's queries: the API handlers and the dashboard callbacks both call these.

Every function takes keyword-only arguments, starting with ``conn`` (a connection whose rows are
dicts), and every statement is parameterised. Nothing here knows about HTTP or Dash: a missing
object raises :class:`~coldchain.errors.NotFoundError`, a forbidden alert transition raises
:class:`AlertConflictError`, and the callers turn those into a 404/409 or a message on screen.

Readings belong to a shipment through ``device_assignments`` only:
``r.device_id = a.device_id AND a.during @> r.ts``. The extra bounds on ``r.ts`` next to that
predicate are the same condition written so the ``(device_id, ts)`` index and chunk exclusion
can use it.

The *condition* of a shipment, used to colour the fleet and to put the shipments that need action
first (``attention``: alarm 3 > warning 2 > offline 1 > ok 0):

* ``alarm``   an unresolved alert of severity ``major`` or ``critical``;
* ``warning`` an unresolved ``warning`` alert, or a current temperature outside the product range
  (the rules engine decides about alarms; the live reading alone only warns);
* ``offline`` in transit, and a currently assigned logger is offline, or none is assigned.
  Offline is the rules engine's "no data" definition (:func:`coldchain.thermal.limits.is_offline`):
  silent for longer than ``offline_factor`` (``COLDCHAIN_ALERTS__OFFLINE_FACTOR``, 10 by
  default) × its logging interval, counted from its latest reading in the assignment, or from
  the assignment's start when it has sent none. A logger's own last-will "offline" status is
  shown (``online``) but does not make it offline: it may still be logging, and upload later.
  Not guaranteed: a shipment whose rules set its own offline ``minutes`` or ``factor`` is judged
  by those in the engine's alert, by the settings' factor here;
* ``ok``      otherwise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from psycopg import Connection
from psycopg.rows import DictRow, tuple_row
from psycopg.types.json import Jsonb

from coldchain import severity
from coldchain.errors import AlertConflictError, NotFoundError

#: A pooled connection of the web process; rows come back as dicts.
Conn = Connection[DictRow]
Row = dict[str, Any]

#: Alert severities, strongest first (the names and ranks are :mod:`coldchain.severity`'s).
SEVERITIES = severity.STRONGEST_FIRST

AlertAction = Literal["acknowledge", "resolve", "assign"]


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a filtered list, with the number of rows the filter matches in all."""

    items: list[Row]
    total: int
    limit: int
    offset: int


@dataclass(frozen=True, slots=True)
class ReadingSeries:
    """Readings over a time range, raw or down-sampled into ``time_bucket`` buckets.

    Each point has ``device_id, ts, n, temp_c, temp_min_c, temp_max_c, rh, lat, lon, battery``.
    Raw points have ``n = 1`` and ``temp_min_c = temp_c = temp_max_c``. A bucket's ``ts`` is the
    bucket's start, ``temp_c`` and ``rh`` are means, ``lat``/``lon`` the last position in it and
    ``battery`` the lowest level.
    """

    points: list[Row]
    resolution: Literal["raw", "bucket"]
    bucket_s: int | None
    total_readings: int


# --------------------------------------------------------------------------------------------
# Shipments
# --------------------------------------------------------------------------------------------

_MAJOR, _WARNING = severity.RANK["major"], severity.RANK["warning"]

# One row per shipment with its live picture; the callers filter, order and page it.
#
# Set-based: the loggers assigned right now (with the reading to show) and the open alerts are
# each computed for every shipment in one grouped pass and hash-joined to the shipments, rather
# than by LATERAL subqueries per shipment (5,000 shipments: a few tens of ms instead of ~150, and
# no JIT compilation). For one shipment (``shipment_id`` given) the planner pushes
# ``shipment_id = …`` into both passes. Run it unprepared (``prepare=False``): a generic plan
# cannot drop the ``IS NULL OR`` filters, expects one shipment, loops, and takes seconds.
_SHIPMENT_SUMMARY = f"""
WITH summary AS (
    SELECT
        s.shipment_id, s.reference, s.origin, s.destination, s.status, s.carrier,
        s.planned_departure, s.planned_arrival, s.created_at,
        s.product_gtin, p.name AS product_name, p.temp_min_c, p.temp_max_c,
        dev.current_device_id, dev.current_ts, dev.current_temp_c, dev.current_rh,
        dev.lat, dev.lon,
        coalesce(dev.n_devices, 0) AS n_devices,
        coalesce(dev.n_devices_offline, 0) AS n_devices_offline, dev.last_seen,
        coalesce(al.open_alerts, 0) AS open_alerts,
        coalesce(al.unacknowledged_alerts, 0) AS unacknowledged_alerts, al.worst_rank
    FROM shipments s
    LEFT JOIN products p ON p.gtin = s.product_gtin
    -- the loggers assigned right now: how many, how many are silent, when one last reported,
    -- and the current reading to show (``shown``: the one furthest outside the range, then
    -- the newest)
    LEFT JOIN (
        SELECT shipment_id,
               count(*) AS n_devices,
               count(*) FILTER (WHERE silent) AS n_devices_offline,
               max(ts) AS last_seen,
               max(device_id) FILTER (WHERE shown) AS current_device_id,
               max(ts) FILTER (WHERE shown) AS current_ts,
               max(temp_c) FILTER (WHERE shown) AS current_temp_c,
               max(rh) FILTER (WHERE shown) AS current_rh,
               max(lat) FILTER (WHERE shown) AS lat,
               max(lon) FILTER (WHERE shown) AS lon
        FROM (
            SELECT a.shipment_id, ds.device_id, ds.ts, ds.temp_c, ds.rh, ds.lat, ds.lon,
                   -- offline as coldchain.thermal.limits.is_offline: silent for longer than
                   -- the threshold since the latest reading, or since the assignment began
                   coalesce(ds.ts, lower(a.during), '-infinity')
                       < now() - make_interval(secs => d.interval_s * %(offline_factor)s)
                   AS silent,
                   ds.temp_c IS NOT NULL AND row_number() OVER (
                       PARTITION BY a.shipment_id
                       ORDER BY ds.temp_c IS NULL,
                                greatest(pa.temp_min_c - ds.temp_c, ds.temp_c - pa.temp_max_c, 0)
                                    DESC,
                                ds.ts DESC
                   ) = 1 AS shown
            FROM device_assignments a
            JOIN devices d ON d.device_id = a.device_id
            JOIN shipments sa ON sa.shipment_id = a.shipment_id
            LEFT JOIN products pa ON pa.gtin = sa.product_gtin
            LEFT JOIN device_state ds ON ds.device_id = a.device_id AND a.during @> ds.ts
            WHERE a.during @> now()
        ) live
        GROUP BY shipment_id
    ) dev ON dev.shipment_id = s.shipment_id
    LEFT JOIN (
        SELECT x.shipment_id,
               count(*) AS open_alerts,
               count(*) FILTER (WHERE x.state = 'open') AS unacknowledged_alerts,
               max({severity.rank_sql("x.severity")}) AS worst_rank
        FROM alerts x
        WHERE x.state <> 'resolved'
        GROUP BY x.shipment_id
    ) al ON al.shipment_id = s.shipment_id
),
judged AS (
    SELECT *,
        CASE
            WHEN worst_rank >= {_MAJOR} THEN 'alarm'
            WHEN worst_rank = {_WARNING} OR current_temp_c < temp_min_c OR current_temp_c > temp_max_c
                THEN 'warning'
            WHEN status = 'in_transit' AND (n_devices = 0 OR n_devices_offline > 0) THEN 'offline'
            ELSE 'ok'
        END AS condition,
        {severity.name_sql("worst_rank")} AS worst_severity
    FROM summary
),
filtered AS (
    SELECT *,
        CASE condition WHEN 'alarm' THEN 3 WHEN 'warning' THEN 2 WHEN 'offline' THEN 1
            ELSE 0 END AS attention
    FROM judged
    WHERE (%(shipment_id)s::bigint IS NULL OR shipment_id = %(shipment_id)s)
      AND (%(status)s::text IS NULL OR status = %(status)s)
      AND (%(condition)s::text IS NULL OR condition = %(condition)s)
      AND (%(pattern)s::text IS NULL OR reference ILIKE %(pattern)s
           OR origin ILIKE %(pattern)s OR destination ILIKE %(pattern)s)
      AND (%(has_open_alerts)s::boolean IS NULL OR (open_alerts > 0) = %(has_open_alerts)s)
)
"""

# Those needing action first (alarm, warning, offline), then by severity, then reference.
_DEFAULT_ORDER = (
    "attention DESC, coalesce(worst_rank, 0) DESC, unacknowledged_alerts DESC, reference"
)


def _list_sql(order: str) -> str:
    return (
        _SHIPMENT_SUMMARY
        + f"""
SELECT *, count(*) OVER () AS total
FROM filtered
ORDER BY {order}
LIMIT %(limit)s OFFSET %(offset)s
"""
    )


LIST_SHIPMENTS = _list_sql(_DEFAULT_ORDER)

#: What a shipment list can be ordered by besides ``attention`` (the default): key → SQL.
#: Rows without a value go last in either direction; ties keep the default order.
SHIPMENT_SORTS: dict[str, str] = {
    "reference": "reference",
    "lane": "origin || ' → ' || destination",
    "product": "coalesce(product_name, '')",
    "temp": "current_temp_c",
    "last_seen": "last_seen",
    "alerts": "open_alerts",
}

#: The list statement for each (sort key, descending); built from the constants above only.
LIST_SHIPMENTS_SORTED: dict[tuple[str, bool], str] = {
    ("attention", True): LIST_SHIPMENTS,
    ("attention", False): _list_sql(
        "attention, coalesce(worst_rank, 0), unacknowledged_alerts, reference"
    ),
    **{
        (key, descending): _list_sql(
            f"{expr} {'DESC' if descending else 'ASC'} NULLS LAST, {_DEFAULT_ORDER}"
        )
        for key, expr in SHIPMENT_SORTS.items()
        for descending in (True, False)
    },
}

# The fleet map and its counts: every shipment, a few narrow columns, no order.
FLEET_OVERVIEW = (
    _SHIPMENT_SUMMARY
    + """
SELECT reference, origin || ' → ' || destination AS lane, condition, current_temp_c, lat, lon
FROM filtered
"""
)
#: The columns of :func:`fleet_overview`'s rows, in order.
FLEET_OVERVIEW_COLUMNS = ("reference", "lane", "condition", "current_temp_c", "lat", "lon")

COUNT_SHIPMENTS = _SHIPMENT_SUMMARY + "SELECT count(*) AS total FROM filtered"

FIND_SHIPMENT = """
SELECT shipment_id FROM shipments
WHERE shipment_id = %(shipment_id)s OR reference = %(reference)s
ORDER BY (shipment_id = %(shipment_id)s) DESC NULLS LAST
LIMIT 1
"""

SELECT_PRODUCT = "SELECT * FROM products WHERE gtin = %(gtin)s"

SELECT_LEGS = """
SELECT seq, mode, origin, destination, carrier, planned_departure, planned_arrival
FROM shipment_legs WHERE shipment_id = %(shipment_id)s ORDER BY seq
"""

SELECT_SHIPMENT_DEVICES = """
SELECT d.device_id, d.model, d.calibration_cert, d.calibration_due, d.interval_s,
       lower(a.during) AS assigned_from, upper(a.during) AS assigned_to,
       (a.during @> now()) AS current,
       ds.ts AS last_seen, ds.temp_c, ds.rh, ds.battery, ds.online
FROM device_assignments a
JOIN devices d ON d.device_id = a.device_id
LEFT JOIN device_state ds ON ds.device_id = a.device_id AND a.during @> ds.ts
WHERE a.shipment_id = %(shipment_id)s
ORDER BY lower(a.during) NULLS FIRST, d.device_id
"""

# The newest reading that belongs to the shipment, over all of its assignments.
SELECT_LATEST_READING = """
SELECT r.device_id, r.ts, r.temp_c, r.rh, r.lat, r.lon, r.battery
FROM device_assignments a
CROSS JOIN LATERAL (
    SELECT * FROM readings r
    WHERE r.device_id = a.device_id AND a.during @> r.ts
      AND r.ts >= coalesce(lower(a.during), '-infinity')
      AND r.ts <= coalesce(upper(a.during), 'infinity')
    ORDER BY r.ts DESC
    LIMIT 1
) r
WHERE a.shipment_id = %(shipment_id)s
ORDER BY r.ts DESC
LIMIT 1
"""

SELECT_SHIPMENT_UNITS = """
SELECT u.epc, u.kind, u.gtin, u.serial, u.sscc, u.lot, u.expiry,
       lower(su.during) AS on_board_from, upper(su.during) AS on_board_to
FROM shipment_units su
JOIN units u ON u.epc = su.epc
WHERE su.shipment_id = %(shipment_id)s
ORDER BY u.kind, u.epc, lower(su.during)
"""


def _like_pattern(q: str | None) -> str | None:
    """``%q%`` for ILIKE, with the wildcard characters in ``q`` taken literally."""
    if q is None or not q.strip():
        return None
    escaped = q.strip().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def list_shipments(
    *,
    conn: Conn,
    offline_factor: float,
    status: str | None = None,
    condition: str | None = None,
    q: str | None = None,
    has_open_alerts: bool | None = None,
    sort: str = "attention",
    descending: bool = True,
    limit: int = 50,
    offset: int = 0,
) -> Page:
    """Shipments with their live picture, the ones that need action first.

    ``q`` searches reference, origin and destination (case-insensitive substring). ``sort``
    is ``attention`` (the default order) or a key of :data:`SHIPMENT_SORTS`.
    """
    statement = LIST_SHIPMENTS_SORTED.get((sort, descending))
    if statement is None:
        known = ", ".join(["attention", *SHIPMENT_SORTS])
        raise ValueError(f"cannot sort shipments by {sort!r}: one of {known}")
    params: dict[str, Any] = {
        "offline_factor": offline_factor,
        "shipment_id": None,
        "status": status,
        "condition": condition,
        "pattern": _like_pattern(q),
        "has_open_alerts": has_open_alerts,
        "limit": limit,
        "offset": offset,
    }
    rows = conn.execute(statement, params, prepare=False).fetchall()
    if rows:
        total = int(rows[0]["total"])
    elif offset == 0:
        total = 0
    else:  # paged past the end: the window count is not there to read
        found = conn.execute(COUNT_SHIPMENTS, params, prepare=False).fetchone()
        total = int(found["total"]) if found else 0
    return Page(items=[_shipment_row(r) for r in rows], total=total, limit=limit, offset=offset)


def fleet_overview(*, conn: Conn, offline_factor: float) -> list[tuple[Any, ...]]:
    """Every shipment's reference, lane, condition, current temperature and position, as
    tuples in :data:`FLEET_OVERVIEW_COLUMNS` order: what the fleet map and its counts need, for
    thousands of shipments at once (plain tuples: a row dict per shipment costs more than the
    query)."""
    params: dict[str, Any] = {
        "offline_factor": offline_factor,
        "shipment_id": None,
        "status": None,
        "condition": None,
        "pattern": None,
        "has_open_alerts": None,
    }
    with conn.cursor(row_factory=tuple_row, binary=True) as cur:
        return cur.execute(FLEET_OVERVIEW, params, prepare=False).fetchall()


def _shipment_row(row: Row) -> Row:
    """Shape a summary row the way the API shows it: ``id``, ``lane`` and a nested product."""
    out = {k: v for k, v in row.items() if k not in _PRODUCT_COLUMNS and k != "total"}
    out["id"] = row["shipment_id"]
    out["lane"] = f"{row['origin']} → {row['destination']}"
    out["product"] = (
        None
        if row["product_gtin"] is None
        else {
            "gtin": row["product_gtin"],
            "name": row["product_name"],
            "temp_min_c": row["temp_min_c"],
            "temp_max_c": row["temp_max_c"],
        }
    )
    return out


_PRODUCT_COLUMNS = frozenset({"product_gtin", "product_name", "temp_min_c", "temp_max_c"})


def find_shipment_id(*, conn: Conn, key: str) -> int:
    """The id of the shipment named by ``key``: its numeric id, else its reference.

    A key of digits is tried as an id first, then as a reference; raises NotFoundError.
    """
    key = key.strip()
    shipment_id = int(key) if key.isdigit() and int(key) < 2**63 else None
    row = conn.execute(FIND_SHIPMENT, {"shipment_id": shipment_id, "reference": key}).fetchone()
    if row is None:
        raise NotFoundError(f"shipment {key!r} not found (give its id or its reference)")
    return int(row["shipment_id"])


def get_shipment_summary(*, conn: Conn, shipment_id: int, offline_factor: float) -> Row:
    """The fleet row of one shipment; raises NotFoundError."""
    params: dict[str, Any] = {
        "offline_factor": offline_factor,
        "shipment_id": shipment_id,
        "status": None,
        "condition": None,
        "pattern": None,
        "has_open_alerts": None,
        "limit": 1,
        "offset": 0,
    }
    row = conn.execute(LIST_SHIPMENTS, params, prepare=False).fetchone()
    if row is None:
        raise NotFoundError(f"shipment {shipment_id} not found")
    return _shipment_row(row)


def get_shipment_detail(*, conn: Conn, key: str, offline_factor: float) -> Row:
    """Everything about one shipment (by id or reference): its fleet row plus product, legs,
    devices with calibration, latest reading, unresolved alerts and units on board."""
    shipment_id = find_shipment_id(conn=conn, key=key)
    detail = get_shipment_summary(conn=conn, shipment_id=shipment_id, offline_factor=offline_factor)
    ids = {"shipment_id": shipment_id}
    if detail["product"] is not None:
        gtin = detail["product"]["gtin"]
        detail["product"] = conn.execute(SELECT_PRODUCT, {"gtin": gtin}).fetchone()
    detail["legs"] = conn.execute(SELECT_LEGS, ids).fetchall()
    detail["devices"] = conn.execute(SELECT_SHIPMENT_DEVICES, ids).fetchall()
    detail["latest_reading"] = conn.execute(SELECT_LATEST_READING, ids).fetchone()
    detail["alerts"] = list_alerts(
        conn=conn, shipment_id=shipment_id, states=["open", "acknowledged"], limit=500
    ).items
    detail["units"] = conn.execute(SELECT_SHIPMENT_UNITS, ids).fetchall()
    return detail


# --------------------------------------------------------------------------------------------
# Readings
# --------------------------------------------------------------------------------------------

_SHIPMENT_SOURCE = """
SELECT r.device_id, r.ts, r.temp_c, r.rh, r.lat, r.lon, r.battery
FROM device_assignments a
JOIN readings r
  ON r.device_id = a.device_id AND a.during @> r.ts
 AND r.ts >= coalesce(lower(a.during), '-infinity')
 AND r.ts <= coalesce(upper(a.during), 'infinity')
WHERE a.shipment_id = %(shipment_id)s
  AND (%(start)s::timestamptz IS NULL OR r.ts >= %(start)s)
  AND (%(end)s::timestamptz IS NULL OR r.ts < %(end)s)
"""

_DEVICE_SOURCE = """
SELECT r.device_id, r.ts, r.temp_c, r.rh, r.lat, r.lon, r.battery
FROM readings r
WHERE r.device_id = %(device_id)s
  AND (%(start)s::timestamptz IS NULL OR r.ts >= %(start)s)
  AND (%(end)s::timestamptz IS NULL OR r.ts < %(end)s)
"""

_STATS = """
SELECT count(*) AS n, count(DISTINCT device_id) AS n_devices, min(ts) AS first, max(ts) AS last
FROM src
"""

_RAW = """
SELECT device_id, ts, 1 AS n, temp_c, temp_c AS temp_min_c, temp_c AS temp_max_c,
       rh, lat, lon, battery
FROM src
ORDER BY device_id, ts
"""

_BUCKETED = """
SELECT device_id,
       time_bucket(make_interval(secs => %(bucket_s)s), ts, %(origin)s::timestamptz) AS ts,
       count(*) AS n,
       avg(temp_c) AS temp_c, min(temp_c) AS temp_min_c, max(temp_c) AS temp_max_c,
       avg(rh) AS rh, last(lat, ts) AS lat, last(lon, ts) AS lon, min(battery) AS battery
FROM src
GROUP BY 1, 2
ORDER BY 1, 2
"""

SHIPMENT_READINGS_STATS = f"WITH src AS ({_SHIPMENT_SOURCE}) {_STATS}"
SHIPMENT_READINGS_RAW = f"WITH src AS ({_SHIPMENT_SOURCE}) {_RAW}"
SHIPMENT_READINGS_BUCKETED = f"WITH src AS ({_SHIPMENT_SOURCE}) {_BUCKETED}"
DEVICE_READINGS_STATS = f"WITH src AS ({_DEVICE_SOURCE}) {_STATS}"
DEVICE_READINGS_RAW = f"WITH src AS ({_DEVICE_SOURCE}) {_RAW}"
DEVICE_READINGS_BUCKETED = f"WITH src AS ({_DEVICE_SOURCE}) {_BUCKETED}"


def bucket_seconds(*, first: datetime, last: datetime, n_devices: int, max_points: int) -> int:
    """The bucket width that keeps ``n_devices`` series over [first, last] within ``max_points``.

    Buckets start at ``first``, so one series has ``floor(span / width) + 1`` buckets; the width
    is chosen so that this is at most ``max_points // n_devices`` (at least 2 per series).
    """
    per_series = max(2, max_points // max(1, n_devices))
    span_s = max(0.0, (last - first).total_seconds())
    return max(1, math.ceil(span_s / (per_series - 1)))


def _readings(
    conn: Conn,
    params: dict[str, Any],
    stats_sql: str,
    raw_sql: str,
    bucketed_sql: str,
    max_points: int,
) -> ReadingSeries:
    stats = conn.execute(stats_sql, params).fetchone()
    n = int(stats["n"]) if stats else 0
    if stats is None or n <= max_points:
        return ReadingSeries(
            points=conn.execute(raw_sql, params).fetchall() if n else [],
            resolution="raw",
            bucket_s=None,
            total_readings=n,
        )
    width = bucket_seconds(
        first=stats["first"],
        last=stats["last"],
        n_devices=int(stats["n_devices"]),
        max_points=max_points,
    )
    points = conn.execute(
        bucketed_sql, {**params, "bucket_s": width, "origin": stats["first"]}
    ).fetchall()
    return ReadingSeries(points=points, resolution="bucket", bucket_s=width, total_readings=n)


def shipment_readings(
    *,
    conn: Conn,
    shipment_id: int,
    start: datetime | None = None,
    end: datetime | None = None,
    max_points: int = 2000,
) -> ReadingSeries:
    """The readings of a shipment's loggers within their assignments, in [start, end).

    More than ``max_points`` readings are down-sampled server-side with ``time_bucket``.
    """
    params = {"shipment_id": shipment_id, "start": start, "end": end}
    return _readings(
        conn,
        params,
        SHIPMENT_READINGS_STATS,
        SHIPMENT_READINGS_RAW,
        SHIPMENT_READINGS_BUCKETED,
        max_points,
    )


def device_readings(
    *,
    conn: Conn,
    device_id: str,
    start: datetime | None = None,
    end: datetime | None = None,
    max_points: int = 2000,
) -> ReadingSeries:
    """The readings of one logger in [start, end), whatever shipment it was in; raises
    NotFoundError for an unknown device. Down-sampled like :func:`shipment_readings`."""
    get_device(conn=conn, device_id=device_id)
    params = {"device_id": device_id, "start": start, "end": end}
    return _readings(
        conn,
        params,
        DEVICE_READINGS_STATS,
        DEVICE_READINGS_RAW,
        DEVICE_READINGS_BUCKETED,
        max_points,
    )


# --------------------------------------------------------------------------------------------
# Excursions
# --------------------------------------------------------------------------------------------

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


# --------------------------------------------------------------------------------------------
# Alerts
# --------------------------------------------------------------------------------------------

_ALERT_COLUMNS = """
    x.alert_id AS id, x.shipment_id, s.reference AS shipment_reference, x.rule_key, x.severity,
    x.state, x.title, x.device_id, x.triggered_at, x.value, x.thresholds, x.details,
    x.assignee, x.acked_by, x.acked_at, x.ack_comment, x.resolved_by, x.resolved_at,
    x.escalation_level, x.cleared_at, x.created_at, x.updated_at
"""

LIST_ALERTS = f"""
SELECT {_ALERT_COLUMNS}, count(*) OVER () AS total
FROM alerts x
JOIN shipments s ON s.shipment_id = x.shipment_id
WHERE (%(states)s::text[] IS NULL OR x.state = ANY(%(states)s))
  AND (%(severities)s::text[] IS NULL OR x.severity = ANY(%(severities)s))
  AND (%(shipment_id)s::bigint IS NULL OR x.shipment_id = %(shipment_id)s)
ORDER BY (x.state = 'resolved'), {severity.rank_sql("x.severity")} DESC,
         x.triggered_at, x.alert_id
LIMIT %(limit)s OFFSET %(offset)s
"""

COUNT_ALERTS = """
SELECT count(*) AS total FROM alerts x
WHERE (%(states)s::text[] IS NULL OR x.state = ANY(%(states)s))
  AND (%(severities)s::text[] IS NULL OR x.severity = ANY(%(severities)s))
  AND (%(shipment_id)s::bigint IS NULL OR x.shipment_id = %(shipment_id)s)
"""

SELECT_ALERT = f"""
SELECT {_ALERT_COLUMNS}
FROM alerts x
JOIN shipments s ON s.shipment_id = x.shipment_id
WHERE x.alert_id = %(alert_id)s
"""

SELECT_ALERT_EVENTS = """
SELECT id, at, kind, actor, comment, data FROM alert_events
WHERE alert_id = %(alert_id)s ORDER BY at, id
"""

LOCK_ALERT = """
SELECT state, assignee, acked_by, acked_at, resolved_by, resolved_at
FROM alerts WHERE alert_id = %(alert_id)s
FOR UPDATE
"""

ACKNOWLEDGE_ALERT = """
UPDATE alerts SET state = 'acknowledged', acked_by = %(by)s, acked_at = now(),
    ack_comment = %(comment)s, updated_at = now()
WHERE alert_id = %(alert_id)s
"""

RESOLVE_ALERT = """
UPDATE alerts SET state = 'resolved', resolved_by = %(by)s, resolved_at = now(), updated_at = now()
WHERE alert_id = %(alert_id)s
"""

ASSIGN_ALERT = """
UPDATE alerts SET assignee = %(assignee)s, updated_at = now()
WHERE alert_id = %(alert_id)s
"""

INSERT_ALERT_EVENT = """
INSERT INTO alert_events (alert_id, kind, actor, comment, data)
VALUES (%(alert_id)s, %(kind)s, %(actor)s, %(comment)s, %(data)s)
"""


def list_alerts(
    *,
    conn: Conn,
    states: list[str] | None = None,
    severities: list[str] | None = None,
    shipment_id: int | None = None,
    limit: int = 100,
    offset: int = 0,
) -> Page:
    """Alerts, unresolved first, then by severity (strongest first) and age (oldest first)."""
    params: dict[str, Any] = {
        "states": states or None,
        "severities": severities or None,
        "shipment_id": shipment_id,
        "limit": limit,
        "offset": offset,
    }
    rows = conn.execute(LIST_ALERTS, params).fetchall()
    if rows:
        total = int(rows[0]["total"])
    elif offset == 0:
        total = 0
    else:
        found = conn.execute(COUNT_ALERTS, params).fetchone()
        total = int(found["total"]) if found else 0
    items = [{k: v for k, v in r.items() if k != "total"} for r in rows]
    return Page(items=items, total=total, limit=limit, offset=offset)


def get_alert(*, conn: Conn, alert_id: int) -> Row:
    """One alert with its events (oldest first); raises NotFoundError."""
    row = conn.execute(SELECT_ALERT, {"alert_id": alert_id}).fetchone()
    if row is None:
        raise NotFoundError(f"alert {alert_id} not found")
    row["events"] = conn.execute(SELECT_ALERT_EVENTS, {"alert_id": alert_id}).fetchall()
    return row


def transition_error(*, state: str, action: AlertAction) -> str | None:
    """Why ``action`` is not allowed on an alert in ``state``, or None when it is.

    open → acknowledged → resolved; open → resolved; a resolved alert is final, and an
    acknowledged one is not acknowledged twice. Assigning works until the alert is resolved.
    """
    if state == "resolved":
        verb = {"acknowledge": "acknowledged", "resolve": "resolved", "assign": "assigned"}[action]
        return f"the alert is already resolved and cannot be {verb}"
    if action == "acknowledge" and state == "acknowledged":
        return "the alert is already acknowledged"
    return None


def _locked_state(conn: Conn, alert_id: int) -> Row:
    row = conn.execute(LOCK_ALERT, {"alert_id": alert_id}).fetchone()
    if row is None:
        raise NotFoundError(f"alert {alert_id} not found")
    return row


def _conflict(alert_id: int, action: AlertAction, state: Row) -> AlertConflictError | None:
    why = transition_error(state=state["state"], action=action)
    if why is None:
        return None
    if state["state"] == "resolved":
        who = f" by {state['resolved_by']}" if state["resolved_by"] else ""
        at = state["resolved_at"]
        when = f" at {at.astimezone(UTC):%Y-%m-%d %H:%M} UTC" if at else ""
        why += f" (resolved{who}{when})"
    elif state["state"] == "acknowledged":
        who = f" by {state['acked_by']}" if state["acked_by"] else ""
        why += f" (acknowledged{who})"
    return AlertConflictError(f"alert {alert_id}: {why}")


def acknowledge_alert(*, conn: Conn, alert_id: int, by: str, comment: str | None) -> Row:
    """Acknowledge an open alert and record who and why, in one transaction.

    Raises NotFoundError, or AlertConflictError when the alert is acknowledged or resolved.
    """
    comment = _blank_to_none(comment)
    with conn.transaction():
        state = _locked_state(conn, alert_id)
        if (err := _conflict(alert_id, "acknowledge", state)) is not None:
            raise err
        conn.execute(ACKNOWLEDGE_ALERT, {"alert_id": alert_id, "by": by, "comment": comment})
        _event(conn, alert_id, "acknowledged", by, comment, {"from": state["state"]})
    return get_alert(conn=conn, alert_id=alert_id)


def resolve_alert(*, conn: Conn, alert_id: int, by: str, comment: str | None) -> Row:
    """Resolve an open or acknowledged alert and record who and why, in one transaction.

    Raises NotFoundError, or AlertConflictError when it is resolved already.
    """
    comment = _blank_to_none(comment)
    with conn.transaction():
        state = _locked_state(conn, alert_id)
        if (err := _conflict(alert_id, "resolve", state)) is not None:
            raise err
        conn.execute(RESOLVE_ALERT, {"alert_id": alert_id, "by": by})
        _event(conn, alert_id, "resolved", by, comment, {"from": state["state"]})
    return get_alert(conn=conn, alert_id=alert_id)


def assign_alert(*, conn: Conn, alert_id: int, assignee: str, by: str) -> Row:
    """Assign an unresolved alert to someone and record who did it, in one transaction."""
    with conn.transaction():
        state = _locked_state(conn, alert_id)
        if (err := _conflict(alert_id, "assign", state)) is not None:
            raise err
        conn.execute(ASSIGN_ALERT, {"alert_id": alert_id, "assignee": assignee})
        data = {"assignee": assignee, "previous": state["assignee"]}
        _event(conn, alert_id, "assigned", by, None, data)
    return get_alert(conn=conn, alert_id=alert_id)


def _blank_to_none(text: str | None) -> str | None:
    if text is None or not text.strip():
        return None
    return text.strip()


def _event(
    conn: Conn, alert_id: int, kind: str, actor: str, comment: str | None, data: dict[str, Any]
) -> None:
    conn.execute(
        INSERT_ALERT_EVENT,
        {
            "alert_id": alert_id,
            "kind": kind,
            "actor": actor,
            "comment": comment,
            "data": Jsonb(data),
        },
    )


# --------------------------------------------------------------------------------------------
# Devices and products
# --------------------------------------------------------------------------------------------

_DEVICE_COLUMNS = """
SELECT d.device_id, d.model, d.calibration_cert, d.calibration_due, d.interval_s, d.created_at,
       ds.ts AS last_seen, ds.temp_c, ds.rh, ds.lat, ds.lon, ds.battery, ds.online, ds.firmware,
       cur.shipment_id AS current_shipment_id, cur.reference AS current_shipment_reference
FROM devices d
LEFT JOIN device_state ds ON ds.device_id = d.device_id
LEFT JOIN LATERAL (
    SELECT s.shipment_id, s.reference
    FROM device_assignments a JOIN shipments s ON s.shipment_id = a.shipment_id
    WHERE a.device_id = d.device_id AND a.during @> now()
    LIMIT 1
) cur ON true
"""

LIST_DEVICES = _DEVICE_COLUMNS + " ORDER BY d.device_id"
SELECT_DEVICE = _DEVICE_COLUMNS + " WHERE d.device_id = %(device_id)s"

SELECT_DEVICE_ASSIGNMENTS = """
SELECT a.shipment_id, s.reference AS shipment_reference,
       lower(a.during) AS assigned_from, upper(a.during) AS assigned_to,
       (a.during @> now()) AS current
FROM device_assignments a JOIN shipments s ON s.shipment_id = a.shipment_id
WHERE a.device_id = %(device_id)s
ORDER BY lower(a.during) DESC NULLS LAST
"""

LIST_PRODUCTS = "SELECT * FROM products ORDER BY name, gtin"


def list_devices(*, conn: Conn) -> list[Row]:
    """Every logger with its latest state and the shipment it rides in now (if any)."""
    return conn.execute(LIST_DEVICES).fetchall()


def get_device(*, conn: Conn, device_id: str) -> Row:
    """One logger with its latest state and its assignments (newest first); raises NotFoundError."""
    row = conn.execute(SELECT_DEVICE, {"device_id": device_id}).fetchone()
    if row is None:
        raise NotFoundError(f"device {device_id!r} not found")
    row["assignments"] = conn.execute(
        SELECT_DEVICE_ASSIGNMENTS, {"device_id": device_id}
    ).fetchall()
    return row


def list_products(*, conn: Conn) -> list[Row]:
    """Every product with its labelled range and stability profile."""
    return conn.execute(LIST_PRODUCTS).fetchall()


def get_product(*, conn: Conn, gtin: str) -> Row:
    """One product by its 14-digit GTIN; raises NotFoundError."""
    row = conn.execute(SELECT_PRODUCT, {"gtin": gtin}).fetchone()
    if row is None:
        raise NotFoundError(f"product with GTIN {gtin!r} not found")
    return row


def ping(*, conn: Conn) -> bool:
    """True when the database answers ``SELECT 1``."""
    row = conn.execute("SELECT 1 AS ok").fetchone()
    return row is not None and row["ok"] == 1


# --------------------------------------------------------------------------------------------
# Rule definitions (one layer of rules per product or shipment, versioned)
# --------------------------------------------------------------------------------------------

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
