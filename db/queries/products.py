"""Products: the one module that reads the ``products`` table for the web process, the reports
and traceability (the rules engine reads a product's fields through :mod:`db.queries.limits`).

A product row carries its labelled storage range and its stability profile: ``gtin``, ``name``,
``temp_min_c``, ``temp_max_c``, ``freeze_limit_c``, ``alarm_delay_s``, ``stability_budget_s``,
``mkt_delta_h_j_mol``, ``mkt_limit_c``, ``rh_min``, ``rh_max``.
"""

from __future__ import annotations

from coldchain.errors import NotFoundError
from db.types import Conn, Row

_PRODUCT_COLUMNS = """gtin, name, temp_min_c, temp_max_c, freeze_limit_c, alarm_delay_s,
       stability_budget_s, mkt_delta_h_j_mol, mkt_limit_c, rh_min, rh_max"""

LIST_PRODUCTS = f"SELECT {_PRODUCT_COLUMNS} FROM products ORDER BY name, gtin"
SELECT_PRODUCT = f"SELECT {_PRODUCT_COLUMNS} FROM products WHERE gtin = %(gtin)s"


def list_products(*, conn: Conn) -> list[Row]:
    """Every product with its labelled range and stability profile."""
    return conn.execute(LIST_PRODUCTS).fetchall()


def find_product(*, conn: Conn, gtin: str) -> Row | None:
    """One product by its 14-digit GTIN, or None."""
    return conn.execute(SELECT_PRODUCT, {"gtin": gtin}).fetchone()


def get_product(*, conn: Conn, gtin: str) -> Row:
    """One product by its 14-digit GTIN; raises NotFoundError."""
    row = find_product(conn=conn, gtin=gtin)
    if row is None:
        raise NotFoundError(f"product with GTIN {gtin!r} not found")
    return row
