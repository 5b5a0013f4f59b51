"""Track and trace queries: units by key, containment paths, inherited readings, recall and
impact, EPCIS event storage and the custody rows derived from it, verification facts.

Keyword-only functions, parameterised SQL, dict rows (:data:`db.queries.web.Conn`), like
:mod:`db.queries.web`. Nothing here knows about HTTP, Dash or the CLI.

The containment walk
--------------------
A unit's history is the history of whatever it was in. ``aggregations`` gives child → parent
intervals, ``shipment_units`` which logistic unit rode in which shipment when, and
``device_assignments`` which logger watched that shipment when. One recursive CTE walks up from
the unit, intersecting the intervals on the way (``*`` on ``tstzrange``)::

    path:   (unit, (-inf, inf))  ->  (case, packed-in-case)  ->  (pallet, case-on-pallet * ...)
    rides:  path node in shipment_units, its interval * the ride's
    pieces: ride * the shipment's logger assignments  ->  (device, shipment, [from, to))

so each *piece* says: over [from, to) the unit inherits the readings of this logger, through
this chain of containers, in this shipment. Recall runs the same intersections the other way:
from the excursion's logger and time, down the packing tree from the shipment's logistic units.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from psycopg.types.json import Jsonb

from coldchain.errors import NotFoundError
from db.queries.web import Conn, Row

# --------------------------------------------------------------------------------------------
# Units by key (see traceability.identifiers for the matching rule)
# --------------------------------------------------------------------------------------------

UNITS_BY_KEY = """
SELECT u.epc, u.kind, u.gtin, u.serial, u.sscc
FROM unnest(%(gtins)s::char(14)[], %(serials)s::text[]) AS k(gtin, serial)
JOIN units u ON u.kind = 'sgtin' AND u.gtin = k.gtin AND u.serial = k.serial
UNION ALL
SELECT u.epc, u.kind, u.gtin, u.serial, u.sscc
FROM units u
WHERE u.kind = 'sscc' AND u.sscc = ANY(%(ssccs)s::char(18)[])
"""

SELECT_UNIT = """
SELECT u.epc, u.kind, u.gtin, u.serial, u.sscc, u.lot, u.expiry, u.commissioned_at,
       p.name AS product_name, p.temp_min_c, p.temp_max_c, p.freeze_limit_c, p.alarm_delay_s,
       p.stability_budget_s, p.mkt_delta_h_j_mol, p.mkt_limit_c
FROM units u
LEFT JOIN products p ON p.gtin = u.gtin
WHERE u.epc = %(epc)s
"""

SELECT_PRODUCT = """
SELECT gtin, name AS product_name, temp_min_c, temp_max_c, freeze_limit_c, alarm_delay_s,
       stability_budget_s, mkt_delta_h_j_mol, mkt_limit_c
FROM products WHERE gtin = %(gtin)s
"""


def units_by_key(
    *, conn: Conn, sgtins: Iterable[tuple[str, str]], ssccs: Iterable[str]
) -> dict[tuple[str, str], str]:
    """Stored EPCs by prefix-free key: ``(gtin, serial)`` or ``(sscc, "")``."""
    pairs = list(sgtins)
    rows = conn.execute(
        UNITS_BY_KEY,
        {
            "gtins": [g for g, _ in pairs],
            "serials": [s for _, s in pairs],
            "ssccs": list(ssccs),
        },
    ).fetchall()
    found: dict[tuple[str, str], str] = {}
    for r in rows:
        key = (r["gtin"], r["serial"]) if r["kind"] == "sgtin" else (r["sscc"], "")
        found[key] = r["epc"]
    return found


def get_unit(*, conn: Conn, epc: str) -> Row:
    """A unit with its product's stability profile (product columns None if unknown)."""
    row = conn.execute(SELECT_UNIT, {"epc": epc}).fetchone()
    if row is None:
        raise NotFoundError(f"unit {epc} is not known")
    return row


def get_product(*, conn: Conn, gtin: str) -> Row | None:
    """A product's stability profile, or None."""
    return conn.execute(SELECT_PRODUCT, {"gtin": gtin}).fetchone()


# --------------------------------------------------------------------------------------------
# Containment: path, rides, pieces
# --------------------------------------------------------------------------------------------

# Guard against a packing cycle in bad data (a parent inside its own child): the chain is kept
# and a node is never revisited; real trees are 2-4 levels deep.
MAX_DEPTH = 8

_PATH_CTE = f"""
path (seed, node, depth, chain, during) AS (
    SELECT u.epc, u.epc, 0, ARRAY[u.epc], '(,)'::tstzrange
    FROM units u
    WHERE u.epc = ANY(%(epcs)s::text[])
  UNION ALL
    SELECT p.seed, a.parent_epc, p.depth + 1, p.chain || a.parent_epc, p.during * a.during
    FROM path p
    JOIN aggregations a ON a.child_epc = p.node AND a.during && p.during
    WHERE p.depth < {MAX_DEPTH} AND a.parent_epc <> ALL(p.chain)
),
rides AS (
    SELECT p.seed, p.node, p.chain, su.shipment_id, p.during * su.during AS during,
           su.during AS rode
    FROM path p
    JOIN shipment_units su ON su.epc = p.node AND su.during && p.during
),
pieces AS (
    SELECT r.seed, r.node, r.chain, r.shipment_id, r.during AS ride, a.device_id,
           r.during * a.during AS piece
    FROM rides r
    JOIN device_assignments a ON a.shipment_id = r.shipment_id AND a.during && r.during
)
"""

