"""What the default answerer (:mod:`services.ask_default`) reads that no other consumer does:
the names a question may use, identifiers resolved to what they name, and shipments,
excursions and signed decisions matching a question's filters, counted.

Keyword-only functions taking ``conn``, parameterised SQL, dict rows. Read only. A shipment's
*time* for a range ("shipments last week") is when it left: ``started_at``, else its planned
departure, else its booking; an excursion's is its own span (it counts in a range it overlaps);
a decision's is its signature.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from db.types import Conn, Row

VOCABULARY = """
SELECT 'site' AS kind, name AS value, NULL AS gtin FROM locations
WHERE gln IS NOT NULL AND retired_at IS NULL
UNION SELECT 'site', origin, NULL FROM shipments
UNION SELECT 'site', destination, NULL FROM shipments
UNION SELECT 'carrier', name, NULL FROM carriers WHERE retired_at IS NULL
UNION SELECT 'carrier', carrier, NULL FROM shipments WHERE carrier IS NOT NULL
UNION SELECT 'carrier', carrier, NULL FROM shipment_legs WHERE carrier IS NOT NULL
UNION SELECT 'product', name, gtin FROM products WHERE retired_at IS NULL
UNION SELECT 'lane', code, NULL FROM lanes WHERE retired_at IS NULL
ORDER BY 1, 2
"""

# Each key, compared in upper case, against shipment references, external references and
# logger serials.
RESOLVE_KEYS = """
SELECT 'shipment' AS kind, upper(s.reference) AS key, s.reference, NULL AS ref_kind,
       NULL AS ref_value
FROM shipments s WHERE upper(s.reference) = ANY(%(keys)s::text[])
UNION ALL
SELECT 'external', upper(x.value), s.reference, x.kind, x.value
FROM shipment_references x JOIN shipments s ON s.shipment_id = x.shipment_id
WHERE upper(x.value) = ANY(%(keys)s::text[])
UNION ALL
SELECT 'logger', upper(d.device_id), d.device_id, NULL, NULL
FROM devices d WHERE upper(d.device_id) = ANY(%(keys)s::text[])
"""

# What a reference that names nothing might have meant: the 50 references and external
# references sharing the longest beginning with it (the caller ranks them by similarity). The
# prefix is measured with left() over the lengths given, so 5,000 references cost a few ms and
# the caller ranks 50 instead of all.
NEAR_REFERENCES = """
WITH refs AS (
    SELECT reference AS value FROM shipments
    UNION
    SELECT value FROM shipment_references
)
SELECT value,
       (SELECT max(n) FROM unnest(%(lengths)s::int[]) n
        WHERE upper(left(value, n)) = upper(left(%(key)s, n))) AS common
FROM refs
WHERE upper(left(value, 2)) = upper(left(%(key)s, 2))
ORDER BY common DESC, value
LIMIT 50
"""

# The filters of a question on shipments (``s``): each off when its parameter is NULL.
_SHIPMENT_FILTERS = """
      (%(origin)s::text IS NULL OR lower(s.origin) = lower(%(origin)s))
  AND (%(destination)s::text IS NULL OR lower(s.destination) = lower(%(destination)s))
  AND (%(place)s::text IS NULL OR lower(s.origin) = lower(%(place)s)
       OR lower(s.destination) = lower(%(place)s))
  AND (%(carrier)s::text IS NULL OR lower(s.carrier) = lower(%(carrier)s)
       OR EXISTS (SELECT 1 FROM shipment_legs l
                  WHERE l.shipment_id = s.shipment_id AND lower(l.carrier) = lower(%(carrier)s)))
  AND (%(gtin)s::text IS NULL OR s.product_gtin = %(gtin)s
       OR EXISTS (SELECT 1 FROM shipment_items i
                  WHERE i.shipment_id = s.shipment_id AND i.gtin = %(gtin)s))
  AND (%(lane)s::text IS NULL OR s.lane_id = (SELECT lane_id FROM lanes WHERE code = %(lane)s))
  AND (%(statuses)s::text[] IS NULL OR s.status = ANY(%(statuses)s::text[]))
