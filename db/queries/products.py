"""Products: the one module that reads the ``products`` table for the web process, the reports
and traceability (the rules engine reads a product's fields through :mod:`db.queries.limits`).

A product row carries its labelled storage range and its limits: ``gtin``, ``name``,
``temp_min_c``, ``temp_max_c``, ``freeze_limit_c``, ``alarm_delay_s``, ``stability_budget_s``,
``mkt_delta_h_j_mol``, ``mkt_limit_c``, ``mkt_window_days``, ``rh_min``, ``rh_max``, and its
master-data bookkeeping ``version``, ``created_at``, ``retired_at``. Its stability profile is
versioned in ``product_profiles`` (migration 0010), one append-only row per version; the row here
carries the current one's number as ``profile_version``.

Writes are for :mod:`services.products`, which holds the audit context and the transaction;
an update names the version it read and changes nothing when the row moved on (returns None).
"""

from __future__ import annotations

from typing import Any

from psycopg.types.json import Jsonb

from coldchain.errors import NotFoundError
from db.types import Conn, Row

#: The columns a product is created or changed with (everything but its bookkeeping).
FIELDS = (
    "name",
    "temp_min_c",
    "temp_max_c",
    "freeze_limit_c",
    "alarm_delay_s",
    "stability_budget_s",
    "mkt_delta_h_j_mol",
    "mkt_limit_c",
    "mkt_window_days",
    "rh_min",
    "rh_max",
)

_PRODUCT_COLUMNS = f"""gtin, {", ".join(FIELDS)}, version, created_at, retired_at,
       (SELECT max(pp.version) FROM product_profiles pp WHERE pp.gtin = products.gtin)
           AS profile_version"""

LIST_PRODUCTS = f"SELECT {_PRODUCT_COLUMNS} FROM products ORDER BY name, gtin"
LIST_ACTIVE_PRODUCTS = (
    f"SELECT {_PRODUCT_COLUMNS} FROM products WHERE retired_at IS NULL ORDER BY name, gtin"
)
SELECT_PRODUCT = f"SELECT {_PRODUCT_COLUMNS} FROM products WHERE gtin = %(gtin)s"
SELECT_PRODUCT_FOR_UPDATE = SELECT_PRODUCT + " FOR UPDATE OF products"

INSERT_PRODUCT = f"""
INSERT INTO products (gtin, {", ".join(FIELDS)})
VALUES (%(gtin)s, {", ".join(f"%({f})s" for f in FIELDS)})
"""

UPDATE_PRODUCT = f"""
UPDATE products SET {", ".join(f"{f} = %({f})s" for f in FIELDS)}, version = version + 1
WHERE gtin = %(gtin)s AND version = %(expected_version)s AND retired_at IS NULL
RETURNING gtin
"""

RETIRE_PRODUCT = """
UPDATE products SET retired_at = now(), version = version + 1
WHERE gtin = %(gtin)s AND version = %(expected_version)s AND retired_at IS NULL
RETURNING gtin
"""

INSERT_PROFILE = """
INSERT INTO product_profiles (gtin, version, profile, created_by, reason)
SELECT %(gtin)s, coalesce(max(version), 0) + 1, %(profile)s, %(created_by)s, %(reason)s
FROM product_profiles WHERE gtin = %(gtin)s
RETURNING gtin, version, profile, created_by, reason, created_at
"""

SELECT_PROFILES = """
SELECT gtin, version, profile, created_by, reason, created_at
FROM product_profiles WHERE gtin = %(gtin)s ORDER BY version DESC
"""

SELECT_CURRENT_PROFILE = """
SELECT gtin, version, profile, created_by, reason, created_at
FROM product_profiles WHERE gtin = %(gtin)s ORDER BY version DESC LIMIT 1
"""

SELECT_EXISTING_GTINS = f"SELECT {_PRODUCT_COLUMNS} FROM products WHERE gtin = ANY(%(gtins)s)"


def list_products(*, conn: Conn, include_retired: bool = True) -> list[Row]:
    """Every product (or every one not retired) with its labelled range and limits."""
    return conn.execute(LIST_PRODUCTS if include_retired else LIST_ACTIVE_PRODUCTS).fetchall()


def find_product(*, conn: Conn, gtin: str) -> Row | None:
    """One product by its 14-digit GTIN, or None."""
    return conn.execute(SELECT_PRODUCT, {"gtin": gtin}).fetchone()


def get_product(*, conn: Conn, gtin: str) -> Row:
    """One product by its 14-digit GTIN; raises NotFoundError."""
    row = find_product(conn=conn, gtin=gtin)
    if row is None:
        raise NotFoundError(f"product with GTIN {gtin!r} not found")
    return row


def lock_product(*, conn: Conn, gtin: str) -> Row | None:
    """One product, locked until the transaction ends (its profile version is numbered next)."""
    return conn.execute(SELECT_PRODUCT_FOR_UPDATE, {"gtin": gtin}).fetchone()


def products_by_gtin(*, conn: Conn, gtins: list[str]) -> dict[str, Row]:
    """The products among ``gtins`` that exist, by GTIN."""
    return {r["gtin"]: r for r in conn.execute(SELECT_EXISTING_GTINS, {"gtins": gtins})}


def insert_products(*, conn: Conn, products: list[dict[str, Any]]) -> None:
    """New products (``gtin`` and :data:`FIELDS` each), in one round trip per batch."""
    with conn.cursor() as cur:
        cur.executemany(INSERT_PRODUCT, products)


def update_product(*, conn: Conn, gtin: str, expected_version: int, fields: dict[str, Any]) -> bool:
    """Set :data:`FIELDS` of a live product at ``expected_version``; False if it is not there."""
    params = {**fields, "gtin": gtin, "expected_version": expected_version}
    return conn.execute(UPDATE_PRODUCT, params).fetchone() is not None


def retire_product(*, conn: Conn, gtin: str, expected_version: int) -> bool:
    """Retire a live product at ``expected_version``; False if it is not there."""
    params = {"gtin": gtin, "expected_version": expected_version}
    return conn.execute(RETIRE_PRODUCT, params).fetchone() is not None


def insert_profiles(*, conn: Conn, profiles: list[dict[str, Any]]) -> None:
    """The next profile version of each product (``gtin``, ``profile``, ``created_by``,
    ``reason``); its number is one above the product's last."""
    params = [{**p, "profile": Jsonb(p["profile"])} for p in profiles]
    with conn.cursor() as cur:
        cur.executemany(INSERT_PROFILE, params)


def list_profiles(*, conn: Conn, gtin: str) -> list[Row]:
    """Every stability-profile version of a product, newest first."""
    return conn.execute(SELECT_PROFILES, {"gtin": gtin}).fetchall()


def current_profile(*, conn: Conn, gtin: str) -> Row | None:
    """The newest stability-profile version of a product, or None (a product from before 0010)."""
    return conn.execute(SELECT_CURRENT_PROFILE, {"gtin": gtin}).fetchone()
