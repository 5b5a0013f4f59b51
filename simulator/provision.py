"""Write a simulated fleet into the database (psycopg 3), idempotently.

Products, devices, shipments and units are upserted by their natural keys (GTIN, device id,
shipment reference, EPC). A shipment's legs are replaced, and so are the fleet's packing
(aggregations) and shipment units: running the same scenario with the same start twice leaves the
same rows. A logger's assignment to its shipment is widened to cover a new run, so running the
scenario again later keeps the readings of the earlier run in their shipment. Rows of other fleets
are never touched; if one of them holds a logger at the same time, the exclusion constraint
refuses the run and nothing is written.

Everything goes through temporary tables filled by COPY, then one set-based statement per table,
in a single transaction, so 10,000 loggers provision in seconds.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg

from simulator.fleet import Fleet

log = logging.getLogger(__name__)

# --- named queries ----------------------------------------------------------------------------

UPSERT_PRODUCT = """
INSERT INTO products (gtin, name, temp_min_c, temp_max_c, freeze_limit_c, alarm_delay_s,
                      stability_budget_s, mkt_delta_h_j_mol, mkt_limit_c)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (gtin) DO UPDATE SET
    name = EXCLUDED.name, temp_min_c = EXCLUDED.temp_min_c, temp_max_c = EXCLUDED.temp_max_c,
    freeze_limit_c = EXCLUDED.freeze_limit_c, alarm_delay_s = EXCLUDED.alarm_delay_s,
    stability_budget_s = EXCLUDED.stability_budget_s,
    mkt_delta_h_j_mol = EXCLUDED.mkt_delta_h_j_mol, mkt_limit_c = EXCLUDED.mkt_limit_c
"""

CREATE_STAGING = (
    """
CREATE TEMP TABLE sim_devices (
    device_id text, model text, calibration_cert text, calibration_due date, interval_s integer
) ON COMMIT DROP
""",
    """
CREATE TEMP TABLE sim_shipments (
    reference text, product_gtin char(14), origin text, destination text,
    planned_departure timestamptz, planned_arrival timestamptz, carrier text
) ON COMMIT DROP
""",
    """
CREATE TEMP TABLE sim_legs (
    reference text, seq integer, mode text, origin text, destination text, carrier text,
    planned_departure timestamptz, planned_arrival timestamptz
) ON COMMIT DROP
""",
    """
CREATE TEMP TABLE sim_assignments (
    device_id text, reference text, starts timestamptz, ends timestamptz
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
    "sim_devices": "COPY sim_devices (device_id, model, calibration_cert, calibration_due, interval_s) FROM STDIN",
    "sim_shipments": (
        "COPY sim_shipments (reference, product_gtin, origin, destination, planned_departure, "
        "planned_arrival, carrier) FROM STDIN"
    ),
    "sim_legs": (
        "COPY sim_legs (reference, seq, mode, origin, destination, carrier, planned_departure, "
        "planned_arrival) FROM STDIN"
    ),
    "sim_assignments": "COPY sim_assignments (device_id, reference, starts, ends) FROM STDIN",
    "sim_units": (
        "COPY sim_units (epc, kind, gtin, serial, sscc, lot, expiry, commissioned_at) FROM STDIN"
    ),
    "sim_aggregations": "COPY sim_aggregations (parent_epc, child_epc, starts, ends) FROM STDIN",
    "sim_shipment_units": "COPY sim_shipment_units (reference, epc, starts, ends) FROM STDIN",
}

UPSERT_DEVICES = """
INSERT INTO devices (device_id, model, calibration_cert, calibration_due, interval_s)
SELECT device_id, model, calibration_cert, calibration_due, interval_s FROM sim_devices
ON CONFLICT (device_id) DO UPDATE SET
    model = EXCLUDED.model, calibration_cert = EXCLUDED.calibration_cert,
    calibration_due = EXCLUDED.calibration_due, interval_s = EXCLUDED.interval_s
"""

UPSERT_SHIPMENTS = """
INSERT INTO shipments (reference, product_gtin, origin, destination, planned_departure,
                       planned_arrival, status, carrier)
SELECT reference, product_gtin, origin, destination, planned_departure, planned_arrival,
       'in_transit', carrier
FROM sim_shipments
ON CONFLICT (reference) DO UPDATE SET
    product_gtin = EXCLUDED.product_gtin, origin = EXCLUDED.origin,
    destination = EXCLUDED.destination, planned_departure = EXCLUDED.planned_departure,
    planned_arrival = EXCLUDED.planned_arrival, status = EXCLUDED.status,
    carrier = EXCLUDED.carrier
"""

REPLACE_LEGS = (
    """
DELETE FROM shipment_legs l USING sim_shipments s JOIN shipments sh USING (reference)
WHERE l.shipment_id = sh.shipment_id
""",
    """
INSERT INTO shipment_legs (shipment_id, seq, mode, origin, destination, carrier,
                           planned_departure, planned_arrival)
SELECT sh.shipment_id, l.seq, l.mode, l.origin, l.destination, l.carrier,
       l.planned_departure, l.planned_arrival
FROM sim_legs l JOIN shipments sh USING (reference)
""",
)

