"""The simulated fleet's legs and packing, which no service registers yet (psycopg 3).

Everything else a fleet describes (products, sites, carriers, lanes, loggers, shipments with
their lots, logger attachments, the start of each trip) is registered through the same services
a person or an ERP uses (:func:`services.fleet.register_fleet`), so the demo proves that path.
What is left here has no service of its own: a shipment's planned **legs** (a booking has a
lane, not legs) and the serialised **units** with their **packing** (pallet SSCC, cases, SGTIN
items: in real operations they arrive as EPCIS events, :mod:`traceability.epcis_import`).

Legs, packing (``aggregations``) and shipment units of the fleet are replaced, and units upserted
by EPC, so running the same fleet twice leaves the same rows; rows of other fleets are never
touched. Written through temporary tables filled by COPY, then one set-based statement per
table, in the caller's transaction (and audit context), so 10,000 units take a second.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import psycopg

from simulator.fleet import Fleet

# --- named queries ----------------------------------------------------------------------------

CREATE_STAGING = (
    """
CREATE TEMP TABLE sim_legs (
    reference text, seq integer, mode text, origin text, destination text, carrier text,
    planned_departure timestamptz, planned_arrival timestamptz
) ON COMMIT DROP
""",
    """
CREATE TEMP TABLE sim_units (
    epc text, kind text, gtin char(14), serial text, sscc char(18), lot text, expiry date,
    commissioned_at timestamptz
) ON COMMIT DROP
""",
    """
CREATE TEMP TABLE sim_aggregations (
    parent_epc text, child_epc text, starts timestamptz, ends timestamptz
) ON COMMIT DROP
""",
    """
CREATE TEMP TABLE sim_shipment_units (
    reference text, epc text, starts timestamptz, ends timestamptz
) ON COMMIT DROP
""",
)

COPY_INTO = {
    "sim_legs": (
        "COPY sim_legs (reference, seq, mode, origin, destination, carrier, planned_departure, "
        "planned_arrival) FROM STDIN"
    ),
    "sim_units": (
        "COPY sim_units (epc, kind, gtin, serial, sscc, lot, expiry, commissioned_at) FROM STDIN"
    ),
    "sim_aggregations": "COPY sim_aggregations (parent_epc, child_epc, starts, ends) FROM STDIN",
    "sim_shipment_units": "COPY sim_shipment_units (reference, epc, starts, ends) FROM STDIN",
}

REPLACE_LEGS = (
    """
DELETE FROM shipment_legs l USING shipments sh
WHERE l.shipment_id = sh.shipment_id AND sh.reference IN (SELECT reference FROM sim_legs)
""",
    """
INSERT INTO shipment_legs (shipment_id, seq, mode, origin, destination, carrier,
                           planned_departure, planned_arrival)
SELECT sh.shipment_id, l.seq, l.mode, l.origin, l.destination, l.carrier,
       l.planned_departure, l.planned_arrival
FROM sim_legs l JOIN shipments sh USING (reference)
""",
)

UPSERT_UNITS = """
INSERT INTO units (epc, kind, gtin, serial, sscc, lot, expiry, commissioned_at)
SELECT epc, kind, gtin, serial, sscc, lot, expiry, commissioned_at FROM sim_units
ON CONFLICT (epc) DO UPDATE SET
    kind = EXCLUDED.kind, gtin = EXCLUDED.gtin, serial = EXCLUDED.serial, sscc = EXCLUDED.sscc,
    lot = EXCLUDED.lot, expiry = EXCLUDED.expiry, commissioned_at = EXCLUDED.commissioned_at
"""

REPLACE_AGGREGATIONS = (
    "DELETE FROM aggregations a USING sim_aggregations s WHERE a.child_epc = s.child_epc",
    """
INSERT INTO aggregations (parent_epc, child_epc, during)
SELECT parent_epc, child_epc, tstzrange(starts, ends, '[)') FROM sim_aggregations
""",
)

REPLACE_SHIPMENT_UNITS = (
    "DELETE FROM shipment_units u USING sim_shipment_units s WHERE u.epc = s.epc",
    """
INSERT INTO shipment_units (shipment_id, epc, during)
SELECT sh.shipment_id, s.epc, tstzrange(s.starts, s.ends, '[)')
FROM sim_shipment_units s JOIN shipments sh USING (reference)
""",
)


def _copy(cur: psycopg.Cursor[Any], table: str, rows: Iterable[Sequence[Any]]) -> None:
    with cur.copy(COPY_INTO[table]) as copy:
        for row in rows:
            copy.write_row(row)


def write_legs_and_packing(conn: psycopg.Connection[Any], fleet: Fleet) -> int:
    """Replace the fleet's legs, units, packing and shipment units (the shipments must be
    booked); returns the number of units. Runs in one transaction (the caller's, if any)."""
    with conn.transaction(), conn.cursor() as cur:
        for statement in CREATE_STAGING:
            cur.execute(statement)
        _copy(
            cur,
            "sim_legs",
            (
                (s.reference, g.seq, g.mode, g.origin, g.destination, g.carrier,
                 g.planned_departure, g.planned_arrival)
                for s in fleet.shipments
                for g in s.legs
            ),
        )  # fmt: skip
        _copy(
            cur,
            "sim_units",
            (
                (u.epc, u.kind, u.gtin, u.serial, u.sscc, u.lot, u.expiry, u.commissioned_at)
                for u in fleet.units
            ),
        )
        _copy(
            cur,
            "sim_aggregations",
            ((a.parent_epc, a.child_epc, a.start, a.end) for a in fleet.aggregations),
        )
        _copy(
            cur,
            "sim_shipment_units",
            ((u.shipment_reference, u.epc, u.start, u.end) for u in fleet.shipment_units),
        )
        for statement in (*REPLACE_LEGS, UPSERT_UNITS, *REPLACE_AGGREGATIONS,
                          *REPLACE_SHIPMENT_UNITS):  # fmt: skip
            cur.execute(statement)
    return len(fleet.units)