#: Every container above the seeds, with when the seed was (transitively) inside it.
SELECT_PATH = f"""
WITH RECURSIVE {_PATH_CTE}
SELECT p.seed, p.node, p.depth, p.chain, lower(p.during) AS starts, upper(p.during) AS ends,
       u.kind
FROM path p JOIN units u ON u.epc = p.node
WHERE p.depth > 0
ORDER BY p.seed, lower(p.during) NULLS FIRST, p.depth
"""

#: Which node rode in which shipment when (custody), with the shipment's reference.
SELECT_RIDES = f"""
WITH RECURSIVE {_PATH_CTE}
SELECT r.seed, r.node, r.chain, r.shipment_id, s.reference AS shipment_reference,
       s.product_gtin, lower(r.during) AS starts, upper(r.during) AS ends,
       lower(r.rode) AS rode_from, upper(r.rode) AS rode_to
FROM rides r JOIN shipments s ON s.shipment_id = r.shipment_id
ORDER BY r.seed, lower(r.during) NULLS FIRST
"""

#: The (logger, time) pieces whose readings the seeds inherit.
SELECT_PIECES = f"""
WITH RECURSIVE {_PATH_CTE}
SELECT p.seed, p.node, p.chain, p.shipment_id, s.reference AS shipment_reference, p.device_id,
       d.interval_s, lower(p.piece) AS starts, upper(p.piece) AS ends
FROM pieces p
JOIN shipments s ON s.shipment_id = p.shipment_id
JOIN devices d ON d.device_id = p.device_id
ORDER BY p.seed, lower(p.piece) NULLS FIRST, p.device_id
"""

SELECT_LEGS = """
SELECT shipment_id, seq, mode, origin, destination, carrier, planned_departure, planned_arrival
FROM shipment_legs WHERE shipment_id = ANY(%(shipment_ids)s::bigint[])
ORDER BY shipment_id, seq
"""

# Readings of several (logger, [from, to)) windows. The ts bounds are written plainly (no OR on
# NULL) so the (device_id, ts) index and chunk exclusion serve each window.
SELECT_WINDOW_READINGS = """
SELECT r.device_id, r.ts, r.temp_c, r.rh, r.lat, r.lon
FROM unnest(%(devices)s::text[], %(starts)s::timestamptz[], %(ends)s::timestamptz[])
     AS w(device_id, starts, ends)
JOIN readings r
  ON r.device_id = w.device_id
 AND r.ts >= coalesce(w.starts, '-infinity') AND r.ts < coalesce(w.ends, 'infinity')
ORDER BY r.ts, r.device_id
"""

# QA clearance of excursion `e` for a unit of lot %(lot)s (NULL: a unit without a lot, such as
# an SSCC) comes from the signed dispositions of the excursion's shipment. Of the records in
# force (nobody superseded them), the whole-shipment one (lot NULL) and the one of that lot,
# the one signed last decides: a lot released after a whole-shipment quarantine is released,
# and a whole-shipment quarantine signed after a lot's release holds the lot again.
# `covers`: the disposition was signed on a report that held this excursion row (the row
# existed when it was signed, and by the as_of of the report signed). A row created later (late
# data superseded the one QA saw) is not covered, so a release does not clear it.
_DISPOSITION_IN_FORCE = """
LEFT JOIN LATERAL (
    SELECT d.disposition_id, d.lot, d.decision, d.signer_username, d.signed_at,
           (e.created_at <= d.signed_at AND e.created_at <= rs.as_of) AS covers
    FROM dispositions d
    JOIN report_snapshots rs ON rs.snapshot_id = d.snapshot_id
    WHERE d.shipment_id = e.shipment_id
      AND (d.lot IS NULL OR d.lot = %(lot)s::text)
      AND NOT EXISTS (SELECT 1 FROM dispositions n WHERE n.supersedes = d.disposition_id)
    ORDER BY d.signed_at DESC, d.disposition_id DESC
    LIMIT 1
) qa ON true
"""

_DISPOSITION_COLUMNS = """qa.decision AS review_disposition, qa.signer_username AS reviewed_by,
       qa.signed_at AS reviewed_at, qa.disposition_id, qa.lot AS disposition_lot,
       coalesce(qa.covers, false) AS review_covers"""

# The current excursions of (logger, shipment) pieces that overlap the piece, with the signed
# disposition that decides their clearance for the unit (its lot is %(lot)s).
SELECT_PIECE_EXCURSIONS = f"""
SELECT e.excursion_id AS id, e.shipment_id, s.reference AS shipment_reference, e.device_id,
       e.direction, e.start_ts, e.end_ts, e.last_out_ts, (e.end_ts IS NULL) AS open,
       e.min_c, e.max_c, e.degree_minutes, e.alarm, e.rule_key,
       min(greatest(lower(w.window), e.start_ts)) AS exposed_from,
       max(CASE WHEN upper(w.window) IS NULL THEN coalesce(e.end_ts, e.last_out_ts)
                ELSE least(upper(w.window), coalesce(e.end_ts, e.last_out_ts)) END)
           AS exposed_to,
       {_DISPOSITION_COLUMNS}
FROM unnest(%(devices)s::text[], %(shipment_ids)s::bigint[], %(starts)s::timestamptz[],
            %(ends)s::timestamptz[]) AS p(device_id, shipment_id, starts, ends)
CROSS JOIN LATERAL (SELECT tstzrange(p.starts, p.ends) AS window) w
JOIN excursions e
  ON e.device_id = p.device_id AND e.shipment_id = p.shipment_id AND e.superseded_at IS NULL
 AND excursion_exposure(e.start_ts, e.end_ts) && w.window
JOIN shipments s ON s.shipment_id = e.shipment_id
{_DISPOSITION_IN_FORCE}
GROUP BY e.excursion_id, s.reference, qa.disposition_id, qa.lot, qa.decision,
         qa.signer_username, qa.signed_at, qa.covers
ORDER BY e.start_ts, e.device_id
"""