# A logger's assignment to its own shipment is kept and widened to cover the new run, so the
# readings of an earlier run of the same fleet still belong to their shipment (running the demo
# again keeps its history). Its assignments to *other* shipments of the same fleet that overlap
# the new interval go (the logger moved).
REPLACE_ASSIGNMENTS = (
    """
CREATE TEMP TABLE sim_previous ON COMMIT DROP AS
SELECT a.device_id, sh.reference, lower(a.during) AS starts, upper(a.during) AS ends
FROM device_assignments a
JOIN shipments sh ON sh.shipment_id = a.shipment_id
JOIN sim_assignments s ON s.device_id = a.device_id AND s.reference = sh.reference
""",
    """
DELETE FROM device_assignments a
USING sim_assignments s JOIN shipments sh USING (reference)
WHERE a.device_id = s.device_id
  AND (a.shipment_id = sh.shipment_id
       OR (a.during && tstzrange(s.starts, s.ends, '[)')
           AND a.shipment_id IN (SELECT shipment_id FROM shipments WHERE reference LIKE %(prefix)s)))
""",
    """
INSERT INTO device_assignments (device_id, shipment_id, during)
SELECT s.device_id, sh.shipment_id,
       tstzrange(least(s.starts, min(p.starts)), greatest(s.ends, max(p.ends)), '[)')
FROM sim_assignments s
JOIN shipments sh USING (reference)
LEFT JOIN sim_previous p ON p.device_id = s.device_id AND p.reference = s.reference
GROUP BY s.device_id, sh.shipment_id, s.starts, s.ends
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

SHIPMENT_IDS = "SELECT reference, shipment_id FROM shipments WHERE reference = ANY(%s)"


@dataclass(frozen=True)
class ProvisionResult:
    """What was written, and the database ids of the fleet's shipments."""

    products: int
    devices: int
    shipments: int
    legs: int
    assignments: int
    units: int
    aggregations: int
    shipment_units: int
    shipment_ids: dict[str, int]


async def _copy(cur: psycopg.AsyncCursor[Any], table: str, rows: Iterable[Sequence[Any]]) -> None:
    async with cur.copy(COPY_INTO[table]) as copy:
        for row in rows:
            await copy.write_row(row)


async def provision_fleet(dsn: str, fleet: Fleet) -> ProvisionResult:
    """Upsert the fleet's products, loggers, shipments, legs, assignments and units."""
    prefix = fleet.scenario.fleet.id_prefix
    legs = [(s.reference, leg) for s in fleet.shipments for leg in s.legs]
    async with (
        await psycopg.AsyncConnection.connect(dsn) as conn,
        conn.transaction(),
        conn.cursor() as cur,
    ):
        await cur.executemany(
            UPSERT_PRODUCT,
            [
                (
                    p.gtin,
                    p.name,
                    p.temp_min_c,
                    p.temp_max_c,
                    p.freeze_limit_c,
                    p.alarm_delay_s,
                    p.stability_budget_s,
                    p.mkt_delta_h_j_mol,
                    p.mkt_limit_c,
                )
                for p in fleet.products
            ],
        )
        for statement in CREATE_STAGING:
            await cur.execute(statement)
        await _copy(
            cur,
            "sim_devices",
            (
                (d.device_id, d.model, d.calibration_cert, d.calibration_due, d.interval_s)
                for d in fleet.devices
            ),
        )
        await _copy(
            cur,
            "sim_shipments",
            (
                (
                    s.reference,
                    s.product_gtin,
                    s.origin,
                    s.destination,
                    s.planned_departure,
                    s.planned_arrival,
                    s.carrier,
                )
                for s in fleet.shipments
            ),
        )
        await _copy(
            cur,
            "sim_legs",
            (
                (
                    ref,
                    g.seq,
                    g.mode,
                    g.origin,
                    g.destination,
                    g.carrier,
                    g.planned_departure,
                    g.planned_arrival,
                )
                for ref, g in legs
            ),
        )
        await _copy(
            cur,
            "sim_assignments",
            ((a.device_id, a.shipment_reference, a.start, a.end) for a in fleet.assignments),
        )
        await _copy(
            cur,
            "sim_units",
            (
                (u.epc, u.kind, u.gtin, u.serial, u.sscc, u.lot, u.expiry, u.commissioned_at)
                for u in fleet.units
            ),
        )
        await _copy(
            cur,
            "sim_aggregations",
            ((a.parent_epc, a.child_epc, a.start, a.end) for a in fleet.aggregations),
        )
        await _copy(
            cur,
            "sim_shipment_units",
            ((u.shipment_reference, u.epc, u.start, u.end) for u in fleet.shipment_units),
        )
        await cur.execute(UPSERT_DEVICES)
        await cur.execute(UPSERT_SHIPMENTS)
        for statement in REPLACE_LEGS:
            await cur.execute(statement)
        remember, delete_assignments, insert_assignments = REPLACE_ASSIGNMENTS
        await cur.execute(remember)
        await cur.execute(delete_assignments, {"prefix": f"{prefix}-SHP-%"})
        await cur.execute(insert_assignments)
        await cur.execute(UPSERT_UNITS)
        for statement in (*REPLACE_AGGREGATIONS, *REPLACE_SHIPMENT_UNITS):
            await cur.execute(statement)
        await cur.execute(SHIPMENT_IDS, ([s.reference for s in fleet.shipments],))
        ids = {ref: sid for ref, sid in await cur.fetchall()}
    result = ProvisionResult(
        products=len(fleet.products),
        devices=len(fleet.devices),
        shipments=len(fleet.shipments),
        legs=len(legs),
        assignments=len(fleet.assignments),
        units=len(fleet.units),
        aggregations=len(fleet.aggregations),
        shipment_units=len(fleet.shipment_units),
        shipment_ids=ids,
    )
    log.info(
        "provisioned %d shipments, %d loggers, %d units",
        result.shipments,
        result.devices,
        result.units,
    )
    return result
