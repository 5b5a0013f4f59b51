"""What a shipment's event timeline reads besides its lifecycle entries (those are
:func:`db.queries.lifecycle.events`): when it was booked, its alerts' history, and its signed
dispositions with whether a later record superseded each. The assembly is
:func:`coldchain.timeline.assemble_timeline`; the read, :func:`services.timeline.shipment_timeline`.

Keyword-only functions taking ``conn``, parameterised SQL, dict rows.
"""

from __future__ import annotations

from db.types import Conn, Row

SHIPMENT_CREATED = """
SELECT shipment_id, created_at FROM shipments WHERE shipment_id = %(shipment_id)s
"""

# Every event of every alert of the shipment, with the alert's severity and title, oldest first.
ALERT_EVENTS = """
SELECT e.alert_id, e.at, e.kind, e.actor, e.comment, e.data, a.severity, a.title, a.device_id
FROM alert_events e
JOIN alerts a ON a.alert_id = e.alert_id
WHERE a.shipment_id = %(shipment_id)s
ORDER BY e.at, e.id
"""

# The signed records, oldest first; ``superseded``: a later record replaced it.
DISPOSITIONS = """
SELECT d.disposition_id, d.lot, d.decision, d.reason, d.meaning, d.signer_name,
       d.signer_username, d.signer_role, d.signed_at,
       EXISTS (SELECT 1 FROM dispositions n WHERE n.supersedes = d.disposition_id) AS superseded
FROM dispositions d
WHERE d.shipment_id = %(shipment_id)s
ORDER BY d.signed_at, d.disposition_id
"""


def shipment_created(*, conn: Conn, shipment_id: int) -> Row | None:
    """The shipment's id and ``created_at`` (None: no such shipment)."""
    return conn.execute(SHIPMENT_CREATED, {"shipment_id": shipment_id}).fetchone()


def alert_events(*, conn: Conn, shipment_id: int) -> list[Row]:
    """The history of every alert of the shipment, oldest first."""
    return conn.execute(ALERT_EVENTS, {"shipment_id": shipment_id}).fetchall()


def dispositions(*, conn: Conn, shipment_id: int) -> list[Row]:
    """The shipment's signed dispositions, oldest first, each marked when superseded."""
    return conn.execute(DISPOSITIONS, {"shipment_id": shipment_id}).fetchall()