def containment(*, conn: Conn, epcs: Sequence[str]) -> dict[str, list[Row]]:
    """For the seeds: ``path`` (containers and when), ``rides`` (shipments and when), ``pieces``
    (logger windows) and ``legs`` of the shipments ridden."""
    params = {"epcs": list(epcs)}
    rides = conn.execute(SELECT_RIDES, params).fetchall()
    shipment_ids = sorted({int(r["shipment_id"]) for r in rides})
    return {
        "path": conn.execute(SELECT_PATH, params).fetchall(),
        "rides": rides,
        "pieces": conn.execute(SELECT_PIECES, params).fetchall(),
        "legs": conn.execute(SELECT_LEGS, {"shipment_ids": shipment_ids}).fetchall()
        if shipment_ids
        else [],
    }


def window_readings(
    *, conn: Conn, windows: Sequence[tuple[str, datetime | None, datetime | None]]
) -> list[Row]:
    """Readings of each (device, from, to) window, oldest first; windows must not overlap per
    device (merge them first), or readings come back twice."""
    if not windows:
        return []
    return conn.execute(
        SELECT_WINDOW_READINGS,
        {
            "devices": [w[0] for w in windows],
            "starts": [w[1] for w in windows],
            "ends": [w[2] for w in windows],
        },
    ).fetchall()


def piece_excursions(
    *,
    conn: Conn,
    pieces: Sequence[tuple[str, int, datetime | None, datetime | None]],
    lot: str | None,
) -> list[Row]:
    """Current excursions overlapping (device, shipment, from, to) pieces, with when the unit
    was exposed and the signed disposition deciding their clearance for a unit of ``lot``."""
    if not pieces:
        return []
    return conn.execute(
        SELECT_PIECE_EXCURSIONS,
        {
            "devices": [p[0] for p in pieces],
            "shipment_ids": [p[1] for p in pieces],
            "starts": [p[2] for p in pieces],
            "ends": [p[3] for p in pieces],
            "lot": lot,
        },
    ).fetchall()


# --------------------------------------------------------------------------------------------
# Recall and impact
# --------------------------------------------------------------------------------------------

SELECT_EXCURSION = """
SELECT e.excursion_id AS id, e.shipment_id, s.reference AS shipment_reference, e.device_id,
       e.direction, e.start_ts, e.end_ts, e.last_out_ts, (e.end_ts IS NULL) AS open,
       e.min_c, e.max_c, e.degree_minutes, e.alarm, e.superseded_at
FROM excursions e JOIN shipments s ON s.shipment_id = e.shipment_id
WHERE e.excursion_id = %(excursion_id)s
"""

# From the excursion's logger window in its shipment, down the packing tree from every logistic
# unit that rode in the shipment then. A unit is exposed when it was (transitively) inside such a
# unit during the window; `exposed` is when (a multirange: it may have left and come back).
EXPOSED_UNITS = f"""
WITH RECURSIVE exposure AS (
    SELECT e.shipment_id, excursion_exposure(e.start_ts, e.end_ts) * a.during AS during
    FROM excursions e
    JOIN device_assignments a
      ON a.device_id = e.device_id AND a.shipment_id = e.shipment_id
     AND a.during && excursion_exposure(e.start_ts, e.end_ts)
    WHERE e.excursion_id = %(excursion_id)s
),
tree (epc, depth, chain, during) AS (
    SELECT su.epc, 0, ARRAY[su.epc], x.during * su.during
    FROM exposure x
    JOIN shipment_units su ON su.shipment_id = x.shipment_id AND su.during && x.during
  UNION ALL
    SELECT a.child_epc, t.depth + 1, t.chain || a.child_epc, t.during * a.during
    FROM tree t
    JOIN aggregations a ON a.parent_epc = t.epc AND a.during && t.during
    WHERE t.depth < {MAX_DEPTH} AND a.child_epc <> ALL(t.chain)
)
SELECT u.epc, u.kind, u.gtin, u.serial, u.sscc, u.lot, u.expiry,
       range_agg(t.during) AS exposed, min(lower(t.during)) AS exposed_from,
       max(upper(t.during)) AS exposed_to
FROM tree t JOIN units u ON u.epc = t.epc
GROUP BY u.epc
ORDER BY u.kind DESC, u.epc
"""

