"""The escalation policy stored through the API (versioned, never edited), and the
notifications a person's action on an alert queues to those already told of it.

The policy's versions: :mod:`services.escalation` adds and lists them, the rules engine reads
the one in force (:data:`CURRENT_POLICY`, the highest version) at every turn.
"""

from __future__ import annotations

from typing import Any

from psycopg.types.json import Jsonb

from db.types import Conn, Row

# The engine's read (async, positional): the full definition of the version in force.
CURRENT_POLICY = """
SELECT version, definition_with_secrets FROM escalation_policies ORDER BY version DESC LIMIT 1
"""

_VERSION_COLUMNS = "version, definition, created_by, created_at, comment AS reason"

POLICY_VERSIONS = f"SELECT {_VERSION_COLUMNS} FROM escalation_policies ORDER BY version"

# The lock serialises two changes at once, so each takes the next version number.
INSERT_POLICY_VERSION = f"""
WITH locked AS (SELECT pg_advisory_xact_lock(hashtext('escalation_policies')))
INSERT INTO escalation_policies (version, definition, definition_with_secrets, created_by,
                                 comment)
SELECT coalesce(max(version), 0) + 1, %(definition)s, %(full)s, %(created_by)s, %(reason)s
FROM escalation_policies, locked
RETURNING {_VERSION_COLUMNS}
"""

# A person acknowledged or resolved an alert: the event goes to every recipient already told of
# the alert (each channel and target once, at the tier it was told at), its payload the latest
# one sent there with the event, the state and who/why changed; a one-time acknowledgement link
# and an SMS reply code are left out, since there is nothing left to acknowledge. In the
# transaction of the action itself, so a PagerDuty incident is acknowledged exactly when the
# alert is. Digests (one message about many alerts) are not followed up one by one.
QUEUE_FOLLOW_UP = """
WITH told AS (
    SELECT DISTINCT ON (channel, target) alert_id, tier, channel, target, payload
    FROM notifications
    WHERE alert_id = %(alert_id)s AND event <> 'digest'
    ORDER BY channel, target, id DESC
), queued AS (
    INSERT INTO notifications (alert_id, event, tier, channel, target, payload)
    SELECT alert_id, %(event)s, tier, channel, target,
           jsonb_set(
               jsonb_set((payload #- '{links,ack}') - 'reply_code',
                         '{event}', to_jsonb(%(event)s::text)),
               '{alert,state}', to_jsonb(%(state)s::text)
           ) || %(extra)s
    FROM told
    RETURNING id
)
SELECT count(*) AS queued, pg_notify('alert_notifications', '') AS woken FROM queued
"""


def policy_versions(*, conn: Conn) -> list[Row]:
    """Every stored version of the escalation policy (secrets masked), oldest first."""
    return conn.execute(POLICY_VERSIONS).fetchall()


def add_policy_version(
    *,
    conn: Conn,
    definition: dict[str, Any],
    full: dict[str, Any],
    created_by: str,
    reason: str,
) -> Row:
    """Store the next version: ``definition`` (masked, shown) and ``full`` (validated by the
    caller; what the engine sends with). Never an update: earlier versions stay."""
    params = {
        "definition": Jsonb(definition),
        "full": Jsonb(full),
        "created_by": created_by,
        "reason": reason,
    }
    row = conn.execute(INSERT_POLICY_VERSION, params).fetchone()
    assert row is not None
    return row


def queue_follow_up(
    *, conn: Conn, alert_id: int, event: str, state: str, extra: dict[str, Any]
) -> int:
    """Queue ``event`` (acknowledged, resolved) of an alert to everyone already told of it, in
    the caller's transaction; the number of notifications queued."""
    params = {"alert_id": alert_id, "event": event, "state": state, "extra": Jsonb(extra)}
    row = conn.execute(QUEUE_FOLLOW_UP, params).fetchone()
    return int(row["queued"]) if row else 0
