"""Booking a shipment: create and update it with its external references, items on board,
planned legs, serialised units and loggers (``db/migrations/0011_shipment_lifecycle.sql``).

Keyword-only functions taking ``conn``, parameterised SQL, dict rows. The caller
(:mod:`services.bookings`) owns the transaction and the audit context; these only read and write.
An update names the version it read: none of its rows change when that version is no longer the
stored one (the caller then reports a stale version).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from db.queries.shipments import SELECT_LEGS
from db.types import Conn, Row

_SHIPMENT_COLUMNS = """
s.shipment_id, s.reference, s.status, s.version, s.product_gtin, s.origin, s.destination,
s.planned_departure, s.planned_arrival, s.carrier, s.lane_id, s.carrier_id,
s.started_at, s.arrived_at, s.created_at, s.create_key, s.create_hash
"""

SELECT_BOOKING = f"SELECT {_SHIPMENT_COLUMNS} FROM shipments s WHERE s.shipment_id = %(id)s"
LOCK_BOOKING = SELECT_BOOKING + " FOR UPDATE"

FIND_BY_CREATE_KEY = f"SELECT {_SHIPMENT_COLUMNS} FROM shipments s WHERE s.create_key = %(key)s"
FIND_BY_REFERENCE = f"SELECT {_SHIPMENT_COLUMNS} FROM shipments s WHERE s.reference = %(ref)s"
FIND_BY_EXTERNAL = f"""
SELECT {_SHIPMENT_COLUMNS}, r.kind AS matched_kind, r.value AS matched_value
FROM shipment_references r JOIN shipments s USING (shipment_id)
WHERE (r.kind, r.value) IN (SELECT * FROM unnest(%(kinds)s::text[], %(values)s::text[]))
ORDER BY s.shipment_id
"""

INSERT_SHIPMENT = f"""
INSERT INTO shipments AS s (reference, product_gtin, origin, destination, planned_departure,
                            planned_arrival, carrier, lane_id, carrier_id, create_key, create_hash)
VALUES (%(reference)s, %(product_gtin)s, %(origin)s, %(destination)s, %(planned_departure)s,
        %(planned_arrival)s, %(carrier)s, %(lane_id)s, %(carrier_id)s, %(create_key)s,
        %(create_hash)s)
RETURNING {_SHIPMENT_COLUMNS}
"""

#: The columns an update may set (besides version, which it bumps).
UPDATABLE = ("planned_departure", "planned_arrival", "carrier", "carrier_id", "lane_id")

UPDATE_SHIPMENT = f"""
UPDATE shipments AS s SET
    planned_departure = CASE WHEN %(set_planned_departure)s THEN %(planned_departure)s
                             ELSE s.planned_departure END,
    planned_arrival = CASE WHEN %(set_planned_arrival)s THEN %(planned_arrival)s
                           ELSE s.planned_arrival END,
    carrier = CASE WHEN %(set_carrier)s THEN %(carrier)s ELSE s.carrier END,
    carrier_id = CASE WHEN %(set_carrier_id)s THEN %(carrier_id)s ELSE s.carrier_id END,
    lane_id = CASE WHEN %(set_lane_id)s THEN %(lane_id)s ELSE s.lane_id END,
    version = s.version + 1
WHERE s.shipment_id = %(id)s AND s.version = %(version)s
RETURNING {_SHIPMENT_COLUMNS}
"""

INSERT_REFERENCES = """
INSERT INTO shipment_references (shipment_id, kind, value)
SELECT %(id)s, k, v FROM unnest(%(kinds)s::text[], %(values)s::text[]) AS x(k, v)
"""
DELETE_REFERENCE = """
DELETE FROM shipment_references
WHERE shipment_id = %(id)s AND kind = %(kind)s AND value = %(value)s
RETURNING kind
"""
SELECT_REFERENCES = """
SELECT kind, value FROM shipment_references WHERE shipment_id = %(id)s ORDER BY kind, value
"""

INSERT_ITEMS = """
INSERT INTO shipment_items (shipment_id, gtin, lot, quantity)
SELECT %(id)s, g, l, q FROM unnest(%(gtins)s::text[], %(lots)s::text[], %(quantities)s::int[])
    AS x(g, l, q)