# Excursions of a lot. Walking up from each of the lot's (say 10,000) items would repeat the
# same case -> pallet -> shipment walk for every item of a case, so the walk starts from the
# distinct containers the items were in (a few hundred cases), and each item's memberships are
# joined back at the end (item in container over `inside`, container's logger pieces `piece`:
# the item's piece is `inside * piece`). Items riding in a shipment themselves count as their
# own container.
LOT_EXCURSIONS = f"""
WITH RECURSIVE seeds AS (
    SELECT epc FROM units WHERE gtin = %(gtin)s::char(14) AND lot = %(lot)s
),
inside (seed, container, during, own) AS (
    SELECT s.epc, s.epc, '(,)'::tstzrange, true FROM seeds s
  UNION ALL
    SELECT a.child_epc, a.parent_epc, a.during, false
    FROM aggregations a JOIN seeds s ON a.child_epc = s.epc
),
up (origin, node, depth, chain, during) AS (
    SELECT c.container, c.container, 0, ARRAY[c.container], '(,)'::tstzrange
    FROM (SELECT DISTINCT container FROM inside WHERE NOT own) c
  UNION ALL
    SELECT u.origin, a.parent_epc, u.depth + 1, u.chain || a.parent_epc, u.during * a.during
    FROM up u
    JOIN aggregations a ON a.child_epc = u.node AND a.during && u.during
    WHERE u.depth < {MAX_DEPTH} AND a.parent_epc <> ALL(u.chain)
),
reach (origin, node, during) AS (
    SELECT origin, node, during FROM up
  UNION ALL
    SELECT container, container, during FROM inside WHERE own  -- an item riding by itself
),
pieces AS (
    SELECT r.origin, su.shipment_id, d.device_id, r.during * su.during * d.during AS piece
    FROM reach r
    JOIN shipment_units su ON su.epc = r.node AND su.during && r.during
    JOIN device_assignments d
      ON d.shipment_id = su.shipment_id AND d.during && (r.during * su.during)
),
exposed AS (
    SELECT DISTINCT e.excursion_id, i.seed
    FROM inside i
    JOIN pieces p ON p.origin = i.container AND p.piece && i.during
    JOIN excursions e
      ON e.device_id = p.device_id AND e.shipment_id = p.shipment_id
     AND e.superseded_at IS NULL
     AND excursion_exposure(e.start_ts, e.end_ts) && (p.piece * i.during)
)
SELECT e.excursion_id AS id, e.shipment_id, s.reference AS shipment_reference, e.device_id,
       e.direction, e.start_ts, e.end_ts, e.last_out_ts, (e.end_ts IS NULL) AS open,
       e.min_c, e.max_c, e.degree_minutes, e.alarm,
       x.units_exposed,
       {_DISPOSITION_COLUMNS}
FROM (SELECT excursion_id, count(*) AS units_exposed FROM exposed GROUP BY excursion_id) x
JOIN excursions e ON e.excursion_id = x.excursion_id
JOIN shipments s ON s.shipment_id = e.shipment_id
{_DISPOSITION_IN_FORCE}
ORDER BY e.start_ts, e.device_id
"""

LOT_SIZE = """
SELECT count(*) AS n FROM units WHERE gtin = %(gtin)s::char(14) AND lot = %(lot)s
"""


def get_excursion(*, conn: Conn, excursion_id: int) -> Row:
    """One excursion row (also a superseded one); raises NotFoundError."""
    row = conn.execute(SELECT_EXCURSION, {"excursion_id": excursion_id}).fetchone()
    if row is None:
        raise NotFoundError(f"excursion {excursion_id} not found")
    return row


def exposed_units(*, conn: Conn, excursion_id: int) -> list[Row]:
    """Every unit (SSCCs and SGTINs) inside the excursion's shipment while its logger was out of
    range, with when; raises NotFoundError for an unknown excursion."""
    get_excursion(conn=conn, excursion_id=excursion_id)
    return conn.execute(EXPOSED_UNITS, {"excursion_id": excursion_id}).fetchall()


def lot_excursions(*, conn: Conn, gtin: str, lot: str) -> tuple[int, list[Row]]:
    """How many units the lot has, and every current excursion any of them was exposed to, with
    how many of the lot's units were and the signed disposition deciding its clearance."""
    size = conn.execute(LOT_SIZE, {"gtin": gtin, "lot": lot}).fetchone()
    n = int(size["n"]) if size else 0
    if n == 0:
        return 0, []
    return n, conn.execute(LOT_EXCURSIONS, {"gtin": gtin, "lot": lot}).fetchall()


# --------------------------------------------------------------------------------------------
# Verification facts
# --------------------------------------------------------------------------------------------

SELECT_RECALLS = """
SELECT recall_id, gtin, lot, reason, recalled_by, recalled_at FROM recalls
WHERE gtin = %(gtin)s::char(14) AND (lot IS NULL OR lot = %(lot)s)
ORDER BY recalled_at
"""

# Where a unit was seen: the events naming it, at the event's own GPS position, else at the
# known coordinates of its read point, else of its business location.
SELECT_OBSERVATIONS = """
SELECT x.epc, ev.event_key, ev.event_type, ev.biz_step, ev.event_time,
       coalesce(ev.read_point, ev.biz_location) AS place,
       CASE WHEN ev.lat IS NOT NULL THEN ev.lat WHEN rp.location_id IS NOT NULL THEN rp.lat
            ELSE bl.lat END AS lat,
       CASE WHEN ev.lat IS NOT NULL THEN ev.lon WHEN rp.location_id IS NOT NULL THEN rp.lon
            ELSE bl.lon END AS lon
FROM epcis_event_epcs x
JOIN epcis_events ev ON ev.event_key = x.event_key
LEFT JOIN locations rp ON rp.location_id = ev.read_point
LEFT JOIN locations bl ON bl.location_id = ev.biz_location
WHERE x.epc = ANY(%(epcs)s::text[])
ORDER BY x.epc, ev.event_time, ev.event_key
"""

