"""Locations (sites), carriers and lanes (migration 0010): reads, and the writes of
:mod:`services.locations` (create, change at the version read, retire). ``locations`` is also
0005's table of EPCIS read points; a site registered as master data has a GLN.

Table and column names in the SQL below come from :data:`TABLES` only, never from a caller."""

from __future__ import annotations

from typing import Any, Final

from db.types import Conn, Row

#: Per table: its key column and the columns a record is created or changed with.
TABLES: Final[dict[str, tuple[str, tuple[str, ...]]]] = {
    "locations": (
        "location_id",
        ("gln", "name", "address", "lat", "lon", "geofence_m", "time_zone"),
    ),
    "carriers": ("carrier_id", ("name", "code")),
    "lanes": ("lane_id", ("code", "origin_location_id", "destination_location_id", "mode")),
}
_NATURAL_KEY: Final[dict[str, str]] = {"locations": "gln", "carriers": "name", "lanes": "code"}


def _columns(table: str) -> str:
    key, fields = TABLES[table]
    return f"{key}, {', '.join(fields)}, version, created_at, retired_at"


def list_records(*, conn: Conn, table: str, include_retired: bool = True) -> list[Row]:
    """Every record of ``table`` (or every live one), by natural key. Locations: sites only
    (rows with a GLN), not bare EPCIS read points."""
    where = []
    if table == "locations":
        where.append("gln IS NOT NULL")
    if not include_retired:
        where.append("retired_at IS NULL")
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    sql = f"SELECT {_columns(table)} FROM {table}{clause} ORDER BY {_NATURAL_KEY[table]}"
    return conn.execute(sql).fetchall()


def find_record(*, conn: Conn, table: str, key: Any, lock: bool = False) -> Row | None:
    """One record by its key column, optionally locked until the transaction ends."""
    sql = f"SELECT {_columns(table)} FROM {table} WHERE {TABLES[table][0]} = %(key)s"
    if lock:
        sql += " FOR UPDATE"
    return conn.execute(sql, {"key": key}).fetchone()


def find_by_natural_key(*, conn: Conn, table: str, value: Any, lock: bool = False) -> Row | None:
    """One record by its natural key (GLN, carrier name, lane code)."""
    sql = f"SELECT {_columns(table)} FROM {table} WHERE {_NATURAL_KEY[table]} = %(value)s"
    if lock:
        sql += " FOR UPDATE"
    return conn.execute(sql, {"value": value}).fetchone()


def insert_records(*, conn: Conn, table: str, records: list[dict[str, Any]]) -> list[Any]:
    """New records of ``table`` (their fields; a location also its ``location_id``); their keys."""
    key, fields = TABLES[table]
    names = (key, *fields) if table == "locations" else fields
    sql = (
        f"INSERT INTO {table} ({', '.join(names)}) "
        f"VALUES ({', '.join(f'%({n})s' for n in names)}) RETURNING {key}"
    )
    keys = []
    with conn.cursor() as cur:
        cur.executemany(sql, records, returning=True)
        while True:
            row = cur.fetchone()
            if row is not None:
                keys.append(row[key])
            if not cur.nextset():
                break
    return keys


def update_record(
    *, conn: Conn, table: str, key: Any, expected_version: int, fields: dict[str, Any]
) -> bool:
    """Set a live record's fields at ``expected_version``; False if it is not there."""
    key_column, names = TABLES[table]
    sql = (
        f"UPDATE {table} SET {', '.join(f'{n} = %({n})s' for n in names)}, version = version + 1 "
        f"WHERE {key_column} = %(key)s AND version = %(expected_version)s AND retired_at IS NULL "
        f"RETURNING {key_column}"
    )
    params = {**fields, "key": key, "expected_version": expected_version}
    return conn.execute(sql, params).fetchone() is not None


def retire_record(*, conn: Conn, table: str, key: Any, expected_version: int) -> bool:
    """Retire a live record at ``expected_version``; False if it is not there."""
    key_column = TABLES[table][0]
    sql = (
        f"UPDATE {table} SET retired_at = now(), version = version + 1 "
        f"WHERE {key_column} = %(key)s AND version = %(expected_version)s AND retired_at IS NULL "
        f"RETURNING {key_column}"
    )
    params = {"key": key, "expected_version": expected_version}
    return conn.execute(sql, params).fetchone() is not None


def lanes_using(*, conn: Conn, location_id: str) -> list[Row]:
    """The live lanes that start or end at a location."""
    return conn.execute(
        f"SELECT {_columns('lanes')} FROM lanes WHERE retired_at IS NULL"
        " AND %(id)s IN (origin_location_id, destination_location_id) ORDER BY code",
        {"id": location_id},
    ).fetchall()


def site_time_zones(*, conn: Conn, names: list[str]) -> dict[str, str]:
    """The time zone of each site named (by its location id, else its name, as a shipment's
    legs name their ends: migration 0017); names no site has are left out. Of two sites with
    one name, the live one registered first answers."""
    rows = conn.execute(
        """
        SELECT DISTINCT ON (n.name) n.name, l.time_zone
        FROM unnest(%(names)s::text[]) AS n(name)
        JOIN locations l ON l.location_id = n.name OR (l.gln IS NOT NULL AND l.name = n.name)
        ORDER BY n.name, (l.location_id = n.name) DESC, (l.retired_at IS NULL) DESC, l.created_at
        """,
        {"names": names},
    ).fetchall()
    return {r["name"]: r["time_zone"] for r in rows}
