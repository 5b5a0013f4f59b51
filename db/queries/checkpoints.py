"""The rules engine's checkpoints of pair evaluations (table ``pair_checkpoints``, migration 0014;
what they hold: alerts/checkpoints.py).

The pair statements take the arrays of :func:`alerts.rows.pair_arrays`; the rewinding and the
pruning take a third array, one value per pair. The readings from a checkpoint's context on are
read by ``rules.PAIR_READINGS``.
"""

from __future__ import annotations

# The checkpoints of some pairs (the state as text: decoded bit for bit by alerts.checkpoints).
PAIR_CHECKPOINTS = """
SELECT c.shipment_id, c.device_id, c.at, c.fingerprint, c.state::text AS state
FROM unnest(%s::bigint[], %s::text[]) AS k(shipment_id, device_id)
JOIN pair_checkpoints c ON c.shipment_id = k.shipment_id AND c.device_id = k.device_id
"""

# A round that takes readings from `since` on drops the pair's checkpoints at or after it: they
# were computed without those readings.
DROP_CHECKPOINTS_SINCE = """
DELETE FROM pair_checkpoints c
USING unnest(%s::bigint[], %s::text[], %s::timestamptz[]) AS k(shipment_id, device_id, since)
WHERE c.shipment_id = k.shipment_id AND c.device_id = k.device_id AND c.at >= k.since
"""

INSERT_CHECKPOINT = """
INSERT INTO pair_checkpoints (shipment_id, device_id, at, fingerprint, state)
VALUES (%(shipment_id)s, %(device_id)s, %(at)s, %(fingerprint)s, %(state)s::json)
ON CONFLICT (shipment_id, device_id, at)
    DO UPDATE SET fingerprint = EXCLUDED.fingerprint, state = EXCLUDED.state, created_at = now()
"""

# Keep the newest %s checkpoints of each pair given, and only those of its current fingerprint.
PRUNE_CHECKPOINTS = """
DELETE FROM pair_checkpoints c
USING (
    SELECT c2.shipment_id, c2.device_id, c2.at,
           row_number() OVER (PARTITION BY c2.shipment_id, c2.device_id ORDER BY c2.at DESC) AS n,
           c2.fingerprint = k.fingerprint AS current
    FROM unnest(%s::bigint[], %s::text[], %s::text[]) AS k(shipment_id, device_id, fingerprint)
    JOIN pair_checkpoints c2 ON c2.shipment_id = k.shipment_id AND c2.device_id = k.device_id
) old
WHERE c.shipment_id = old.shipment_id AND c.device_id = old.device_id AND c.at = old.at
  AND (old.n > %s OR NOT old.current)
"""
