"""Shipments for the web process: the live list, the fleet map, one shipment's detail.

Every function takes keyword-only arguments, starting with ``conn`` (a connection whose rows
are dicts), and every statement is parameterised. A missing shipment raises
:class:`~coldchain.errors.NotFoundError`.

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

from collections.abc import Sequence
from typing import Any

from psycopg.rows import tuple_row

from coldchain import severity
from coldchain.errors import NotFoundError
from db.queries.alerts import list_alerts
from db.queries.products import find_product
from db.types import Conn, Page, Row

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
        coalesce(al.unacknowledged_alerts, 0) AS unacknowledged_alerts, al.worst_rank,
        coalesce(ex.n_excursions, 0) AS n_excursions, ex.out_of_range_since,
        ex.peak_c, ex.peak_degree_minutes, coalesce(ex.peak_open, false) AS peak_open
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
    -- the excursions (current versions): how many; since when the product is out of range (the
    -- oldest open one's start, not its alarm); the worst one's peak and °C·min (an open one
    -- before a closed one, then the most degree-minutes)
    LEFT JOIN (
        SELECT e.shipment_id,
               count(*) AS n_excursions,
               min(e.start_ts) FILTER (WHERE e.end_ts IS NULL) AS out_of_range_since,
               (array_agg(CASE e.direction WHEN 'high' THEN e.max_c ELSE e.min_c END
                          ORDER BY e.end_ts IS NULL DESC, e.degree_minutes DESC))[1] AS peak_c,
               (array_agg(e.degree_minutes
                          ORDER BY e.end_ts IS NULL DESC, e.degree_minutes DESC))[1]
                   AS peak_degree_minutes,
               bool_or(e.end_ts IS NULL) AS peak_open
        FROM excursions e
        WHERE e.superseded_at IS NULL
        GROUP BY e.shipment_id
    ) ex ON ex.shipment_id = s.shipment_id
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
           OR origin ILIKE %(pattern)s OR destination ILIKE %(pattern)s
           OR EXISTS (SELECT 1 FROM shipment_references x
                      WHERE x.shipment_id = judged.shipment_id AND x.value ILIKE %(pattern)s))
      AND (%(has_open_alerts)s::boolean IS NULL OR (open_alerts > 0) = %(has_open_alerts)s)
      AND (%(statuses)s::text[] IS NULL OR status = ANY(%(statuses)s::text[]))
      AND (%(lane)s::text IS NULL OR origin || ' → ' || destination = %(lane)s)
      AND (%(carrier)s::text IS NULL OR carrier = %(carrier)s
           OR EXISTS (SELECT 1 FROM shipment_legs l
                      WHERE l.shipment_id = judged.shipment_id AND l.carrier = %(carrier)s))
)
"""

# Those needing action first (alarm, warning, offline), the longest out of range first, then by
# severity, then those with excursions on record (a quarantine after an excursion stays
# visible), then reference.
_DEFAULT_ORDER = (
    "attention DESC, out_of_range_since NULLS LAST, coalesce(worst_rank, 0) DESC,"
    " unacknowledged_alerts DESC, n_excursions DESC, reference"
)


