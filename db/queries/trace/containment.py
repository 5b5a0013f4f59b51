"""Units by key and the containment walk: path, rides, pieces, their readings and excursions.

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

from coldchain.errors import NotFoundError
from db.types import Conn, Row

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
DISPOSITION_IN_FORCE = """
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

DISPOSITION_COLUMNS = """qa.decision AS review_disposition, qa.signer_username AS reviewed_by,
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
       {DISPOSITION_COLUMNS}
FROM unnest(%(devices)s::text[], %(shipment_ids)s::bigint[], %(starts)s::timestamptz[],
            %(ends)s::timestamptz[]) AS p(device_id, shipment_id, starts, ends)
CROSS JOIN LATERAL (SELECT tstzrange(p.starts, p.ends) AS window) w
JOIN excursions e
  ON e.device_id = p.device_id AND e.shipment_id = p.shipment_id AND e.superseded_at IS NULL
 AND excursion_exposure(e.start_ts, e.end_ts) && w.window
JOIN shipments s ON s.shipment_id = e.shipment_id
{DISPOSITION_IN_FORCE}
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
