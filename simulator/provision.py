"""The simulated fleet's planned legs, which no service registers yet (psycopg 3).

Everything else a fleet describes is registered through the services a person, an ERP or a
warehouse system uses (:func:`services.fleet.register_fleet`): products, sites, carriers, lanes,
loggers, shipments with their lots, logger attachments and the start of each trip; the
serialised units and their packing as an EPCIS document (:mod:`simulator.epcis`). What is left
here has no service of its own: a shipment's planned **legs** (a booking has a lane, not legs).

The fleet's legs are replaced, so running the same fleet twice leaves the same rows; legs of
other shipments are never touched. Written through a temporary table filled by COPY, then one
set-based statement, in the caller's transaction (and audit context).
"""

from __future__ import annotations

from typing import Any

import psycopg

from simulator.fleet import Fleet

# --- named queries ----------------------------------------------------------------------------

CREATE_STAGING = """
CREATE TEMP TABLE sim_legs (
    reference text, seq integer, mode text, origin text, destination text, carrier text,
    planned_departure timestamptz, planned_arrival timestamptz
) ON COMMIT DROP
"""
COPY_LEGS = (
    "COPY sim_legs (reference, seq, mode, origin, destination, carrier, planned_departure, "
    "planned_arrival) FROM STDIN"
)
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


def write_legs(conn: psycopg.Connection[Any], fleet: Fleet) -> int:
    """Replace the planned legs of the fleet's shipments (booked already); how many."""
    n = 0
    with conn.transaction(), conn.cursor() as cur:
        cur.execute(CREATE_STAGING)
        with cur.copy(COPY_LEGS) as copy:
            for s in fleet.shipments:
                for g in s.legs:
                    copy.write_row((s.reference, g.seq, g.mode, g.origin, g.destination,
                                    g.carrier, g.planned_departure, g.planned_arrival))  # fmt: skip
                    n += 1
        for statement in REPLACE_LEGS:
            cur.execute(statement)
    return n