"""

FIND_SHIPMENTS = f"""
SELECT s.reference, s.origin, s.destination, s.status, s.carrier,
       coalesce(s.started_at, s.planned_departure, s.created_at) AS departed,
       count(*) OVER () AS total
FROM shipments s
WHERE {_SHIPMENT_FILTERS}
  AND (%(since)s::timestamptz IS NULL
       OR coalesce(s.started_at, s.planned_departure, s.created_at) >= %(since)s)
  AND (%(until)s::timestamptz IS NULL
       OR coalesce(s.started_at, s.planned_departure, s.created_at) < %(until)s)
ORDER BY departed DESC, s.reference
LIMIT %(limit)s
"""

FIND_EXCURSIONS = f"""
WITH matching AS (
    SELECT e.excursion_id, e.shipment_id, e.start_ts, e.end_ts, e.direction,
           CASE e.direction WHEN 'high' THEN e.max_c ELSE e.min_c END AS peak_c,
           e.degree_minutes
    FROM excursions e JOIN shipments s ON s.shipment_id = e.shipment_id
    WHERE e.superseded_at IS NULL
      AND {_SHIPMENT_FILTERS}
      AND (%(since)s::timestamptz IS NULL OR coalesce(e.end_ts, 'infinity') >= %(since)s)
      AND (%(until)s::timestamptz IS NULL OR e.start_ts < %(until)s)
)
SELECT s.reference, s.origin, s.destination, count(*) AS excursions,
       max(m.degree_minutes) AS worst_degree_minutes, bool_or(m.end_ts IS NULL) AS open,
       min(m.start_ts) AS first_start,
       (SELECT count(*) FROM matching) AS total_excursions,
       count(*) OVER () AS total_shipments
FROM matching m JOIN shipments s ON s.shipment_id = m.shipment_id
GROUP BY s.reference, s.origin, s.destination
ORDER BY excursions DESC, worst_degree_minutes DESC, s.reference
LIMIT %(limit)s
"""

# Signed decisions in a range (superseded ones included: each was signed), newest first.
FIND_DECISIONS = """
SELECT s.reference, d.lot, d.decision, d.signer_name, d.signer_role, d.signed_at,
       d.supersedes IS NOT NULL AS supersedes, count(*) OVER () AS total
FROM dispositions d JOIN shipments s ON s.shipment_id = d.shipment_id
WHERE (%(decisions)s::text[] IS NULL OR d.decision = ANY(%(decisions)s::text[]))
  AND (%(since)s::timestamptz IS NULL OR d.signed_at >= %(since)s)
  AND (%(until)s::timestamptz IS NULL OR d.signed_at < %(until)s)
ORDER BY d.signed_at DESC, d.disposition_id DESC
LIMIT %(limit)s
"""

# The shipments that carried a unit: itself, or inside any unit it was ever packed in.
UNIT_SHIPMENTS = """
WITH RECURSIVE up (epc) AS (
    SELECT %(epc)s::text
    UNION
    SELECT a.parent_epc FROM aggregations a JOIN up ON a.child_epc = up.epc
)
SELECT s.reference, s.status, s.origin, s.destination, su.epc AS via,
       lower(su.during) AS on_board_from, upper(su.during) AS on_board_to
FROM up JOIN shipment_units su ON su.epc = up.epc
JOIN shipments s ON s.shipment_id = su.shipment_id
ORDER BY lower(su.during) DESC NULLS LAST, s.reference
"""

# The shipments that carried a lot: booked as an item, or as serialised units of it.
LOT_SHIPMENTS = """
SELECT s.reference, s.status, s.origin, s.destination, i.lot, sum(i.quantity) AS quantity
FROM shipment_items i JOIN shipments s ON s.shipment_id = i.shipment_id
WHERE upper(i.lot) = upper(%(lot)s) AND (%(gtin)s::text IS NULL OR i.gtin = %(gtin)s)
GROUP BY s.reference, s.status, s.origin, s.destination, i.lot
UNION
SELECT DISTINCT s.reference, s.status, s.origin, s.destination, u.lot, NULL::bigint
FROM units u JOIN shipment_units su ON su.epc = u.epc
JOIN shipments s ON s.shipment_id = su.shipment_id
WHERE upper(u.lot) = upper(%(lot)s) AND (%(gtin)s::text IS NULL OR u.gtin = %(gtin)s)
  AND NOT EXISTS (SELECT 1 FROM shipment_items i WHERE i.shipment_id = s.shipment_id
                  AND upper(i.lot) = upper(%(lot)s))