# Units seen in events but never commissioned, or seen before their commissioning.
UNCOMMISSIONED_SIGHTINGS = """
SELECT u.epc, u.kind, u.commissioned_at, min(ev.event_time) AS first_seen, count(*) AS events
FROM epcis_event_epcs x
JOIN epcis_events ev ON ev.event_key = x.event_key
JOIN units u ON u.epc = x.epc
WHERE (u.commissioned_at IS NULL OR ev.event_time < u.commissioned_at)
  AND ev.event_time >= %(since)s
GROUP BY u.epc
ORDER BY first_seen
LIMIT %(limit)s
"""

RECENTLY_OBSERVED = """
SELECT DISTINCT x.epc
FROM epcis_events ev JOIN epcis_event_epcs x ON x.event_key = ev.event_key
WHERE ev.event_time >= %(since)s
LIMIT %(limit)s
"""


def recalls_for(*, conn: Conn, gtin: str | None, lot: str | None) -> list[Row]:
    """Recalls covering a GTIN and lot (whole-GTIN recalls included)."""
    if gtin is None:
        return []
    return conn.execute(SELECT_RECALLS, {"gtin": gtin, "lot": lot}).fetchall()


# --------------------------------------------------------------------------------------------
# Recalls: recorded (never edited) and listed
# --------------------------------------------------------------------------------------------

_RECALL_COLUMNS = """r.recall_id, r.gtin, r.lot, r.reason, r.recalled_by, r.recalled_at,
       p.name AS product_name,
       (SELECT count(*) FROM units u
        WHERE u.kind = 'sgtin' AND u.gtin = r.gtin AND (r.lot IS NULL OR u.lot = r.lot))
           AS units_on_record"""

INSERT_RECALL = f"""
WITH r AS (
    INSERT INTO recalls (gtin, lot, reason, recalled_by)
    VALUES (%(gtin)s, %(lot)s, %(reason)s, %(recalled_by)s)
    RETURNING *
)
SELECT {_RECALL_COLUMNS}
FROM r LEFT JOIN products p ON p.gtin = r.gtin
"""

# A filter on a lot also lists the GTIN's whole-product recalls: they cover that lot too.
LIST_RECALLS = f"""
SELECT {_RECALL_COLUMNS}
FROM recalls r LEFT JOIN products p ON p.gtin = r.gtin
WHERE (%(gtin)s::char(14) IS NULL OR r.gtin = %(gtin)s::char(14))
  AND (%(lot)s::text IS NULL OR r.lot IS NULL OR r.lot = %(lot)s::text)
ORDER BY r.recall_id
"""


def insert_recall(*, conn: Conn, gtin: str, lot: str | None, reason: str, recalled_by: str) -> Row:
    """Record a recall of a GTIN's lot (``lot`` None: every lot); returns it with its product's
    name and how many serialised items on record it covers."""
    row = conn.execute(
        INSERT_RECALL, {"gtin": gtin, "lot": lot, "reason": reason, "recalled_by": recalled_by}
    ).fetchone()
    assert row is not None
    return row


def list_recalls(*, conn: Conn, gtin: str | None = None, lot: str | None = None) -> list[Row]:
    """Recalls, oldest first; of one GTIN, and those covering one lot (whole-GTIN included)."""
    return conn.execute(LIST_RECALLS, {"gtin": gtin, "lot": lot}).fetchall()


def observations(*, conn: Conn, epcs: Sequence[str]) -> list[Row]:
    """EPCIS sightings of the units, oldest first per unit, with coordinates where known."""
    if not epcs:
        return []
    return conn.execute(SELECT_OBSERVATIONS, {"epcs": list(epcs)}).fetchall()


def uncommissioned_sightings(*, conn: Conn, since: datetime, limit: int = 500) -> list[Row]:
    """Units seen in EPCIS events since ``since`` that were never (or later) commissioned."""
    return conn.execute(UNCOMMISSIONED_SIGHTINGS, {"since": since, "limit": limit}).fetchall()


def recently_observed(*, conn: Conn, since: datetime, limit: int = 5000) -> list[str]:
    """EPCs named by EPCIS events since ``since``."""
    rows = conn.execute(RECENTLY_OBSERVED, {"since": since, "limit": limit}).fetchall()
    return [r["epc"] for r in rows]


# --------------------------------------------------------------------------------------------
# EPCIS import: events and the rows they imply (one transaction, driven by
# traceability.epcis_import)
# --------------------------------------------------------------------------------------------

# One import at a time (a transaction-scoped advisory lock; the key is arbitrary but fixed).
LOCK_IMPORTS = "SELECT pg_advisory_xact_lock(7414502)"

EXISTING_EVENTS = """
SELECT event_key, content_sha256 FROM epcis_events WHERE event_key = ANY(%(keys)s::text[])
"""

