"""EPCIS import: events and the rows they imply (units, commissioning, packing and custody),
written in one transaction driven by :mod:`traceability.epcis_import`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from psycopg.types.json import Jsonb

from db.types import Conn, Row

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
