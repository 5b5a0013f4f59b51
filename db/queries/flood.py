"""The outbox's flood control and backlog grouping (alerts/digests.py; the decisions are
alerts/flood.py).

A digest is a notification row (event 'digest', no alert of its own) that stands for others:
their ``digest_id`` names it. Its members are never due on their own (``next_attempt_at`` is
infinity); when the digest is delivered they are delivered with it, each with a deliveries row
that names the digest, and when it is given up they are given up with it.
"""

from __future__ import annotations

_RETURNING = (
    "RETURNING n.id, n.alert_id, n.event, n.tier, n.channel, n.target, n.payload, n.attempts"
)

# What each recipient was sent in the past hour, by shipment and device (the alert's, from the
# payload): the counts flood control starts from. Members of a digest count as the digest.
SENT_LAST_HOUR = """
SELECT channel, target,
       payload->'alert'->>'shipment_id' AS shipment_id,
       payload->'alert'->>'device_id' AS device_id,
       count(*)::int AS sent
FROM notifications
WHERE delivered_at > now() - interval '1 hour' AND digest_id IS NULL
  AND (channel, target) IN (SELECT * FROM unnest(%(channels)s::text[], %(targets)s::text[]))
GROUP BY 1, 2, 3, 4
"""

# The rest of a backlog group: alert notifications to the same recipient about the same
# shipment, due and never attempted, that this claim did not take (a large backlog spans
# several claims). Claimed like CLAIM_NOTIFICATIONS, but never due again on their own.
CLAIM_GROUP_REST = f"""
UPDATE notifications n SET attempts = n.attempts + 1, next_attempt_at = 'infinity'
WHERE n.id IN (
    SELECT id FROM notifications
    WHERE delivered_at IS NULL AND gave_up_at IS NULL AND digest_id IS NULL AND held_at IS NULL
      AND attempts = 0 AND next_attempt_at <= now() AND alert_id IS NOT NULL
      AND channel = %(channel)s AND target = %(target)s
      AND payload->'alert'->>'shipment_id' = %(shipment_id)s
      AND NOT id = ANY(%(taken)s::bigint[])
    FOR UPDATE SKIP LOCKED
)
{_RETURNING}
"""

# A digest; ``attempts`` 1 and a lease for a backlog digest sent at once, 0 and a later due
# time for a flood digest that collects what is held until then.
INSERT_DIGEST = """
INSERT INTO notifications (alert_id, event, tier, channel, target, payload, attempts,
                           next_attempt_at, digest_scope)
VALUES (NULL, 'digest', %(tier)s, %(channel)s, %(target)s, %(payload)s, %(attempts)s,
        now() + make_interval(secs => %(due_in_s)s), %(scope)s)
RETURNING id
"""

# A flood digest still collecting (never attempted) for this recipient and scope.
PENDING_FLOOD_DIGEST = """
SELECT id FROM notifications
WHERE event = 'digest' AND channel = %(channel)s AND target = %(target)s
  AND digest_scope = %(scope)s AND attempts = 0 AND delivered_at IS NULL AND gave_up_at IS NULL
ORDER BY id LIMIT 1
FOR UPDATE
"""

JOIN_DIGEST = """
UPDATE notifications SET digest_id = %(digest)s, next_attempt_at = 'infinity'
WHERE id = ANY(%(ids)s::bigint[])
"""

# Held back by flood control: the claim's attempt is given back (nothing was attempted).
HOLD = """
UPDATE notifications
SET digest_id = %(digest)s, held_at = now(), held_reason = %(reason)s,
    next_attempt_at = 'infinity', attempts = attempts - 1
WHERE id = %(id)s
"""

DIGEST_MEMBERS = """
SELECT payload->'alert' AS alert, tier FROM notifications WHERE digest_id = %(digest)s ORDER BY id
"""

SET_PAYLOAD = "UPDATE notifications SET payload = %(payload)s WHERE id = %(id)s"

# The digest was delivered: so is each member, with a deliveries row naming the digest.
MEMBERS_DELIVERED = """
WITH m AS (
    UPDATE notifications SET delivered_at = now(), last_error = NULL
    WHERE digest_id = %(digest)s AND delivered_at IS NULL AND gave_up_at IS NULL
    RETURNING id, alert_id, channel, target, event, held_at
)
INSERT INTO deliveries (alert_id, channel, target, event, attempt, ok, response, notification_id,
                        duration_ms)
SELECT alert_id, channel, target, event, 1, true,
       CASE WHEN held_at IS NULL THEN 'sent in digest ' || %(digest)s::text
            ELSE 'held back (flood control); counted in digest ' || %(digest)s::text END,
       id, 0
FROM m
"""

MEMBERS_GIVEN_UP = """
UPDATE notifications SET gave_up_at = now(), last_error = %(error)s
WHERE digest_id = %(digest)s AND delivered_at IS NULL AND gave_up_at IS NULL
"""