INSERT_IMPORT = """
INSERT INTO epcis_imports (source, document_id, document_sha256, n_events, n_new)
VALUES (%(source)s, %(document_id)s, %(document_sha256)s, %(n_events)s, %(n_new)s)
RETURNING import_id
"""

INSERT_UNIT = """
INSERT INTO units (epc, kind, gtin, serial, sscc, lot, expiry)
VALUES (%(epc)s, %(kind)s, %(gtin)s, %(serial)s, %(sscc)s, %(lot)s, %(expiry)s)
ON CONFLICT DO NOTHING
"""

# Commissioning: the earliest commissioning event wins; lot and expiry fill what is missing.
COMMISSION_UNIT = """
UPDATE units SET
    commissioned_at = least(coalesce(commissioned_at, %(at)s), %(at)s),
    lot = coalesce(lot, %(lot)s),
    expiry = coalesce(expiry, %(expiry)s)
WHERE epc = %(epc)s
"""

INSERT_EVENT = """
INSERT INTO epcis_events (event_key, event_id, content_sha256, event_type, action, biz_step,
                          disposition, event_time, tz_offset, read_point, biz_location,
                          parent_epc, lat, lon, body, import_id)
VALUES (%(event_key)s, %(event_id)s, %(content_sha256)s, %(event_type)s, %(action)s,
        %(biz_step)s, %(disposition)s, %(event_time)s, %(tz_offset)s, %(read_point)s,
        %(biz_location)s, %(parent_epc)s, %(lat)s, %(lon)s, %(body)s, %(import_id)s)
"""

INSERT_EVENT_EPC = """
INSERT INTO epcis_event_epcs (event_key, role, epc) VALUES (%s, %s, %s) ON CONFLICT DO NOTHING
"""

# Children inside a parent at a time (for a DELETE that names no children: "unpack all").
CHILDREN_AT = """
SELECT child_epc FROM aggregations WHERE parent_epc = %(parent)s AND during @> %(at)s::timestamptz
"""

# Every packing event of these children, as stored (including the ones just inserted).
PACKING_EVENTS = """
SELECT x.epc AS child, ev.parent_epc AS parent, ev.action, ev.event_time, ev.event_key
FROM epcis_event_epcs x
JOIN epcis_events ev ON ev.event_key = x.event_key
WHERE x.role = 'child' AND x.epc = ANY(%(children)s::text[])
  AND ev.event_type = 'AggregationEvent' AND ev.action IN ('ADD', 'DELETE')
ORDER BY x.epc, ev.event_time, ev.event_key
"""

# A packing event ends the provisioned (non-EPCIS) membership the child is in at that moment:
# a DELETE unpacks it, an ADD into another parent moves it.
CLOSE_PROVISIONED_PACKING = """
UPDATE aggregations SET during = tstzrange(lower(during), %(at)s::timestamptz)
WHERE child_epc = %(child)s AND event_key IS NULL AND during @> %(at)s::timestamptz
  AND (lower(during) IS NULL OR lower(during) < %(at)s::timestamptz)
  AND (%(parent)s::text IS NULL OR parent_epc = %(parent)s)
"""

DELETE_EVENT_PACKING = """
DELETE FROM aggregations WHERE child_epc = ANY(%(children)s::text[]) AND event_key IS NOT NULL
"""

INSERT_PACKING = """
INSERT INTO aggregations (parent_epc, child_epc, during, event_key)
VALUES (%s, %s, tstzrange(%s, %s), %s)
"""

SHIPMENTS_BY_REFERENCE = """
SELECT shipment_id, reference FROM shipments WHERE reference = ANY(%(references)s::text[])
"""

# Every shipping/receiving event of these units, as stored, with the shipment it names.
CUSTODY_EVENTS = """
SELECT x.epc, ev.biz_step, ev.event_time, ev.event_key, ev.body
FROM epcis_event_epcs x
JOIN epcis_events ev ON ev.event_key = x.event_key
WHERE x.epc = ANY(%(epcs)s::text[]) AND ev.biz_step IN ('shipping', 'receiving')
  AND x.role IN ('epc', 'parent')
ORDER BY x.epc, ev.event_time, ev.event_key
"""

CLOSE_PROVISIONED_CUSTODY = """
UPDATE shipment_units SET during = tstzrange(lower(during), %(at)s::timestamptz)
WHERE epc = %(epc)s AND event_key IS NULL AND during @> %(at)s::timestamptz
  AND (lower(during) IS NULL OR lower(during) < %(at)s::timestamptz)
"""

DELETE_EVENT_CUSTODY = """
DELETE FROM shipment_units WHERE epc = ANY(%(epcs)s::text[]) AND event_key IS NOT NULL
"""

INSERT_CUSTODY = """
INSERT INTO shipment_units (shipment_id, epc, during, event_key)
VALUES (%s, %s, tstzrange(%s, %s), %s)
"""


def lock_imports(*, conn: Conn) -> None:
    """Wait for any other EPCIS import to commit; held until this transaction ends."""
    conn.execute(LOCK_IMPORTS)


def existing_events(*, conn: Conn, keys: Sequence[str]) -> dict[str, str]:
    """Content hashes of the events already stored, by event key."""
    rows = conn.execute(EXISTING_EVENTS, {"keys": list(keys)}).fetchall()
    return {r["event_key"]: r["content_sha256"] for r in rows}


