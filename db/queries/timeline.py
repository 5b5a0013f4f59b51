"""What a shipment's event timeline reads besides its lifecycle entries
(:func:`db.queries.lifecycle.events`), its booking row (:func:`db.queries.bookings.booking`), its
excursions (:func:`db.queries.excursions.list_excursions`) and its signed dispositions
(:func:`db.queries.reports.dispositions`): the history of every alert of the shipment. The
assembly is :func:`coldchain.timeline.assemble_timeline`; the read,
:func:`services.timeline.shipment_timeline`.

Keyword-only functions taking ``conn``, parameterised SQL, dict rows.
"""

from __future__ import annotations

from db.types import Conn, Row

# Every event of every alert of the shipment, with the alert's severity and title, oldest first.
ALERT_EVENTS = """
SELECT e.alert_id, e.at, e.kind, e.actor, e.comment, e.data, a.severity, a.title, a.device_id
FROM alert_events e
JOIN alerts a ON a.alert_id = e.alert_id
WHERE a.shipment_id = %(shipment_id)s
ORDER BY e.at, e.id
"""


def alert_events(*, conn: Conn, shipment_id: int) -> list[Row]:
    """The history of every alert of the shipment, oldest first."""
    return conn.execute(ALERT_EVENTS, {"shipment_id": shipment_id}).fetchall()