"""
UPSERT_ITEM = """
INSERT INTO shipment_items (shipment_id, gtin, lot, quantity)
VALUES (%(id)s, %(gtin)s, %(lot)s, %(quantity)s)
ON CONFLICT (shipment_id, gtin, lot) DO UPDATE SET quantity = excluded.quantity
"""
DELETE_ITEM = """
DELETE FROM shipment_items WHERE shipment_id = %(id)s AND gtin = %(gtin)s AND lot = %(lot)s
RETURNING gtin
"""
SELECT_ITEMS = """
SELECT i.gtin, p.name AS product_name, i.lot, i.quantity
FROM shipment_items i JOIN products p USING (gtin)
WHERE i.shipment_id = %(id)s ORDER BY i.gtin, i.lot
"""

# A product usable for a new shipment: known and not retired.
SELECT_USABLE_PRODUCTS = """
SELECT gtin, retired_at FROM products WHERE gtin = ANY(%(gtins)s::text[])
"""
SELECT_LANE = """
SELECT l.lane_id, l.code, l.mode, l.retired_at, o.name AS origin, d.name AS destination,
       o.retired_at AS origin_retired_at, d.retired_at AS destination_retired_at
FROM lanes l
JOIN locations o ON o.location_id = l.origin_location_id
JOIN locations d ON d.location_id = l.destination_location_id
WHERE l.lane_id = %(lane_id)s
"""
# ---- planned legs (shipment_legs, 0001; audited by 0006's triggers): replaced as a whole ------

DELETE_LEGS = "DELETE FROM shipment_legs WHERE shipment_id = %(id)s"
INSERT_LEG = """
INSERT INTO shipment_legs (shipment_id, seq, mode, origin, destination, carrier,
                           planned_departure, planned_arrival)
VALUES (%(id)s, %(seq)s, %(mode)s, %(origin)s, %(destination)s, %(carrier)s,
        %(planned_departure)s, %(planned_arrival)s)
"""

SELECT_CARRIER = "SELECT carrier_id, name, retired_at FROM carriers WHERE carrier_id = %(id)s"

# ---- units (the unit row may exist from EPCIS; a scan adds it if not) -------------------------

FIND_UNIT = """
SELECT epc FROM units
WHERE (%(kind)s = 'sscc' AND sscc = %(sscc)s)
   OR (%(kind)s = 'sgtin' AND gtin = %(gtin)s AND serial = %(serial)s)
"""
INSERT_UNIT = """
INSERT INTO units (epc, kind, gtin, serial, sscc, lot, expiry)
VALUES (%(epc)s, %(kind)s, %(gtin)s, %(serial)s, %(sscc)s, %(lot)s, %(expiry)s)
"""
# Open-ended from now: unloading closes it (or the next shipment's EPCIS event).
ADD_UNIT = """
INSERT INTO shipment_units (shipment_id, epc, during)
VALUES (%(id)s, %(epc)s, tstzrange(%(at)s, NULL))
"""
UNIT_ELSEWHERE = """
SELECT s.shipment_id, s.reference FROM shipment_units su JOIN shipments s USING (shipment_id)
WHERE su.epc = %(epc)s AND su.during @> %(at)s::timestamptz
"""

# ---- loggers ---------------------------------------------------------------------------------

SELECT_DEVICE_FOR_ATTACH = """
SELECT device_id, calibration_cert, calibration_due, retired_at FROM devices
WHERE device_id = %(device_id)s
"""
DEVICE_RIDES_IN = """
SELECT s.shipment_id, s.reference, lower(a.during) AS assigned_from
FROM device_assignments a JOIN shipments s USING (shipment_id)
WHERE a.device_id = %(device_id)s AND a.during && tstzrange(%(at)s, NULL)
ORDER BY lower(a.during) LIMIT 1
"""
ATTACH = """
INSERT INTO device_assignments (device_id, shipment_id, during)
VALUES (%(device_id)s, %(id)s, tstzrange(%(at)s, NULL))
RETURNING assignment_id, device_id, lower(during) AS assigned_from
"""
# The open assignment of the logger in this shipment ends at ``at`` (a range ending where it
# starts would be empty: a logger attached by mistake is detached a moment later instead).
DETACH = """
UPDATE device_assignments SET during = tstzrange(lower(during), %(at)s)
WHERE shipment_id = %(id)s AND device_id = %(device_id)s AND upper_inf(during)
  AND lower(during) < %(at)s
RETURNING assignment_id, device_id, lower(during) AS assigned_from, upper(during) AS assigned_to
"""
SELECT_ASSIGNMENTS = """
SELECT a.device_id, d.calibration_due, lower(a.during) AS assigned_from,
       upper(a.during) AS assigned_to, upper_inf(a.during) AS attached
