"""Readings of a shipment or a logger over a time range, raw or down-sampled; a shipment's track
(its readings with a position, and its lane's two sites) for the route map.

Readings belong to a shipment through ``device_assignments`` only:
``r.device_id = a.device_id AND a.during @> r.ts``. The extra bounds on ``r.ts`` next to that
predicate are the same condition written so the ``(device_id, ts)`` index and chunk exclusion
can use it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from db.queries.devices import get_device
from db.types import Conn, Row


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
# A shipment's track (the route map): its readings that carry a position.
_TRACK_SOURCE = _SHIPMENT_SOURCE + "  AND r.lat IS NOT NULL AND r.lon IS NOT NULL\n"
SHIPMENT_TRACK_STATS = f"WITH src AS ({_TRACK_SOURCE}) {_STATS}"
SHIPMENT_TRACK_RAW = f"WITH src AS ({_TRACK_SOURCE}) {_RAW}"
SHIPMENT_TRACK_BUCKETED = f"WITH src AS ({_TRACK_SOURCE}) {_BUCKETED}"
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


# The planned ends of a shipment's route: the sites of its lane (none without a lane). A site
# without a name is shown by the shipment's own origin or destination text.
SHIPMENT_ROUTE_ENDS = """
SELECT coalesce(o.name, s.origin) AS origin_name, o.lat AS origin_lat, o.lon AS origin_lon,
       coalesce(d.name, s.destination) AS destination_name,
       d.lat AS destination_lat, d.lon AS destination_lon
FROM shipments s
JOIN lanes l ON l.lane_id = s.lane_id
JOIN locations o ON o.location_id = l.origin_location_id
JOIN locations d ON d.location_id = l.destination_location_id
WHERE s.shipment_id = %(shipment_id)s
"""


@dataclass(frozen=True, slots=True)
class Track:
    """Where a shipment's loggers have been, and where its route starts and ends.

    ``positions`` are the readings that carry a position (points as in :class:`ReadingSeries`,
    down-sampled the same way); ``ends`` has ``origin_name, origin_lat, origin_lon,
    destination_name, destination_lat, destination_lon`` from the shipment's lane, or is None
    when it has no lane.
    """

    positions: ReadingSeries
    ends: Row | None


def shipment_track(*, conn: Conn, shipment_id: int, max_points: int = 300) -> Track:
    """The positions of a shipment's loggers within their assignments (at most about
    ``max_points``, down-sampled with ``time_bucket`` above that) and its lane's two sites."""
    params: dict[str, Any] = {"shipment_id": shipment_id, "start": None, "end": None}
    positions = _readings(
        conn,
        params,
        SHIPMENT_TRACK_STATS,
        SHIPMENT_TRACK_RAW,
        SHIPMENT_TRACK_BUCKETED,
        max_points,
    )
    ends = conn.execute(SHIPMENT_ROUTE_ENDS, {"shipment_id": shipment_id}).fetchone()
    return Track(positions=positions, ends=ends)
