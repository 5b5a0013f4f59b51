"""What a shipment's (or a product's) rules are made of, read in one statement for all consumers.

The rules engine, the excursion report, the unit passport and the shipment page all judge or
show a shipment's limits; they all read the layers here (:data:`RULE_INPUTS`, parsed by
:func:`rule_inputs_from_row`) and stack them with :mod:`alerts.in_force`, so none of them can
use another range than the others. Per shipment (and per product asked for without a shipment):
the product row's rule columns and the versions in force of the product's and the shipment's
rules stored through the API: the highest version, or with ``as_of`` the highest one created by
then (what a report as of that instant shows).

The engine's connections are asynchronous and the web process's synchronous: both execute the
same statement with :func:`rule_inputs_params` and parse its rows with
:func:`rule_inputs_from_row`; :func:`rule_inputs` is the synchronous call.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg import Connection
from psycopg.rows import tuple_row

__all__ = [
    "PRODUCT_RULE_COLUMNS",
    "RULE_INPUTS",
    "RuleInputs",
    "rule_inputs",
    "rule_inputs_from_row",
    "rule_inputs_params",
]

#: The product columns the rules are derived from (alerts.layers.ProductRow's fields), in order.
PRODUCT_RULE_COLUMNS = (
    "gtin",
    "name",
    "temp_min_c",
    "temp_max_c",
    "freeze_limit_c",
    "alarm_delay_s",
    "stability_budget_s",
    "mkt_delta_h_j_mol",
    "mkt_limit_c",
    "rh_min",
    "rh_max",
)

# One row per shipment asked for, then one per product asked for alone (shipment columns NULL).
# The stored versions come from the unique (product_gtin, version) / (shipment_id, version)
# indexes, newest first.
RULE_INPUTS = f"""
WITH wanted AS (
    SELECT s.shipment_id, s.reference, s.product_gtin AS gtin
    FROM shipments s
    WHERE s.shipment_id = ANY(%(shipments)s::bigint[])
    UNION ALL
    SELECT NULL::bigint, NULL::text, g.gtin
    FROM unnest(%(gtins)s::text[]) AS g(gtin)
)
SELECT w.shipment_id, w.reference, w.gtin AS asked_gtin,
       {", ".join("p." + c for c in PRODUCT_RULE_COLUMNS)},
       pr.version, pr.definition, sr.version, sr.definition
FROM wanted w
LEFT JOIN products p ON p.gtin = w.gtin
LEFT JOIN LATERAL (
    SELECT d.version, d.definition FROM rule_definitions d
    WHERE d.product_gtin = p.gtin
      AND (%(as_of)s::timestamptz IS NULL OR d.created_at <= %(as_of)s)
    ORDER BY d.version DESC
    LIMIT 1
) pr ON true
LEFT JOIN LATERAL (
    SELECT d.version, d.definition FROM rule_definitions d
    WHERE d.shipment_id = w.shipment_id
      AND (%(as_of)s::timestamptz IS NULL OR d.created_at <= %(as_of)s)
    ORDER BY d.version DESC
    LIMIT 1
) sr ON true
"""


@dataclass(frozen=True, slots=True)
class RuleInputs:
    """The database's part of one shipment's (or product's) rule layers, as plain values.

    ``shipment_id``/``reference`` are None for a product asked for alone; ``product`` is the
    row's :data:`PRODUCT_RULE_COLUMNS` (None: no product, or an unknown GTIN); the stored
    versions are ``(version, definition)`` (None: none stored).
    """

    shipment_id: int | None
    reference: str | None
    gtin: str | None
    product: Mapping[str, Any] | None
    product_stored: tuple[int, Any] | None
    shipment_stored: tuple[int, Any] | None


def rule_inputs_params(
    *, shipment_ids: Iterable[int] = (), gtins: Iterable[str] = (), as_of: datetime | None = None
) -> dict[str, Any]:
    """The parameters of :data:`RULE_INPUTS` (``as_of`` None: the versions in force now)."""
    return {"shipments": list(shipment_ids), "gtins": list(gtins), "as_of": as_of}


def rule_inputs_from_row(row: Sequence[Any]) -> RuleInputs:
    """One :data:`RULE_INPUTS` row (a tuple) as :class:`RuleInputs`."""
    n = len(PRODUCT_RULE_COLUMNS)
    shipment_id, reference, asked_gtin = row[0], row[1], row[2]
    columns = row[3 : 3 + n]
    p_version, p_definition, s_version, s_definition = row[3 + n : 7 + n]
    product = None if columns[0] is None else dict(zip(PRODUCT_RULE_COLUMNS, columns, strict=True))
    return RuleInputs(
        shipment_id=None if shipment_id is None else int(shipment_id),
        reference=reference,
        gtin=None if asked_gtin is None else str(asked_gtin).strip(),
        product=product,
        product_stored=None if p_version is None else (int(p_version), p_definition),
        shipment_stored=None if s_version is None else (int(s_version), s_definition),
    )


def rule_inputs(
    *,
    conn: Connection[Any],
    shipment_ids: Iterable[int] = (),
    gtins: Iterable[str] = (),
    as_of: datetime | None = None,
) -> list[RuleInputs]:
    """The rule inputs of the shipments, then of the products, asked for (missing ones left out)."""
    params = rule_inputs_params(shipment_ids=shipment_ids, gtins=gtins, as_of=as_of)
    with conn.cursor(row_factory=tuple_row) as cur:
        return [rule_inputs_from_row(r) for r in cur.execute(RULE_INPUTS, params).fetchall()]