def insert_import(
    *,
    conn: Conn,
    source: str,
    document_id: str | None,
    document_sha256: str,
    n_events: int,
    n_new: int,
) -> int:
    """Log one import; returns its id."""
    row = conn.execute(
        INSERT_IMPORT,
        {
            "source": source,
            "document_id": document_id,
            "document_sha256": document_sha256,
            "n_events": n_events,
            "n_new": n_new,
        },
    ).fetchone()
    assert row is not None
    return int(row["import_id"])


def insert_units(*, conn: Conn, units: Sequence[dict[str, Any]]) -> int:
    """Insert units that are not stored yet (by EPC or by key); returns how many were new."""
    with conn.cursor() as cur:
        cur.executemany(INSERT_UNIT, units, returning=False)
        return max(cur.rowcount, 0) if units else 0


def commission_units(*, conn: Conn, rows: Sequence[dict[str, Any]]) -> None:
    """Record commissioning times (earliest wins) and lot/expiry where missing."""
    if rows:
        with conn.cursor() as cur:
            cur.executemany(COMMISSION_UNIT, rows)


def insert_events(
    *, conn: Conn, events: Sequence[dict[str, Any]], epcs: Sequence[tuple[str, str, str]]
) -> None:
    """Store events (``body`` as JSON) and the units each names, by role."""
    with conn.cursor() as cur:
        cur.executemany(INSERT_EVENT, [{**e, "body": Jsonb(e["body"])} for e in events])
        if epcs:
            cur.executemany(INSERT_EVENT_EPC, epcs)


def children_at(*, conn: Conn, parent: str, at: datetime) -> list[str]:
    """Children inside ``parent`` at ``at``."""
    rows = conn.execute(CHILDREN_AT, {"parent": parent, "at": at}).fetchall()
    return [r["child_epc"] for r in rows]


def packing_events(*, conn: Conn, children: Sequence[str]) -> list[Row]:
    """Stored ADD/DELETE aggregation events naming these children, in time order per child."""
    return conn.execute(PACKING_EVENTS, {"children": list(children)}).fetchall()


def replace_event_packing(
    *,
    conn: Conn,
    children: Sequence[str],
    closings: Sequence[tuple[str, datetime, str | None]],
    intervals: Sequence[tuple[str, str, datetime, datetime | None, str]],
) -> None:
    """End provisioned memberships at ``closings`` (child, at, parent or None for any parent),
    then replace the event-derived rows of ``children`` by ``intervals`` (parent, child, from,
    to, event_key).

    Raises psycopg's ExclusionViolation when the result puts a child in two parents at once.
    """
    with conn.cursor() as cur:
        if closings:
            cur.executemany(
                CLOSE_PROVISIONED_PACKING,
                [{"child": c, "at": at, "parent": parent} for c, at, parent in closings],
            )
        cur.execute(DELETE_EVENT_PACKING, {"children": list(children)})
        if intervals:
            cur.executemany(INSERT_PACKING, intervals)


def shipments_by_reference(*, conn: Conn, references: Iterable[str]) -> dict[str, int]:
    """Shipment ids of the references that exist."""
    rows = conn.execute(SHIPMENTS_BY_REFERENCE, {"references": sorted(set(references))}).fetchall()
    return {r["reference"]: int(r["shipment_id"]) for r in rows}


def custody_events(*, conn: Conn, epcs: Sequence[str]) -> list[Row]:
    """Stored shipping/receiving events naming these units, in time order per unit."""
    return conn.execute(CUSTODY_EVENTS, {"epcs": list(epcs)}).fetchall()


def replace_event_custody(
    *,
    conn: Conn,
    epcs: Sequence[str],
    closings: Sequence[tuple[str, datetime]],
    intervals: Sequence[tuple[int, str, datetime, datetime | None, str]],
) -> None:
    """End provisioned rides at ``closings`` (epc, at), then replace the event-derived rides of
    ``epcs`` by ``intervals`` (shipment_id, epc, from, to, event_key)."""
    with conn.cursor() as cur:
        if closings:
            cur.executemany(CLOSE_PROVISIONED_CUSTODY, [{"epc": e, "at": at} for e, at in closings])
        cur.execute(DELETE_EVENT_CUSTODY, {"epcs": list(epcs)})
        if intervals:
            cur.executemany(INSERT_CUSTODY, intervals)


# --------------------------------------------------------------------------------------------
# EPCIS export
# --------------------------------------------------------------------------------------------

SELECT_SHIPMENT = """
SELECT shipment_id, reference, origin, destination, product_gtin, status
FROM shipments WHERE shipment_id = %(shipment_id)s
"""

# The shipment's logistic units and when they rode.
SHIPMENT_RIDES = """
SELECT su.epc, lower(su.during) AS starts, upper(su.during) AS ends, su.event_key
FROM shipment_units su WHERE su.shipment_id = %(shipment_id)s
ORDER BY lower(su.during), su.epc
"""

