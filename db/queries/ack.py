"""One-time acknowledgement links and SMS reply codes (migration 0025): written by the rules
engine beside each notification (:mod:`alerts.outbox`), used by people (:mod:`services.ack`).

The engine's statements are plain constants run on its asynchronous connections; the web
process's are functions on a dict-row :data:`~db.types.Conn`, as in every query module.
"""

from __future__ import annotations

from datetime import datetime

from db.types import Conn, Row

# The engine's side ---------------------------------------------------------------------------

# A code whose link expired unused goes back to the pool (a reply with it is then unknown):
# six digits are a million codes, and only the live ones must be unique.
RELEASE_EXPIRED_CODES = """
UPDATE ack_links SET reply_code = NULL
WHERE reply_code IS NOT NULL AND used_at IS NULL AND expires_at < %(now)s
"""

LIVE_REPLY_CODES = """
SELECT reply_code FROM ack_links
WHERE reply_code = ANY(%(codes)s::text[]) AND used_at IS NULL
"""

# The person a link is sent to: the one active person with that e-mail (any case) or phone;
# none when nobody, or several people, have it.
INSERT_ACK_LINK = """
INSERT INTO ack_links (token_hash, alert_id, notification_id, channel, target, username,
                       reply_code, expires_at)
SELECT %(token_hash)s, %(alert_id)s, %(notification_id)s, %(channel)s, %(target)s,
       (SELECT min(u.username) FROM app_users u
        WHERE u.active AND (lower(u.email) = lower(%(target)s) OR u.phone = %(target)s)
        HAVING count(*) = 1),
       %(reply_code)s, %(expires_at)s
"""

# The web side --------------------------------------------------------------------------------

_LINK_COLUMNS = """
l.id, l.alert_id, l.notification_id, l.channel, l.target, l.username, l.reply_code,
l.expires_at, l.used_at, l.used_by, l.created_at,
a.state AS alert_state, a.severity, a.title, a.rule_key, a.created_at AS alert_created_at,
a.triggered_at, a.acked_by, a.acked_at, s.reference AS shipment_reference
"""

LINK_BY_HASH = f"""
SELECT {_LINK_COLUMNS}
FROM ack_links l JOIN alerts a USING (alert_id) JOIN shipments s ON s.shipment_id = a.shipment_id
WHERE l.token_hash = %(token_hash)s
FOR UPDATE OF l
"""

# The newest link with that code: live codes are unique, a used one is kept for "already used".
LINK_BY_REPLY_CODE = f"""
SELECT {_LINK_COLUMNS}
FROM ack_links l JOIN alerts a USING (alert_id) JOIN shipments s ON s.shipment_id = a.shipment_id
WHERE l.reply_code = %(code)s
ORDER BY l.used_at IS NULL DESC, l.created_at DESC
LIMIT 1
FOR UPDATE OF l
"""

USE_LINK = """
UPDATE ack_links SET used_at = %(at)s, used_by = %(by)s
WHERE id = %(id)s AND used_at IS NULL
RETURNING id
"""

PERSON_FOR_ACK = """
SELECT user_id, username, full_name, role, active, phone, email, ack_pin_hash
FROM app_users WHERE username = %(username)s
"""

PERSON_BY_PHONE = """
SELECT user_id, username, full_name, role, active, phone, email, ack_pin_hash
FROM app_users WHERE phone = %(phone)s
"""

SET_ACK_PIN = """
UPDATE app_users SET ack_pin_hash = %(pin_hash)s WHERE username = %(username)s
RETURNING username
"""


def link_by_hash(*, conn: Conn, token_hash: str) -> Row | None:
    """The link with this token hash and its alert, locked for the transaction; None if none."""
    return conn.execute(LINK_BY_HASH, {"token_hash": token_hash}).fetchone()


def link_by_reply_code(*, conn: Conn, code: str) -> Row | None:
    """The link an SMS reply code names (the live one first), locked; None if none."""
    return conn.execute(LINK_BY_REPLY_CODE, {"code": code}).fetchone()


def use_link(*, conn: Conn, link_id: int, by: str, at: datetime) -> bool:
    """Mark a link used; False when it was used already (another request won)."""
    return conn.execute(USE_LINK, {"id": link_id, "by": by, "at": at}).fetchone() is not None


def person_for_ack(*, conn: Conn, username: str) -> Row | None:
    """A person with their PIN hash (active or not); None if unknown."""
    return conn.execute(PERSON_FOR_ACK, {"username": username}).fetchone()


def person_by_phone(*, conn: Conn, phone: str) -> Row | None:
    """The person with this mobile number; None if nobody has it."""
    return conn.execute(PERSON_BY_PHONE, {"phone": phone}).fetchone()


def set_ack_pin(*, conn: Conn, username: str, pin_hash: str | None) -> bool:
    """Set (or with None clear) a person's PIN hash; False if there is no such person."""
    row = conn.execute(SET_ACK_PIN, {"username": username, "pin_hash": pin_hash}).fetchone()
    return row is not None
