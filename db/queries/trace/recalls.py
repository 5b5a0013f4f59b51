"""Recall and impact (which units an excursion exposed, a lot's excursions), recalls recorded
(never edited) and listed, and the verification facts (where a unit was seen, uncommissioned
sightings).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from coldchain.errors import NotFoundError
from db.queries.trace.containment import DISPOSITION_COLUMNS, DISPOSITION_IN_FORCE, MAX_DEPTH
from db.types import Conn, Row

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
       {DISPOSITION_COLUMNS}
FROM (SELECT excursion_id, count(*) AS units_exposed FROM exposed GROUP BY excursion_id) x
JOIN excursions e ON e.excursion_id = x.excursion_id
JOIN shipments s ON s.shipment_id = e.shipment_id
{DISPOSITION_IN_FORCE}
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
