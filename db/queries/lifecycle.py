"""A shipment's life: its state moves, the timeline, the arrival verdicts and the QA queue
(``db/migrations/0011_shipment_lifecycle.sql``; the states are :mod:`coldchain.lifecycle`'s).

Keyword-only functions taking ``conn``, parameterised SQL, dict rows. The callers
(:mod:`services.lifecycle`, and :mod:`reports.service` when a disposition is signed) lock the
shipment, decide the move with :func:`coldchain.lifecycle.transition`, and call
:func:`set_state` and :func:`add_event` in the same transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from psycopg.types.json import Jsonb

from db.types import Conn, Row

LOCK_STATE = """
SELECT shipment_id, reference, status, version, started_at, arrived_at, product_gtin
FROM shipments WHERE shipment_id = %(id)s FOR UPDATE
"""

# started_at / arrived_at are set by the transition that begins them and never moved after.
SET_STATE = """
UPDATE shipments SET
    status = %(to_state)s,
    version = version + 1,
    started_at = CASE WHEN %(event)s = 'start' THEN %(at)s ELSE started_at END,
    arrived_at = CASE WHEN %(event)s = 'arrive' THEN %(at)s ELSE arrived_at END
WHERE shipment_id = %(id)s AND status = %(from_state)s
RETURNING shipment_id, status, version, started_at, arrived_at
"""

INSERT_EVENT = """
INSERT INTO shipment_events (shipment_id, at, event, from_state, to_state, actor, reason, data)
VALUES (%(id)s, %(at)s, %(event)s, %(from_state)s, %(to_state)s, %(actor)s, %(reason)s,
        %(data)s)
RETURNING event_id, shipment_id, at, event, from_state, to_state, actor, reason, data
"""
COPY_EVENTS = "COPY shipment_events (shipment_id, at, event, actor, to_state) FROM STDIN"

SELECT_EVENTS = """
SELECT event_id, at, event, from_state, to_state, actor, reason, data
FROM shipment_events WHERE shipment_id = %(id)s ORDER BY at, event_id
"""

# The profile version in force at ``at``: the newest created at or before it.
PROFILE_IN_FORCE = """
SELECT version, profile FROM product_profiles
WHERE gtin = %(gtin)s AND created_at <= %(at)s
ORDER BY version DESC LIMIT 1
"""

PRODUCTS_TO_JUDGE = """
SELECT p.gtin, p.name, p.temp_min_c, p.temp_max_c, p.freeze_limit_c, p.stability_budget_s,
       p.mkt_delta_h_j_mol, p.mkt_limit_c
FROM products p
WHERE p.gtin IN (SELECT gtin FROM shipment_items WHERE shipment_id = %(id)s
                 UNION SELECT product_gtin FROM shipments WHERE shipment_id = %(id)s)
ORDER BY p.gtin
"""

OPEN_EXCURSIONS = """
SELECT direction, start_ts, device_id FROM excursions
WHERE shipment_id = %(id)s AND superseded_at IS NULL AND end_ts IS NULL
ORDER BY start_ts, device_id
"""

INSERT_VERDICT = """
INSERT INTO shipment_verdicts (shipment_id, gtin, verdict, reasons, figures, profile_version,
                               evaluated_at, evaluated_by)
VALUES (%(id)s, %(gtin)s, %(verdict)s, %(reasons)s, %(figures)s, %(profile_version)s,
        %(evaluated_at)s, %(evaluated_by)s)
RETURNING verdict_id, shipment_id, gtin, verdict, reasons, figures, profile_version,
          evaluated_at, evaluated_by
"""

# The latest evaluation of each product of the shipment.
LATEST_VERDICTS = """
SELECT DISTINCT ON (gtin) verdict_id, shipment_id, gtin, verdict, reasons, figures,
       profile_version, evaluated_at, evaluated_by
FROM shipment_verdicts WHERE shipment_id = %(id)s
ORDER BY gtin, evaluated_at DESC, verdict_id DESC
"""

# Shipments waiting for QA with their latest verdicts. Risk, highest first: a shipment with an
# exception before one without; then the largest share of a band budget used by any product
# (a zero budget that was used counts as infinitely used); then the number of reasons; then the
# oldest arrival (it has waited longest).
QA_QUEUE = """
WITH latest AS (
    SELECT DISTINCT ON (v.shipment_id, v.gtin) v.*
    FROM shipment_verdicts v JOIN shipments s USING (shipment_id)
    WHERE s.status = ANY(%(states)s::text[])
    ORDER BY v.shipment_id, v.gtin, v.evaluated_at DESC, v.verdict_id DESC
),
per_shipment AS (
    SELECT shipment_id,
           bool_or(verdict = 'exception') AS has_exception,
           max(coalesce((SELECT max(CASE WHEN (b ->> 'share') IS NOT NULL
                                          THEN (b ->> 'share')::double precision
                                          WHEN (b ->> 'used_s')::double precision > 0
                                          THEN 'infinity'::double precision
                                          ELSE 0 END)
                         FROM jsonb_array_elements(figures -> 'bands') AS b), 0))
               AS max_budget_share,
           sum(jsonb_array_length(reasons)) AS n_reasons,
           jsonb_agg(jsonb_build_object(
               'gtin', gtin, 'verdict', verdict, 'reasons', reasons,
               'profile_version', profile_version, 'evaluated_at', evaluated_at)
               ORDER BY verdict DESC, gtin) AS verdicts
    FROM latest GROUP BY shipment_id
)
SELECT s.shipment_id, s.reference, s.status, s.arrived_at, s.origin, s.destination,
       coalesce(q.has_exception, false) AS has_exception,
       q.max_budget_share, coalesce(q.n_reasons, 0) AS n_reasons,
       coalesce(q.verdicts, '[]'::jsonb) AS verdicts