FROM device_assignments a JOIN devices d USING (device_id)
WHERE a.shipment_id = %(id)s ORDER BY lower(a.during), a.device_id
"""


TAKEN_REFERENCES = "SELECT reference FROM shipments WHERE reference = ANY(%(refs)s::text[])"
# The shipments each logger rides in from ``at`` on (its assignments overlapping [at, ∞)).
RIDES_FROM = """
SELECT device_id, shipment_id FROM device_assignments
WHERE device_id = ANY(%(ids)s::text[]) AND during && tstzrange(%(at)s, NULL)
"""
SHIPMENT_STATES = """
SELECT reference, shipment_id, status FROM shipments WHERE reference = ANY(%(refs)s::text[])
"""

# Bulk booking (imports): the shipments in one statement, the rest by COPY.
INSERT_SHIPMENTS = """
INSERT INTO shipments (reference, product_gtin, origin, destination, planned_departure,
                       planned_arrival, carrier, lane_id, carrier_id, create_hash)
SELECT * FROM unnest(%(reference)s::text[], %(product_gtin)s::char(14)[], %(origin)s::text[],
                     %(destination)s::text[], %(planned_departure)s::timestamptz[],
                     %(planned_arrival)s::timestamptz[], %(carrier)s::text[],
                     %(lane_id)s::bigint[], %(carrier_id)s::bigint[], %(create_hash)s::text[])
RETURNING shipment_id, reference
"""
COPY_REFERENCES = "COPY shipment_references (shipment_id, kind, value) FROM STDIN"
COPY_ITEMS = "COPY shipment_items (shipment_id, gtin, lot, quantity) FROM STDIN"


def taken_references(*, conn: Conn, references: Sequence[str]) -> set[str]:
    """Which of these shipment references are booked already."""
    rows = conn.execute(TAKEN_REFERENCES, {"refs": list(references)}).fetchall()
    return {r["reference"] for r in rows}


def states_by_reference(*, conn: Conn, references: Sequence[str]) -> dict[str, Row]:
    """The id and status of each of these shipments that is booked, by reference."""
    rows = conn.execute(SHIPMENT_STATES, {"refs": list(references)}).fetchall()
    return {r["reference"]: r for r in rows}


def rides_from(*, conn: Conn, device_ids: Sequence[str], at: datetime) -> dict[str, set[int]]:
    """The shipments each of these loggers rides in from ``at`` on, by logger."""
    out: dict[str, set[int]] = {}
    for r in conn.execute(RIDES_FROM, {"ids": list(device_ids), "at": at}):
        out.setdefault(r["device_id"], set()).add(int(r["shipment_id"]))
    return out


def insert_shipments(*, conn: Conn, rows: Sequence[dict[str, Any]]) -> dict[str, int]:
    """Insert planned shipments (dicts with the columns of INSERT_SHIPMENTS); reference → id."""
    columns = ("reference", "product_gtin", "origin", "destination", "planned_departure",
               "planned_arrival", "carrier", "lane_id", "carrier_id", "create_hash")  # fmt: skip
    params = {c: [r[c] for r in rows] for c in columns}
    return {r["reference"]: int(r["shipment_id"]) for r in conn.execute(INSERT_SHIPMENTS, params)}


def copy_references(*, conn: Conn, rows: Sequence[tuple[int, str, str]]) -> None:
    """Bulk-add (shipment_id, kind, value) external references."""
    with conn.cursor().copy(COPY_REFERENCES) as copy:
        for row in rows:
            copy.write_row(row)


def copy_items(*, conn: Conn, rows: Sequence[tuple[int, str, str, int]]) -> None:
    """Bulk-add (shipment_id, gtin, lot, quantity) items."""
    with conn.cursor().copy(COPY_ITEMS) as copy:
        for row in rows:
            copy.write_row(row)


def booking(*, conn: Conn, shipment_id: int, lock: bool = False) -> Row | None:
    """The shipment's booking row (``lock``: FOR UPDATE, inside the caller's transaction)."""
    return conn.execute(LOCK_BOOKING if lock else SELECT_BOOKING, {"id": shipment_id}).fetchone()


def by_create_key(*, conn: Conn, key: str) -> Row | None:
    """The shipment created under this Idempotency-Key, if any."""
    return conn.execute(FIND_BY_CREATE_KEY, {"key": key}).fetchone()


def by_reference(*, conn: Conn, reference: str) -> Row | None:
    """The shipment with this (own) reference, if any."""
    return conn.execute(FIND_BY_REFERENCE, {"ref": reference}).fetchone()


def by_external(*, conn: Conn, refs: Sequence[tuple[str, str]]) -> list[Row]:
    """The shipments holding any of these (kind, value) external references."""
    if not refs:
        return []
    params = {"kinds": [k for k, _ in refs], "values": [v for _, v in refs]}
    return conn.execute(FIND_BY_EXTERNAL, params).fetchall()


def insert_shipment(*, conn: Conn, values: dict[str, Any]) -> Row:
    """Insert a planned shipment; returns its booking row."""
    row = conn.execute(INSERT_SHIPMENT, values).fetchone()
    assert row is not None
    return row


def update_shipment(
    *, conn: Conn, shipment_id: int, version: int, changes: dict[str, Any]
) -> Row | None:
    """Apply ``changes`` (keys of :data:`UPDATABLE`) if the shipment is still at ``version``;
    None when it is not (or does not exist)."""
    params: dict[str, Any] = {"id": shipment_id, "version": version}
    for column in UPDATABLE:
        params[f"set_{column}"] = column in changes
        params[column] = changes.get(column)
    return conn.execute(UPDATE_SHIPMENT, params).fetchone()


def add_references(*, conn: Conn, shipment_id: int, refs: Sequence[tuple[str, str]]) -> None:
    """Add external references (the caller checked that none is taken)."""
    if refs:
        conn.execute(
            INSERT_REFERENCES,
            {"id": shipment_id, "kinds": [k for k, _ in refs], "values": [v for _, v in refs]},
        )


def remove_reference(*, conn: Conn, shipment_id: int, kind: str, value: str) -> bool:
    """Remove one external reference of the shipment; False if it had none such."""
    params = {"id": shipment_id, "kind": kind, "value": value}
    return conn.execute(DELETE_REFERENCE, params).fetchone() is not None


def references(*, conn: Conn, shipment_id: int) -> list[Row]:
    """The shipment's external references."""
    return conn.execute(SELECT_REFERENCES, {"id": shipment_id}).fetchall()


