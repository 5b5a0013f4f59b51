"""Queries of lane risk, carrier scorecards and the weekly lane report's subscriptions
(issue 17; the figures: :mod:`coldchain.insight`).

Everything starts from the lane's *finished* shipments (:data:`coldchain.lifecycle.FINISHED`,
passed in as ``finished``) arrived within ``[since, until)`` when those are given (a finished
shipment with no recorded arrival then counts in no window). The per-shipment figures come from
the excursions (current versions) and alerts, aggregated here so that only one row per shipment
(or leg) leaves the database; only the temperature band reads ``readings``, through each
logger's assignment and the shipment's own start and arrival, so the (device_id, ts) index
bounds every scan.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from db.types import Conn, Row

# The finished shipments of the lanes asked for, with their planned arrival (the booking's, else
# the last leg's).
_FINISHED = """
fin AS (
    SELECT s.shipment_id, s.reference, l.code AS lane, l.mode, s.started_at, s.arrived_at,
           coalesce(s.planned_arrival,
                    (SELECT max(g.planned_arrival) FROM shipment_legs g
                     WHERE g.shipment_id = s.shipment_id)) AS planned_arrival
    FROM shipments s JOIN lanes l USING (lane_id)
    WHERE s.status = ANY(%(finished)s)
      AND (%(lane)s::text IS NULL OR l.code = %(lane)s::text)
      AND (%(since)s::timestamptz IS NULL OR s.arrived_at >= %(since)s::timestamptz)
      AND (%(until)s::timestamptz IS NULL OR s.arrived_at < %(until)s::timestamptz)
)"""

# Time out of range: each current excursion from its start to its end (an open one: to its last
# reading out of range), as the QA queue counts it (db/queries/reports.py).
_TIME_OUT = "extract(epoch FROM coalesce(e.end_ts, e.last_out_ts) - e.start_ts)"

LANE_SHIPMENTS = f"""
WITH {_FINISHED},
ex AS (
    SELECT e.shipment_id, count(*) AS excursions, sum({_TIME_OUT}) AS time_out_s
    FROM excursions e
    WHERE e.shipment_id IN (SELECT shipment_id FROM fin) AND e.superseded_at IS NULL
    GROUP BY e.shipment_id
),
al AS (
    SELECT a.shipment_id, count(*) AS alerts FROM alerts a
    WHERE a.shipment_id IN (SELECT shipment_id FROM fin)
    GROUP BY a.shipment_id
)
SELECT fin.shipment_id, fin.reference, fin.lane, fin.mode, fin.arrived_at, fin.planned_arrival,
       coalesce(ex.excursions, 0)::int AS excursions,
       coalesce(ex.time_out_s, 0)::double precision AS time_out_s,
       coalesce(al.alerts, 0)::int AS alerts
FROM fin LEFT JOIN ex USING (shipment_id) LEFT JOIN al USING (shipment_id)
ORDER BY fin.lane, fin.arrived_at NULLS FIRST, fin.shipment_id
"""

# The 5th and 95th percentiles of the readings in transit, per lane ({month} NULL) or per lane
# and calendar month of arrival. A reading counts while its logger is assigned to the shipment
# and between the shipment's start and arrival. One sort serves both percentiles.
_LANE_BANDS = f"""
WITH {_FINISHED}
SELECT fin.lane, {{month}} AS month,
       percentile_cont(ARRAY[0.05, 0.95]) WITHIN GROUP (ORDER BY r.temp_c) AS cuts,
       count(*)::int AS readings
FROM fin
JOIN device_assignments a ON a.shipment_id = fin.shipment_id
JOIN readings r ON r.device_id = a.device_id
    AND r.ts >= greatest(lower(a.during), fin.started_at)
    AND r.ts <= fin.arrived_at
    AND (upper(a.during) IS NULL OR r.ts < upper(a.during))