FROM shipments s LEFT JOIN per_shipment q USING (shipment_id)
WHERE s.status = ANY(%(states)s::text[])
ORDER BY coalesce(q.has_exception, false) DESC, q.max_budget_share DESC NULLS LAST,
         coalesce(q.n_reasons, 0) DESC, s.arrived_at NULLS LAST, s.shipment_id
LIMIT %(limit)s
"""


def lock_state(*, conn: Conn, shipment_id: int) -> Row | None:
    """The shipment's state, locked (FOR UPDATE) until the caller's transaction ends."""
    return conn.execute(LOCK_STATE, {"id": shipment_id}).fetchone()


def set_state(
    *, conn: Conn, shipment_id: int, event: str, from_state: str, to_state: str, at: datetime
) -> Row | None:
    """Move the shipment from ``from_state`` to ``to_state``; None if it was not in from_state."""
    params = {
        "id": shipment_id,
        "event": event,
        "from_state": from_state,
        "to_state": to_state,
        "at": at,
    }
    return conn.execute(SET_STATE, params).fetchone()


def add_event(
    *,
    conn: Conn,
    shipment_id: int,
    at: datetime,
    event: str,
    actor: str,
    reason: str | None = None,
    from_state: str | None = None,
    to_state: str | None = None,
    data: dict[str, Any] | None = None,
) -> Row:
    """Append a timeline entry."""
    row = conn.execute(
        INSERT_EVENT,
        {
            "id": shipment_id,
            "at": at,
            "event": event,
            "from_state": from_state,
            "to_state": to_state,
            "actor": actor,
            "reason": reason,
            "data": Jsonb(data or {}),
        },
    ).fetchone()
    assert row is not None
    return row


def copy_events(*, conn: Conn, rows: Sequence[tuple[int, datetime, str, str, str]]) -> None:
    """Bulk-append (shipment_id, at, event, actor, to_state) timeline entries (imports)."""
    with conn.cursor().copy(COPY_EVENTS) as copy:
        for row in rows:
            copy.write_row(row)


def events(*, conn: Conn, shipment_id: int) -> list[Row]:
    """The shipment's timeline, oldest first."""
    return conn.execute(SELECT_EVENTS, {"id": shipment_id}).fetchall()


def profile_in_force(*, conn: Conn, gtin: str, at: datetime) -> Row | None:
    """The product's stability profile version in force at ``at`` (``version``, ``profile``)."""
    return conn.execute(PROFILE_IN_FORCE, {"gtin": gtin, "at": at}).fetchone()


def products_to_judge(*, conn: Conn, shipment_id: int) -> list[Row]:
    """Every product on board (items, and the shipment's own product) with its limits."""
    return conn.execute(PRODUCTS_TO_JUDGE, {"id": shipment_id}).fetchall()


def open_excursions(*, conn: Conn, shipment_id: int) -> list[Row]:
    """The shipment's current excursions that have not ended."""
    return conn.execute(OPEN_EXCURSIONS, {"id": shipment_id}).fetchall()


def insert_verdict(*, conn: Conn, values: dict[str, Any]) -> Row:
    """Store one product's verdict (``reasons`` and ``figures`` are plain JSON values)."""
    params = {
        **values,
        "reasons": Jsonb(values["reasons"]),
        "figures": Jsonb(values["figures"]),
    }
    row = conn.execute(INSERT_VERDICT, params).fetchone()
    assert row is not None
    return row


def latest_verdicts(*, conn: Conn, shipment_id: int) -> list[Row]:
    """The latest verdict of each product of the shipment."""
    return conn.execute(LATEST_VERDICTS, {"id": shipment_id}).fetchall()


def qa_queue(*, conn: Conn, states: list[str], limit: int) -> list[Row]:
    """Shipments in ``states`` with their latest verdicts, the riskiest first (see QA_QUEUE)."""
    return conn.execute(QA_QUEUE, {"states": states, "limit": limit}).fetchall()
