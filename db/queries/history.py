"""What the simulated history's back-fill reads and writes about its own alerts
(:mod:`services.history`): which are still unresolved, and the outbox rows that must not go out.

Keyword-only functions taking ``conn``; the caller owns the transaction and the audit context.
"""

from __future__ import annotations

from collections.abc import Sequence

from db.types import Conn, Row

UNRESOLVED_ALERTS = """
SELECT alert_id, shipment_id, rule_key, state FROM alerts
WHERE shipment_id = ANY(%(ids)s::bigint[]) AND state <> 'resolved'
ORDER BY alert_id
"""

# An outbox row of a months-old simulated alert is not sent: it is closed as given up, with the
# reason in ``last_error`` (the alert page and the deliveries report show it), never deleted.
SUPPRESS_NOTIFICATIONS = """
UPDATE notifications n SET gave_up_at = now(), last_error = %(reason)s
FROM alerts a
WHERE a.alert_id = n.alert_id AND a.shipment_id = ANY(%(ids)s::bigint[])
  AND n.delivered_at IS NULL AND n.gave_up_at IS NULL
"""


def unresolved_alerts(*, conn: Conn, shipment_ids: Sequence[int]) -> list[Row]:
    """The unresolved alerts of these shipments, oldest first."""
    return conn.execute(UNRESOLVED_ALERTS, {"ids": list(shipment_ids)}).fetchall()


def suppress_notifications(*, conn: Conn, shipment_ids: Sequence[int], reason: str) -> int:
    """Close the unsent notifications of these shipments' alerts as given up with ``reason``;
    how many."""
    cur = conn.execute(SUPPRESS_NOTIFICATIONS, {"ids": list(shipment_ids), "reason": reason})
    return cur.rowcount