WHERE fin.started_at IS NOT NULL AND fin.arrived_at IS NOT NULL AND r.temp_c IS NOT NULL
GROUP BY 1, 2
"""
LANE_BANDS = _LANE_BANDS.format(month="NULL::text")
LANE_MONTH_BANDS = _LANE_BANDS.format(month="to_char(fin.arrived_at AT TIME ZONE 'UTC', 'YYYY-MM')")
#: The sort of a lane's readings for the percentiles stays in memory up to this (the default
#: 4 MB spills a year of a busy lane to disk; set for the query's transaction only).
BANDS_WORK_MEM = "64MB"

# Each leg of the finished shipments with what started during it (coldchain/insight/carriers.py:
# a leg runs from the latest planned arrival of the legs before it to its own planned arrival,
# the last one to the shipment's arrival). A shipment booked without legs is one leg of its
# carrier. Legs without a carrier are not anyone's.
CARRIER_LEGS = f"""
WITH {_FINISHED},
legs AS (
    SELECT fin.shipment_id, fin.lane, g.seq, g.carrier, g.planned_arrival, fin.arrived_at,
           max(g.planned_arrival) OVER (PARTITION BY g.shipment_id ORDER BY g.seq
                                       ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS from_ts,
           g.seq = max(g.seq) OVER (PARTITION BY g.shipment_id) AS last
    FROM fin JOIN shipment_legs g USING (shipment_id)
    UNION ALL
    SELECT fin.shipment_id, fin.lane, 1, s.carrier, fin.planned_arrival, fin.arrived_at,
           NULL, true
    FROM fin JOIN shipments s USING (shipment_id)
    WHERE NOT EXISTS (SELECT 1 FROM shipment_legs g WHERE g.shipment_id = fin.shipment_id)
)
SELECT legs.lane, legs.shipment_id, legs.seq, legs.carrier, legs.planned_arrival,
       CASE WHEN legs.last THEN legs.arrived_at END AS arrived_at,
       count(e.excursion_id)::int AS excursions,
       coalesce(sum({_TIME_OUT}), 0)::double precision AS time_out_s
FROM legs
LEFT JOIN excursions e ON e.shipment_id = legs.shipment_id AND e.superseded_at IS NULL
    AND (legs.from_ts IS NULL OR e.start_ts >= legs.from_ts)
    AND (legs.last OR e.start_ts < legs.planned_arrival)
WHERE legs.carrier IS NOT NULL
  AND (%(carrier)s::text IS NULL OR legs.carrier = %(carrier)s::text)
GROUP BY legs.lane, legs.shipment_id, legs.seq, legs.carrier, legs.planned_arrival,
         legs.arrived_at, legs.last
ORDER BY legs.lane, legs.carrier, legs.shipment_id, legs.seq
"""

LANES = """
SELECT l.lane_id, l.code, l.mode, l.origin_location_id, l.destination_location_id,
       coalesce(o.name, l.origin_location_id) AS origin,
       coalesce(d.name, l.destination_location_id) AS destination, l.retired_at
FROM lanes l
LEFT JOIN locations o ON o.location_id = l.origin_location_id
LEFT JOIN locations d ON d.location_id = l.destination_location_id
ORDER BY l.code
"""


def _window(
    *, finished: list[str], lane: str | None, since: datetime | None, until: datetime | None
) -> dict[str, Any]:
    return {"finished": finished, "lane": lane, "since": since, "until": until}


def lane_shipments(
    *,
    conn: Conn,
    finished: list[str],
    lane: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[Row]:
    """One row per finished shipment of the lane(s): excursions, time out of range, alerts."""
    params = _window(finished=finished, lane=lane, since=since, until=until)
    return conn.execute(LANE_SHIPMENTS, params).fetchall()


def lane_bands(
    *,
    conn: Conn,
    finished: list[str],
    lane: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    by_month: bool = False,
) -> list[Row]:
    """The 90% band of the readings (``low_c``, ``high_c``, ``readings``) per lane, or per lane
    and month (``month``)."""
    params = _window(finished=finished, lane=lane, since=since, until=until)
    with conn.transaction():
        conn.execute(f"SET LOCAL work_mem = '{BANDS_WORK_MEM}'")
        rows = conn.execute(LANE_MONTH_BANDS if by_month else LANE_BANDS, params).fetchall()
    return [
        {
            "lane": r["lane"],
            "month": r["month"],
            "low_c": r["cuts"][0],
            "high_c": r["cuts"][1],
            "readings": r["readings"],
        }
        for r in rows
    ]


def carrier_legs(
    *,
    conn: Conn,
    finished: list[str],
    lane: str | None = None,
    carrier: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[Row]:
    """Each carrier's legs of finished shipments with the excursions that started in them."""
    params = {**_window(finished=finished, lane=lane, since=since, until=until), "carrier": carrier}
    return conn.execute(CARRIER_LEGS, params).fetchall()


def lanes(*, conn: Conn) -> list[Row]:
    """Every lane with its mode and the names of its ends, by code."""
    return conn.execute(LANES).fetchall()


# ---------------------------------------------------------------------------------------------
# Subscriptions to the weekly lane report, and the weeks sent (0029)
# ---------------------------------------------------------------------------------------------

_SUBSCRIPTION = """
SELECT r.subscription_id, r.username, r.lane_id, l.code AS lane, r.carrier_id,
       c.name AS carrier, r.email, r.created_at, r.active, r.ended_at
FROM report_subscriptions r
LEFT JOIN lanes l ON l.lane_id = r.lane_id
LEFT JOIN carriers c ON c.carrier_id = r.carrier_id
"""


def subscriptions(*, conn: Conn, username: str | None = None) -> list[Row]:
    """The subscriptions of ``username`` (None: everyone's), the active first, newest first."""
    sql = _SUBSCRIPTION + (
        " WHERE (%(username)s::text IS NULL OR r.username = %(username)s::text)"
        " ORDER BY r.active DESC, r.created_at DESC, r.subscription_id DESC"
    )
    return conn.execute(sql, {"username": username}).fetchall()


def subscription(*, conn: Conn, subscription_id: int) -> Row | None:
    """One subscription by id."""
    sql = _SUBSCRIPTION + " WHERE r.subscription_id = %(id)s"
    return conn.execute(sql, {"id": subscription_id}).fetchone()


def insert_subscription(
    *, conn: Conn, username: str, lane_id: int | None, carrier_id: int | None, email: str
) -> int | None:
    """A new active subscription's id; None if the same one is already active."""
    row = conn.execute(
        """INSERT INTO report_subscriptions (username, lane_id, carrier_id, email)
           VALUES (%(username)s, %(lane_id)s, %(carrier_id)s, %(email)s)
           ON CONFLICT DO NOTHING RETURNING subscription_id""",
        {"username": username, "lane_id": lane_id, "carrier_id": carrier_id, "email": email},
    ).fetchone()
    return None if row is None else int(row["subscription_id"])


def end_subscription(*, conn: Conn, subscription_id: int) -> bool:
    """Make an active subscription inactive; False if it was not active."""
    cur = conn.execute(
        """UPDATE report_subscriptions SET active = false, ended_at = now()
           WHERE subscription_id = %(id)s AND active""",
        {"id": subscription_id},
    )
    return cur.rowcount == 1


def due_subscriptions(*, conn: Conn, week_start: datetime) -> list[Row]:
    """The active subscriptions made before the week ended that have no send of that week."""
    sql = _SUBSCRIPTION + (
        " WHERE r.active AND r.created_at < %(week_start)s::timestamptz + interval '7 days'"
        " AND NOT EXISTS (SELECT 1 FROM report_sends s WHERE s.subscription_id ="
        " r.subscription_id AND s.week_start = %(week_start)s::date)"
        " ORDER BY r.subscription_id"
    )
    return conn.execute(sql, {"week_start": week_start}).fetchall()


def claim_send(*, conn: Conn, subscription_id: int, week_start: datetime) -> bool:
    """Record that the week is being sent to the subscription; False if it already was (by
    this sender or another): the at-most-once guard."""
    cur = conn.execute(
        """INSERT INTO report_sends (subscription_id, week_start)
           VALUES (%(id)s, %(week_start)s::date) ON CONFLICT DO NOTHING""",
        {"id": subscription_id, "week_start": week_start},
    )
    return cur.rowcount == 1


def record_send(
    *, conn: Conn, subscription_id: int, week_start: datetime, error: str | None
) -> None:
    """The outcome of a claimed send: sent now, or the error it failed with."""
    conn.execute(
        """UPDATE report_sends
           SET sent_at = CASE WHEN %(error)s::text IS NULL THEN now() END, error = %(error)s
           WHERE subscription_id = %(id)s AND week_start = %(week_start)s::date""",
        {"id": subscription_id, "week_start": week_start, "error": error},
    )


def sends(*, conn: Conn, subscription_id: int) -> list[Row]:
    """The weeks sent to a subscription, newest first."""
    return conn.execute(
        """SELECT week_start, claimed_at, sent_at, error FROM report_sends
           WHERE subscription_id = %(id)s ORDER BY week_start DESC""",
        {"id": subscription_id},
    ).fetchall()


def person(*, conn: Conn, username: str) -> Row | None:
    """A person's user name, e-mail address and whether they are active; None if unknown."""
    return conn.execute(
        "SELECT username, email, active FROM app_users WHERE username = %(username)s",
        {"username": username},
    ).fetchone()


def lane_id(*, conn: Conn, code: str) -> int | None:
    """A lane's id by its code."""
    row = conn.execute("SELECT lane_id FROM lanes WHERE code = %(code)s", {"code": code}).fetchone()
    return None if row is None else int(row["lane_id"])


def carrier(*, conn: Conn, name: str) -> Row | None:
    """A carrier (``carrier_id``, ``name``) by its name or its code."""
    return conn.execute(
        "SELECT carrier_id, name FROM carriers WHERE name = %(name)s OR code = %(name)s"
        " ORDER BY name = %(name)s DESC LIMIT 1",
        {"name": name},
    ).fetchone()