def add_items(*, conn: Conn, shipment_id: int, items: Sequence[tuple[str, str, int]]) -> None:
    """Put (gtin, lot, quantity) on board, all at once."""
    if items:
        conn.execute(
            INSERT_ITEMS,
            {
                "id": shipment_id,
                "gtins": [g for g, _, _ in items],
                "lots": [lot for _, lot, _ in items],
                "quantities": [q for _, _, q in items],
            },
        )


def set_item(*, conn: Conn, shipment_id: int, gtin: str, lot: str, quantity: int) -> None:
    """Put a product lot on board, or change its quantity."""
    params = {"id": shipment_id, "gtin": gtin, "lot": lot, "quantity": quantity}
    conn.execute(UPSERT_ITEM, params)


def remove_item(*, conn: Conn, shipment_id: int, gtin: str, lot: str) -> bool:
    """Take a product lot off the shipment; False if it was not on board."""
    params = {"id": shipment_id, "gtin": gtin, "lot": lot}
    return conn.execute(DELETE_ITEM, params).fetchone() is not None


def items(*, conn: Conn, shipment_id: int) -> list[Row]:
    """The product lots on board with their quantities."""
    return conn.execute(SELECT_ITEMS, {"id": shipment_id}).fetchall()


def products_by_gtin(*, conn: Conn, gtins: Sequence[str]) -> dict[str, Row]:
    """The known products among ``gtins``, with their retirement."""
    rows = conn.execute(SELECT_USABLE_PRODUCTS, {"gtins": list(gtins)}).fetchall()
    return {r["gtin"]: r for r in rows}


def lane(*, conn: Conn, lane_id: int) -> Row | None:
    """A lane with its origin and destination names and whether any of them is retired."""
    return conn.execute(SELECT_LANE, {"lane_id": lane_id}).fetchone()


def carrier(*, conn: Conn, carrier_id: int) -> Row | None:
    """A carrier, with its retirement."""
    return conn.execute(SELECT_CARRIER, {"id": carrier_id}).fetchone()


