"""A shipment's event timeline, read once for the shipment page: the lifecycle entries, the
excursions, the alerts' history and the signed dispositions, assembled and ordered by
:func:`coldchain.timeline.assemble_timeline` (pure; the definitions are there).

A read (no caller, see :mod:`services`).
"""

from __future__ import annotations

from coldchain.errors import NotFoundError
from coldchain.timeline import TimelineEntry, assemble_timeline
from db.queries import bookings as booking_q
from db.queries import excursions as excursion_q
from db.queries import lifecycle as lifecycle_q
from db.queries import reports as report_q
from db.queries import timeline as timeline_q
from db.types import Conn

__all__ = ["shipment_timeline"]


def shipment_timeline(conn: Conn, *, shipment_id: int) -> list[TimelineEntry]:
    """Everything that happened to the shipment, oldest first; NotFoundError."""
    shipment = booking_q.booking(conn=conn, shipment_id=shipment_id)
    if shipment is None:
        raise NotFoundError(f"shipment {shipment_id} not found")
    alert_events = timeline_q.alert_events(conn=conn, shipment_id=shipment_id)
    with_history = {e["alert_id"] for e in alert_events}
    excursions = [
        {**x, "alert_shown": x["alert_id"] in with_history}
        for x in excursion_q.list_excursions(conn=conn, shipment_id=shipment_id)
    ]
    signed = report_q.dispositions(conn=conn, shipment_id=shipment_id)
    superseded = {d["supersedes"] for d in signed if d["supersedes"] is not None}
    return assemble_timeline(
        created_at=shipment["created_at"],
        lifecycle=lifecycle_q.events(conn=conn, shipment_id=shipment_id),
        excursions=excursions,
        alert_events=alert_events,
        dispositions=[{**d, "superseded": d["disposition_id"] in superseded} for d in signed],
    )