ORDER BY 1
"""


@dataclass(frozen=True, slots=True)
class Filters:
    """A question's filters on shipments (None: not filtered)."""

    origin: str | None = None
    destination: str | None = None
    place: str | None = None
    carrier: str | None = None
    gtin: str | None = None
    lane: str | None = None
    statuses: Sequence[str] | None = None
    since: datetime | None = None
    until: datetime | None = None

    def params(self) -> dict[str, Any]:
        return {
            "origin": self.origin,
            "destination": self.destination,
            "place": self.place,
            "carrier": self.carrier,
            "gtin": self.gtin,
            "lane": self.lane,
            "statuses": list(self.statuses) if self.statuses else None,
            "since": self.since,
            "until": self.until,
        }


def vocabulary(*, conn: Conn) -> list[Row]:
    """Every site, carrier, product (with its GTIN) and lane code a question may name."""
    return conn.execute(VOCABULARY).fetchall()


def resolve_keys(*, conn: Conn, keys: Sequence[str]) -> list[Row]:
    """What each key names (upper-cased): a shipment, an external reference, a logger."""
    return conn.execute(RESOLVE_KEYS, {"keys": [k.upper() for k in keys]}).fetchall()


def near_references(*, conn: Conn, key: str) -> list[str]:
    """The 50 references and external references that begin most like ``key`` (at least its
    first two characters)."""
    params = {"key": key, "lengths": list(range(2, len(key) + 1))}
    return [r["value"] for r in conn.execute(NEAR_REFERENCES, params).fetchall()]


def find_shipments(*, conn: Conn, filters: Filters, limit: int = 10) -> tuple[int, list[Row]]:
    """How many shipments match, and the latest ``limit`` of them."""
    rows = conn.execute(FIND_SHIPMENTS, {**filters.params(), "limit": limit}).fetchall()
    return (int(rows[0]["total"]) if rows else 0), rows


def find_excursions(*, conn: Conn, filters: Filters, limit: int = 10) -> tuple[int, int, list[Row]]:
    """How many excursions match, in how many shipments, and the ``limit`` shipments with the
    most."""
    rows = conn.execute(FIND_EXCURSIONS, {**filters.params(), "limit": limit}).fetchall()
    if not rows:
        return 0, 0, []
    return int(rows[0]["total_excursions"]), int(rows[0]["total_shipments"]), rows


def find_decisions(
    *,
    conn: Conn,
    decisions: Sequence[str] | None,
    since: datetime | None,
    until: datetime | None,
    limit: int = 10,
) -> tuple[int, list[Row]]:
    """How many decisions were signed in the range, and the newest ``limit``."""
    params = {
        "decisions": list(decisions) if decisions else None,
        "since": since,
        "until": until,
        "limit": limit,
    }
    rows = conn.execute(FIND_DECISIONS, params).fetchall()
    return (int(rows[0]["total"]) if rows else 0), rows


def unit_shipments(*, conn: Conn, epc: str) -> list[Row]:
    """The shipments that carried the unit (itself or a unit it was packed in), newest first."""
    return conn.execute(UNIT_SHIPMENTS, {"epc": epc}).fetchall()


def lot_shipments(*, conn: Conn, lot: str, gtin: str | None) -> list[Row]:
    """The shipments that carried the lot (of ``gtin``, or of any product; the lot compared
    in upper case, returned as stored)."""
    return conn.execute(LOT_SHIPMENTS, {"lot": lot, "gtin": gtin}).fetchall()