def find_unit(*, conn: Conn, key: dict[str, Any]) -> str | None:
    """The stored EPC of a unit by its prefix-free key (``kind``, ``sscc``, ``gtin``, ``serial``)."""
    row = conn.execute(FIND_UNIT, key).fetchone()
    return None if row is None else str(row["epc"])


def insert_unit(*, conn: Conn, unit: dict[str, Any]) -> None:
    """Register a unit seen for the first time (by a scan)."""
    conn.execute(INSERT_UNIT, unit)


def unit_elsewhere(*, conn: Conn, epc: str, at: datetime) -> Row | None:
    """The shipment a unit is on board at ``at``, if any."""
    return conn.execute(UNIT_ELSEWHERE, {"epc": epc, "at": at}).fetchone()


def add_unit(*, conn: Conn, shipment_id: int, epc: str, at: datetime) -> None:
    """Put a unit on board from ``at``."""
    conn.execute(ADD_UNIT, {"id": shipment_id, "epc": epc, "at": at})


def device_for_attach(*, conn: Conn, device_id: str) -> Row | None:
    """A logger's calibration and retirement."""
    return conn.execute(SELECT_DEVICE_FOR_ATTACH, {"device_id": device_id}).fetchone()


def device_rides_in(*, conn: Conn, device_id: str, at: datetime) -> Row | None:
    """The shipment the logger is assigned to at or after ``at``, if any."""
    return conn.execute(DEVICE_RIDES_IN, {"device_id": device_id, "at": at}).fetchone()


def attach(*, conn: Conn, shipment_id: int, device_id: str, at: datetime) -> Row:
    """Open an assignment of the logger to the shipment from ``at``."""
    row = conn.execute(ATTACH, {"id": shipment_id, "device_id": device_id, "at": at}).fetchone()
    assert row is not None
    return row


def detach(*, conn: Conn, shipment_id: int, device_id: str, at: datetime) -> Row | None:
    """Close the logger's open assignment in the shipment at ``at``; None if it had none."""
    params = {"id": shipment_id, "device_id": device_id, "at": at}
    return conn.execute(DETACH, params).fetchone()


def assignments(*, conn: Conn, shipment_id: int) -> list[Row]:
    """Every assignment of the shipment, past and present (a swap shows both)."""
    return conn.execute(SELECT_ASSIGNMENTS, {"id": shipment_id}).fetchall()


def legs(*, conn: Conn, shipment_id: int) -> list[Row]:
    """The shipment's planned legs, in order."""
    return conn.execute(SELECT_LEGS, {"shipment_id": shipment_id}).fetchall()


def replace_legs(*, conn: Conn, shipment_id: int, legs: Sequence[dict[str, Any]]) -> None:
    """Set the shipment's planned legs to ``legs`` (each with its ``seq``), the old ones gone."""
    conn.execute(DELETE_LEGS, {"id": shipment_id})
    if legs:
        with conn.cursor() as cur:
            cur.executemany(INSERT_LEG, [{"id": shipment_id, **leg} for leg in legs])


# Planned legs of many shipments at once, by reference (a registered fleet: services.fleet):
# each named shipment's legs are replaced; legs of other shipments are never touched. Through a
# temporary table filled by COPY, then one set-based statement each.
STAGE_FLEET_LEGS = """
CREATE TEMP TABLE sim_legs (
    reference text, seq integer, mode text, origin text, destination text, carrier text,
    planned_departure timestamptz, planned_arrival timestamptz
) ON COMMIT DROP
"""
COPY_FLEET_LEGS = (
    "COPY sim_legs (reference, seq, mode, origin, destination, carrier, planned_departure, "
    "planned_arrival) FROM STDIN"
)
REPLACE_FLEET_LEGS = (
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
FLEET_LEG_COLUMNS = (
    "reference",
    "seq",
    "mode",
    "origin",
    "destination",
    "carrier",
    "planned_departure",
    "planned_arrival",
)


def replace_legs_by_reference(*, conn: Conn, rows: Iterable[Sequence[Any]]) -> int:
    """Set the planned legs of the shipments the rows name (``FLEET_LEG_COLUMNS`` each, in the
    caller's transaction and audit context); the number of legs written."""
    n = 0
    with conn.transaction(), conn.cursor() as cur:
        cur.execute(STAGE_FLEET_LEGS)
        with cur.copy(COPY_FLEET_LEGS) as copy:
            for row in rows:
                copy.write_row(row)
                n += 1
        for statement in REPLACE_FLEET_LEGS:
            cur.execute(statement)
    return n