# The page's rows, with what only they need: the stability budget used, as the rules engine last
# counted it (its "budget" rule, per logger: the most used one), and the booking's legs (their
# carriers in leg order, the last planned arrival). Read for the page only, after the order and
# the limit (for 5,000 shipments, reading them for all cost more than the rest of the list).
# The page keeps the name ``filtered`` so that the order, applied again to its rows, reads the
# same columns.
def _list_sql(order: str) -> str:
    return (
        _SHIPMENT_SUMMARY
        + f"""
SELECT filtered.*, bu.budget_used, lg.leg_carriers,
       coalesce(filtered.planned_arrival, lg.legs_arrival) AS eta_planned
FROM (
    SELECT *, count(*) OVER () AS total
    FROM filtered
    ORDER BY {order}
    LIMIT %(limit)s OFFSET %(offset)s
) filtered
LEFT JOIN LATERAL (
    SELECT max((r.details ->> 'share_used')::double precision) AS budget_used
    FROM rule_states r
    WHERE r.shipment_id = filtered.shipment_id AND r.rule_key = 'budget'
) bu ON true
LEFT JOIN LATERAL (
    SELECT array_agg(l.carrier ORDER BY l.seq) FILTER (WHERE l.carrier IS NOT NULL)
               AS leg_carriers,
           max(l.planned_arrival) AS legs_arrival
    FROM shipment_legs l
    WHERE l.shipment_id = filtered.shipment_id
) lg ON true
ORDER BY {order}
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
    "since": "out_of_range_since",
    "duration": "now() - out_of_range_since",
    # how bad: the worst excursion's °C·min (a peak alone compares badly across high and low)
    "peak": "peak_degree_minutes",
    # what QA holds first when descending: quarantined, rejected, under review, awaiting review,
    # returned, released; before arrival last
    "qa": """CASE status WHEN 'quarantined' THEN 5 WHEN 'rejected' THEN 4 WHEN 'under_review' THEN 3
             WHEN 'arrived' THEN 2 WHEN 'returned' THEN 1 WHEN 'released' THEN 0 END""",
    # read per shipment only when the list is sorted by them (see _list_sql)
    "budget": """(SELECT max((r.details ->> 'share_used')::double precision) FROM rule_states r
                  WHERE r.shipment_id = filtered.shipment_id AND r.rule_key = 'budget')""",
    "carrier": """coalesce(carrier, (SELECT l.carrier FROM shipment_legs l
                  WHERE l.shipment_id = filtered.shipment_id AND l.carrier IS NOT NULL
                  ORDER BY l.seq LIMIT 1))""",
    "eta": """coalesce(planned_arrival, (SELECT max(l.planned_arrival) FROM shipment_legs l
              WHERE l.shipment_id = filtered.shipment_id))""",
}

#: The list statement for each (sort key, descending); built from the constants above only.
LIST_SHIPMENTS_SORTED: dict[tuple[str, bool], str] = {
    ("attention", True): LIST_SHIPMENTS,
    ("attention", False): _list_sql(
        "attention, out_of_range_since DESC NULLS FIRST, coalesce(worst_rank, 0),"
        " unacknowledged_alerts, n_excursions, reference"
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

# What the fleet's filters offer: every lane and every carrier (of a shipment or of one of its
# legs) there is, in alphabetical order.
FLEET_FILTER_CHOICES = """
SELECT 'lane' AS kind, origin || ' → ' || destination AS value FROM shipments
UNION
SELECT 'carrier', carrier FROM shipments WHERE carrier IS NOT NULL
UNION
SELECT 'carrier', carrier FROM shipment_legs WHERE carrier IS NOT NULL
ORDER BY kind, value
"""

FIND_SHIPMENT = """
SELECT shipment_id FROM shipments
WHERE shipment_id = %(shipment_id)s OR reference = %(reference)s
ORDER BY (shipment_id = %(shipment_id)s) DESC NULLS LAST
LIMIT 1
"""

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


def _params(offline_factor: float, **filters: Any) -> dict[str, Any]:
    """The summary's parameters: every filter off unless given."""
    off = dict.fromkeys(
        (
            "shipment_id",
            "status",
            "statuses",
            "condition",
            "pattern",
            "has_open_alerts",
            "lane",
            "carrier",
        )
    )
    return {**off, **filters, "offline_factor": offline_factor}


def list_shipments(
    *,
    conn: Conn,
    offline_factor: float,
    status: str | None = None,
    statuses: Sequence[str] | None = None,
    condition: str | None = None,
    q: str | None = None,
    has_open_alerts: bool | None = None,
    lane: str | None = None,
    carrier: str | None = None,
    sort: str = "attention",
    descending: bool = True,
    limit: int = 50,
    offset: int = 0,
) -> Page:
    """Shipments with their live picture, the ones that need action first.

    ``q`` searches reference, origin and destination (case-insensitive substring); ``statuses``
    keeps those in any of these states; ``lane`` is ``"origin → destination"`` exactly;
    ``carrier`` matches the shipment's carrier or any of its legs'. ``sort`` is ``attention``
    (the default order) or a key of :data:`SHIPMENT_SORTS`.
    """
    statement = LIST_SHIPMENTS_SORTED.get((sort, descending))
    if statement is None:
        known = ", ".join(["attention", *SHIPMENT_SORTS])
        raise ValueError(f"cannot sort shipments by {sort!r}: one of {known}")
    params = _params(
        offline_factor,
        status=status,
        statuses=None if statuses is None else list(statuses),
        condition=condition,
        pattern=_like_pattern(q),
        has_open_alerts=has_open_alerts,
        lane=lane,
        carrier=carrier,
        limit=limit,
        offset=offset,
    )
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
    with conn.cursor(row_factory=tuple_row, binary=True) as cur:
        return cur.execute(FLEET_OVERVIEW, _params(offline_factor), prepare=False).fetchall()


def fleet_filter_choices(*, conn: Conn) -> dict[str, list[str]]:
    """What the fleet's filters offer: ``{"lane": [...], "carrier": [...]}``, each sorted."""
    choices: dict[str, list[str]] = {"lane": [], "carrier": []}
    for row in conn.execute(FLEET_FILTER_CHOICES).fetchall():
        choices[row["kind"]].append(row["value"])
    return choices


def _shipment_row(row: Row) -> Row:
    """Shape a summary row the way the API shows it: ``id``, ``lane`` and a nested product."""
    out = {k: v for k, v in row.items() if k not in _PRIVATE_COLUMNS}
    out["id"] = row["shipment_id"]
    out["lane"] = f"{row['origin']} → {row['destination']}"
    # the shipment's carrier, then its legs' (each once, in leg order)
    out["carriers"] = list(
        dict.fromkeys(c for c in (row["carrier"], *(row["leg_carriers"] or ())) if c)
    )
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
_PRIVATE_COLUMNS = _PRODUCT_COLUMNS | {"total", "leg_carriers"}


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
    params = _params(offline_factor, shipment_id=shipment_id, limit=1, offset=0)
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
        detail["product"] = find_product(conn=conn, gtin=gtin)
    detail["legs"] = conn.execute(SELECT_LEGS, ids).fetchall()
    detail["devices"] = conn.execute(SELECT_SHIPMENT_DEVICES, ids).fetchall()
    detail["latest_reading"] = conn.execute(SELECT_LATEST_READING, ids).fetchone()
    detail["alerts"] = list_alerts(
        conn=conn, shipment_id=shipment_id, states=["open", "acknowledged"], limit=500
    ).items
    detail["units"] = conn.execute(SELECT_SHIPMENT_UNITS, ids).fetchall()
    return detail
