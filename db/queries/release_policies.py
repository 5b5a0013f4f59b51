"""QA's auto-release policies (``db/migrations/0013_auto_release.sql``): the policies, their
history, and the policies that cover a shipment.

Keyword-only functions taking ``conn``, parameterised SQL, dict rows. Writes are for
:mod:`services.release_policies`, which holds the audit context and the transaction.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from db.types import Conn, Row

_POLICY_COLUMNS = """p.policy_id, p.gtin, p.lane_id, p.reason, p.meaning, p.signer_user_id,
    p.signer_username, p.signer_name, p.signer_role, p.signed_at, p.signature_hash, p.active,
    p.revoked_at, p.revoked_by_username, p.revoked_by_name, p.revoke_reason,
    p.revoke_signature_hash, p.version,
    (SELECT count(*) FROM release_policy_events e
     WHERE e.policy_id = p.policy_id AND e.event = 'released') AS releases"""

LIST_POLICIES = f"""
SELECT {_POLICY_COLUMNS} FROM release_policies p
WHERE (%(active)s::boolean IS NULL OR p.active = %(active)s)
ORDER BY p.policy_id
"""

SELECT_POLICY = f"SELECT {_POLICY_COLUMNS} FROM release_policies p WHERE p.policy_id = %(id)s"
SELECT_POLICY_FOR_UPDATE = SELECT_POLICY + " FOR UPDATE OF p"

ACTIVE_FOR_SCOPE = f"""
SELECT {_POLICY_COLUMNS} FROM release_policies p
WHERE p.active AND (p.gtin = %(gtin)s OR p.lane_id = %(lane_id)s)
"""

INSERT_POLICY = """
INSERT INTO release_policies (gtin, lane_id, reason, meaning, signer_user_id, signer_username,
    signer_name, signer_role, signed_at, signature_hash)
VALUES (%(gtin)s, %(lane_id)s, %(reason)s, %(meaning)s, %(signer_user_id)s,
    %(signer_username)s, %(signer_name)s, %(signer_role)s, %(signed_at)s, %(signature_hash)s)
RETURNING policy_id
"""

REVOKE_POLICY = """
UPDATE release_policies SET active = false, revoked_at = %(at)s,
    revoked_by_user_id = %(user_id)s, revoked_by_username = %(username)s,
    revoked_by_name = %(name)s, revoke_reason = %(reason)s,
    revoke_signature_hash = %(signature_hash)s, version = version + 1
WHERE policy_id = %(id)s AND active AND version = %(expected_version)s
RETURNING policy_id
"""

INSERT_EVENT = """
INSERT INTO release_policy_events (policy_id, at, event, actor, reason, shipment_id,
                                   disposition_id)
VALUES (%(id)s, %(at)s, %(event)s, %(actor)s, %(reason)s, %(shipment_id)s, %(disposition_id)s)
"""

SELECT_EVENTS = """
SELECT event_id, at, event, actor, reason, shipment_id, disposition_id
FROM release_policy_events WHERE policy_id = %(id)s ORDER BY event_id
"""

# A shipment's lane and every product on board (its items and its own product), each with the
# active policy covering it, if any. A shipment is covered when *every* product on board is
# covered (by its product's policy or by the lane's): a lane policy covers all of them.
COVERAGE = """
WITH on_board AS (
    SELECT gtin FROM shipment_items WHERE shipment_id = %(id)s
    UNION SELECT product_gtin FROM shipments WHERE shipment_id = %(id)s AND product_gtin IS NOT NULL
)
SELECT b.gtin,
       (SELECT p.policy_id FROM release_policies p WHERE p.active AND p.gtin = b.gtin)
           AS product_policy_id,
       (SELECT p.policy_id FROM release_policies p JOIN shipments s ON s.lane_id = p.lane_id
        WHERE p.active AND s.shipment_id = %(id)s) AS lane_policy_id
FROM on_board b ORDER BY b.gtin
"""


def list_policies(*, conn: Conn, active: bool | None = None) -> list[Row]:
    """Every policy (only the active ones, or only the revoked ones), oldest first."""
    return conn.execute(LIST_POLICIES, {"active": active}).fetchall()


def policy(*, conn: Conn, policy_id: int, lock: bool = False) -> Row | None:
    """One policy (locked until the transaction ends with ``lock``)."""
    sql = SELECT_POLICY_FOR_UPDATE if lock else SELECT_POLICY
    return conn.execute(sql, {"id": policy_id}).fetchone()


def active_for_scope(*, conn: Conn, gtin: str | None, lane_id: int | None) -> Row | None:
    """The active policy of the product or of the lane, if any."""
    return conn.execute(ACTIVE_FOR_SCOPE, {"gtin": gtin, "lane_id": lane_id}).fetchone()


def insert_policy(*, conn: Conn, values: dict[str, Any]) -> int:
    """Store a signed policy; its id."""
    row = conn.execute(INSERT_POLICY, values).fetchone()
    assert row is not None
    return int(row["policy_id"])


def revoke_policy(
    *,
    conn: Conn,
    policy_id: int,
    expected_version: int,
    at: datetime,
    user_id: int,
    username: str,
    name: str,
    reason: str,
    signature_hash: str,
) -> bool:
    """Revoke the active policy at ``expected_version``; False if it was not (any more)."""
    params = {
        "id": policy_id,
        "expected_version": expected_version,
        "at": at,
        "user_id": user_id,
        "username": username,
        "name": name,
        "reason": reason,
        "signature_hash": signature_hash,
    }
    return conn.execute(REVOKE_POLICY, params).fetchone() is not None


def add_event(
    *,
    conn: Conn,
    policy_id: int,
    at: datetime,
    event: str,
    actor: str,
    reason: str | None = None,
    shipment_id: int | None = None,
    disposition_id: int | None = None,
) -> None:
    """Append to the policy's history."""
    conn.execute(
        INSERT_EVENT,
        {
            "id": policy_id,
            "at": at,
            "event": event,
            "actor": actor,
            "reason": reason,
            "shipment_id": shipment_id,
            "disposition_id": disposition_id,
        },
    )


def events(*, conn: Conn, policy_id: int) -> list[Row]:
    """The policy's history, oldest first."""
    return conn.execute(SELECT_EVENTS, {"id": policy_id}).fetchall()


def coverage(*, conn: Conn, shipment_id: int) -> list[Row]:
    """Each product on board with the active policy of its product and of the shipment's lane."""
    return conn.execute(COVERAGE, {"id": shipment_id}).fetchall()