# Packing below the shipment's logistic units while they rode (the whole tree, every level).
SHIPMENT_PACKING = f"""
WITH RECURSIVE tree (epc, parent, depth, chain, during, packed) AS (
    SELECT su.epc, NULL::text, 0, ARRAY[su.epc], su.during, su.during
    FROM shipment_units su WHERE su.shipment_id = %(shipment_id)s
  UNION ALL
    SELECT a.child_epc, a.parent_epc, t.depth + 1, t.chain || a.child_epc, t.during * a.during,
           a.during
    FROM tree t
    JOIN aggregations a ON a.parent_epc = t.epc AND a.during && t.during
    WHERE t.depth < {MAX_DEPTH} AND a.child_epc <> ALL(t.chain)
)
SELECT DISTINCT parent AS parent_epc, epc AS child_epc, lower(packed) AS starts,
       upper(packed) AS ends
FROM tree
WHERE depth > 0
ORDER BY starts NULLS FIRST, parent_epc, child_epc
"""

# The raw packing rows along one unit's path (every level above it), for its EPCIS export.
UNIT_PACKING = f"""
WITH RECURSIVE path (node, depth, chain, during, packed, child) AS (
    SELECT u.epc, 0, ARRAY[u.epc], '(,)'::tstzrange, NULL::tstzrange, NULL::text
    FROM units u WHERE u.epc = %(epc)s
  UNION ALL
    SELECT a.parent_epc, p.depth + 1, p.chain || a.parent_epc, p.during * a.during, a.during,
           a.child_epc
    FROM path p
    JOIN aggregations a ON a.child_epc = p.node AND a.during && p.during
    WHERE p.depth < {MAX_DEPTH} AND a.parent_epc <> ALL(p.chain)
)
SELECT DISTINCT node AS parent_epc, child AS child_epc, lower(packed) AS starts,
       upper(packed) AS ends
FROM path
WHERE depth > 0
ORDER BY starts NULLS FIRST, parent_epc, child_epc
"""

SHIPMENT_WINDOWS = """
SELECT device_id, lower(during) AS starts, upper(during) AS ends
FROM device_assignments WHERE shipment_id = %(shipment_id)s
ORDER BY lower(during), device_id
"""

# Per logger window and time bucket: temperature and humidity min/max/mean, the last position.
WINDOW_BUCKETS = """
SELECT r.device_id,
       time_bucket(make_interval(secs => %(bucket_s)s), r.ts) AS bucket,
       min(r.ts) AS first_ts, max(r.ts) AS last_ts, count(*) AS n,
       min(r.temp_c) AS temp_min, max(r.temp_c) AS temp_max, avg(r.temp_c) AS temp_mean,
       min(r.rh) AS rh_min, max(r.rh) AS rh_max, avg(r.rh) AS rh_mean,
       last(r.lat, r.ts) FILTER (WHERE r.lat IS NOT NULL) AS lat,
       last(r.lon, r.ts) FILTER (WHERE r.lon IS NOT NULL) AS lon
FROM unnest(%(devices)s::text[], %(starts)s::timestamptz[], %(ends)s::timestamptz[])
     AS w(device_id, starts, ends)
JOIN readings r
  ON r.device_id = w.device_id
 AND r.ts >= coalesce(w.starts, '-infinity') AND r.ts < coalesce(w.ends, 'infinity')
GROUP BY r.device_id, bucket
ORDER BY bucket, r.device_id
"""

SHIPMENT_EXCURSIONS = """
SELECT excursion_id AS id, device_id, direction, start_ts, end_ts, last_out_ts, min_c, max_c,
       thresholds
FROM excursions WHERE shipment_id = %(shipment_id)s AND superseded_at IS NULL
ORDER BY start_ts, device_id
"""


def get_shipment(*, conn: Conn, shipment_id: int) -> Row:
    """A shipment's identity; raises NotFoundError."""
    row = conn.execute(SELECT_SHIPMENT, {"shipment_id": shipment_id}).fetchone()
    if row is None:
        raise NotFoundError(f"shipment {shipment_id} not found")
    return row


def shipment_rides(*, conn: Conn, shipment_id: int) -> list[Row]:
    """The logistic units that rode in the shipment, and when."""
    return conn.execute(SHIPMENT_RIDES, {"shipment_id": shipment_id}).fetchall()


def shipment_packing(*, conn: Conn, shipment_id: int) -> list[Row]:
    """Every packing interval below the shipment's logistic units (overlapping their ride)."""
    return conn.execute(SHIPMENT_PACKING, {"shipment_id": shipment_id}).fetchall()


def unit_packing(*, conn: Conn, epc: str) -> list[Row]:
    """The packing rows along a unit's path, every level above it."""
    return conn.execute(UNIT_PACKING, {"epc": epc}).fetchall()


def shipment_windows(*, conn: Conn, shipment_id: int) -> list[Row]:
    """The shipment's logger assignments."""
    return conn.execute(SHIPMENT_WINDOWS, {"shipment_id": shipment_id}).fetchall()


def shipment_excursions(*, conn: Conn, shipment_id: int) -> list[Row]:
    """The shipment's current excursions."""
    return conn.execute(SHIPMENT_EXCURSIONS, {"shipment_id": shipment_id}).fetchall()


def window_buckets(
    *,
    conn: Conn,
    windows: Sequence[tuple[str, datetime | None, datetime | None]],
    bucket_s: int,
) -> list[Row]:
    """Per (device window, time bucket) summary of the readings (see WINDOW_BUCKETS)."""
    if not windows:
        return []
    return conn.execute(
        WINDOW_BUCKETS,
        {
            "devices": [w[0] for w in windows],
            "starts": [w[1] for w in windows],
            "ends": [w[2] for w in windows],
            "bucket_s": bucket_s,
        },
    ).fetchall()
