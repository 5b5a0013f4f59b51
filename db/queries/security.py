"""Queries of people, tokens, API keys, MQTT credentials and the audit trail.

Keyword-only functions over a dict-row connection, every statement parameterised. Secrets never
pass through here in clear: callers hand in hashes (:mod:`security.tokens`,
:mod:`security.passwords`, :mod:`security.mosquitto`). Changes of these tables are recorded by
the audit triggers (db/migrations/0006_security.sql) with the context the caller put on the
connection (:func:`security.audit.audit_context`).
"""

from __future__ import annotations

from collections.abc import Generator
from datetime import datetime
from typing import Any

from psycopg.types.json import Jsonb

from db.types import Conn, Row

# --------------------------------------------------------------------------------------------
# People
# --------------------------------------------------------------------------------------------

_USER_COLUMNS = """user_id, username, full_name, role, active, created_at, password_changed_at,
    deactivated_at"""

INSERT_USER = f"""
INSERT INTO app_users (username, full_name, role, password_hash)
VALUES (%(username)s, %(full_name)s, %(role)s, %(password_hash)s)
RETURNING {_USER_COLUMNS}
"""

SELECT_USER_FOR_LOGIN = f"""
SELECT {_USER_COLUMNS}, password_hash FROM app_users WHERE username = %(username)s
"""

SELECT_USER_BY_ID = (
    f"SELECT {_USER_COLUMNS}, password_hash FROM app_users WHERE user_id = %(user_id)s"
)

# The last login is the newest token or session the person was issued (every login issues one).
LIST_USERS = f"""
SELECT {_USER_COLUMNS},
       (SELECT max(t.created_at) FROM auth_tokens t WHERE t.user_id = app_users.user_id)
           AS last_login_at
FROM app_users ORDER BY username
"""

SET_ROLE = f"""
UPDATE app_users SET role = %(role)s WHERE username = %(username)s AND role <> %(role)s
RETURNING {_USER_COLUMNS}
"""

REACTIVATE_USER = f"""
UPDATE app_users SET active = true, deactivated_at = NULL
WHERE username = %(username)s AND NOT active
RETURNING {_USER_COLUMNS}
"""

SET_PASSWORD_HASH = """
UPDATE app_users SET password_hash = %(password_hash)s, password_changed_at = now()
WHERE user_id = %(user_id)s
"""

REHASH_PASSWORD = (
    "UPDATE app_users SET password_hash = %(password_hash)s WHERE user_id = %(user_id)s"
)

DEACTIVATE_USER = f"""
UPDATE app_users SET active = false, deactivated_at = now()
WHERE username = %(username)s AND active
RETURNING {_USER_COLUMNS}
"""

# --------------------------------------------------------------------------------------------
# Tokens and sessions of people
# --------------------------------------------------------------------------------------------

INSERT_TOKEN = """
INSERT INTO auth_tokens (user_id, token_hash, kind, expires_at, client)
VALUES (%(user_id)s, %(token_hash)s, %(kind)s, %(expires_at)s, %(client)s)
RETURNING token_id, expires_at
"""

# A token is good while unexpired, unrevoked, and its person is active.
RESOLVE_TOKEN = f"""
SELECT t.token_id, t.kind, t.expires_at, t.last_used_at,
       {", ".join("u." + c.strip() for c in _USER_COLUMNS.split(","))}
FROM auth_tokens t JOIN app_users u USING (user_id)
WHERE t.token_hash = %(token_hash)s AND t.revoked_at IS NULL AND t.expires_at > now()
  AND u.active
"""

# last_used_at is kept to the minute: one write per token per minute, not per request.
TOUCH_TOKEN = """
UPDATE auth_tokens SET last_used_at = now()
WHERE token_id = %(token_id)s AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')
"""

REVOKE_TOKEN = """
UPDATE auth_tokens SET revoked_at = now()
WHERE token_id = %(token_id)s AND revoked_at IS NULL
RETURNING token_id
"""

REVOKE_USER_TOKENS = """
UPDATE auth_tokens SET revoked_at = now()
WHERE user_id = %(user_id)s AND revoked_at IS NULL
"""

# --------------------------------------------------------------------------------------------
# API keys
# --------------------------------------------------------------------------------------------

_KEY_COLUMNS = (
    "key_id, name, role, prefix, created_at, created_by, expires_at, revoked_at, last_used_at"
)

INSERT_API_KEY = f"""
INSERT INTO api_keys (name, role, key_hash, prefix, created_by, expires_at)
VALUES (%(name)s, %(role)s, %(key_hash)s, %(prefix)s, %(created_by)s, %(expires_at)s)
RETURNING {_KEY_COLUMNS}
"""

RESOLVE_API_KEY = f"""
SELECT {_KEY_COLUMNS} FROM api_keys
WHERE key_hash = %(key_hash)s AND revoked_at IS NULL
  AND (expires_at IS NULL OR expires_at > now())
"""

TOUCH_API_KEY = """
UPDATE api_keys SET last_used_at = now()
WHERE key_id = %(key_id)s AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')
"""

LIST_API_KEYS = f"SELECT {_KEY_COLUMNS} FROM api_keys ORDER BY name"

REVOKE_API_KEY = f"""
UPDATE api_keys SET revoked_at = now()
WHERE name = %(name)s AND revoked_at IS NULL
RETURNING {_KEY_COLUMNS}
"""

# --------------------------------------------------------------------------------------------
# MQTT credentials
# --------------------------------------------------------------------------------------------

# A retired logger gets no password again (retiring revoked it).
DEVICES_FOR_CREDENTIALS = """
SELECT d.device_id, c.password_hash, c.revoked_at
FROM devices d LEFT JOIN device_credentials c USING (device_id)
WHERE d.retired_at IS NULL
ORDER BY d.device_id
"""

UPSERT_DEVICE_CREDENTIAL = """
INSERT INTO device_credentials (device_id, password_hash)
VALUES (%(device_id)s, %(password_hash)s)
ON CONFLICT (device_id) DO UPDATE SET
    password_hash = EXCLUDED.password_hash, issued_at = now(), revoked_at = NULL
"""

REVOKE_DEVICE_CREDENTIAL = """
UPDATE device_credentials SET revoked_at = now()
WHERE device_id = %(device_id)s AND revoked_at IS NULL
RETURNING device_id
"""

ACTIVE_DEVICE_CREDENTIALS = """
SELECT device_id, password_hash FROM device_credentials WHERE revoked_at IS NULL
ORDER BY device_id
"""

UPSERT_SERVICE_ACCOUNT = """
INSERT INTO mqtt_service_accounts (username, kind, password_hash)
VALUES (%(username)s, %(kind)s, %(password_hash)s)
ON CONFLICT (username) DO UPDATE SET
    kind = EXCLUDED.kind, password_hash = EXCLUDED.password_hash, issued_at = now(),
    revoked_at = NULL
"""

ACTIVE_SERVICE_ACCOUNTS = """
SELECT username, kind, password_hash FROM mqtt_service_accounts WHERE revoked_at IS NULL
ORDER BY username
"""

# --------------------------------------------------------------------------------------------
# Audit trail
# --------------------------------------------------------------------------------------------

# Entries that are not row changes (logins, revocations), through the database's own function
# (the services' role may not INSERT into audit_log: db/migrations/0008). The actor and source
# given are claims: a session that presented a live credential is recorded as its principal.
APPEND_AUDIT = """
SELECT id, seq, hash FROM audit_append(
    %(actor)s, %(actor_role)s, %(action)s, %(entity)s, %(entity_id)s, %(before)s, %(after)s,
    %(reason)s, %(source)s)
"""

AUDIT_ENTRIES = """
SELECT id, seq, at, actor, actor_role, action, entity, entity_id, before::text AS before,
       after::text AS after, reason, source, prev_hash, hash
FROM audit_log ORDER BY seq
"""

LIST_AUDIT = """
SELECT id, seq, at, actor, actor_role, action, entity, entity_id, before, after, reason, source,
       hash, count(*) OVER () AS total
FROM audit_log
WHERE (%(entity)s::text IS NULL OR entity = %(entity)s)
  AND (%(entity_id)s::text IS NULL OR entity_id = %(entity_id)s)
  AND (%(actor)s::text IS NULL OR actor = %(actor)s)
ORDER BY seq DESC
LIMIT %(limit)s OFFSET %(offset)s
"""


def insert_user(*, conn: Conn, username: str, full_name: str, role: str, password_hash: str) -> Row:
    """A new active person; raises psycopg.errors.UniqueViolation for a taken user name."""
    row = conn.execute(
        INSERT_USER,
        {
            "username": username,
            "full_name": full_name,
            "role": role,
            "password_hash": password_hash,
        },
    ).fetchone()
    assert row is not None
    return row


def user_for_login(*, conn: Conn, username: str) -> Row | None:
    """A person with their password hash, active or not; None if unknown."""
    return conn.execute(SELECT_USER_FOR_LOGIN, {"username": username}).fetchone()


def user_by_id(*, conn: Conn, user_id: int) -> Row | None:
    """A person with their password hash; None if unknown."""
    return conn.execute(SELECT_USER_BY_ID, {"user_id": user_id}).fetchone()


def list_users(*, conn: Conn) -> list[Row]:
    """Everyone, active or not, by user name (no hashes)."""
    return conn.execute(LIST_USERS).fetchall()


def set_password_hash(
    *, conn: Conn, user_id: int, password_hash: str, rehash: bool = False
) -> None:
    """A new password (or, with ``rehash``, the same one under today's hash parameters)."""
    conn.execute(
        REHASH_PASSWORD if rehash else SET_PASSWORD_HASH,
        {"user_id": user_id, "password_hash": password_hash},
    )


def deactivate_user(*, conn: Conn, username: str) -> Row | None:
    """Deactivate an active person and revoke their tokens; None if no such active person."""
    with conn.transaction():
        row = conn.execute(DEACTIVATE_USER, {"username": username}).fetchone()
        if row is not None:
            conn.execute(REVOKE_USER_TOKENS, {"user_id": row["user_id"]})
    return row


def insert_token(
    *,
    conn: Conn,
    user_id: int,
    token_hash: str,
    kind: str,
    expires_at: datetime,
    client: str | None,
) -> Row:
    """Store a new token's hash; returns its id and expiry."""
    row = conn.execute(
        INSERT_TOKEN,
        {
            "user_id": user_id,
            "token_hash": token_hash,
            "kind": kind,
            "expires_at": expires_at,
            "client": client,
        },
    ).fetchone()
    assert row is not None
    return row


def resolve_token(*, conn: Conn, token_hash: str) -> Row | None:
    """The live token with that hash and its person; None if unknown, expired or revoked."""
    row = conn.execute(RESOLVE_TOKEN, {"token_hash": token_hash}).fetchone()
    if row is not None:
        conn.execute(TOUCH_TOKEN, {"token_id": row["token_id"]})
    return row


def revoke_token(*, conn: Conn, token_id: int) -> bool:
    """Revoke one token; False if it was revoked already."""
    return conn.execute(REVOKE_TOKEN, {"token_id": token_id}).fetchone() is not None


def insert_api_key(
    *,
    conn: Conn,
    name: str,
    role: str,
    key_hash: str,
    prefix: str,
    created_by: str,
    expires_at: datetime | None,
) -> Row:
    """Store a new API key's hash; raises UniqueViolation for a taken name."""
    row = conn.execute(
        INSERT_API_KEY,
        {
            "name": name,
            "role": role,
            "key_hash": key_hash,
            "prefix": prefix,
            "created_by": created_by,
            "expires_at": expires_at,
        },
    ).fetchone()
    assert row is not None
    return row


def resolve_api_key(*, conn: Conn, key_hash: str) -> Row | None:
    """The live key with that hash; None if unknown, expired or revoked."""
    row = conn.execute(RESOLVE_API_KEY, {"key_hash": key_hash}).fetchone()
    if row is not None:
        conn.execute(TOUCH_API_KEY, {"key_id": row["key_id"]})
    return row


def list_api_keys(*, conn: Conn) -> list[Row]:
    """Every key, live or revoked, by name (no hashes)."""
    return conn.execute(LIST_API_KEYS).fetchall()


def revoke_api_key(*, conn: Conn, name: str) -> Row | None:
    """Revoke a live key; None if there is no live key of that name."""
    return conn.execute(REVOKE_API_KEY, {"name": name}).fetchone()


def append_audit(
    *,
    conn: Conn,
    actor: str,
    actor_role: str | None,
    action: str,
    entity: str,
    entity_id: str | None,
    after: dict[str, Any] | None = None,
    before: dict[str, Any] | None = None,
    reason: str | None = None,
    source: str | None = None,
) -> Row:
    """An audit entry that is not a row change (login, logout, revocation…)."""
    row = conn.execute(
        APPEND_AUDIT,
        {
            "actor": actor,
            "actor_role": actor_role,
            "action": action,
            "entity": entity,
            "entity_id": entity_id,
            "before": None if before is None else Jsonb(before),
            "after": None if after is None else Jsonb(after),
            "reason": reason,
            "source": source,
        },
    ).fetchone()
    assert row is not None
    return row


def iter_audit_rows(*, conn: Conn, batch: int = 5000) -> Generator[Row, None, None]:
    """Every audit entry's row in chain order, streamed (a server-side cursor, not all in memory).

    :func:`security.audit.stored_entries` turns them into the records the chain is checked on."""
    with conn.transaction(), conn.cursor(name="audit_walk") as cur:
        cur.itersize = batch
        cur.execute(AUDIT_ENTRIES)
        yield from cur


def list_audit(
    *,
    conn: Conn,
    entity: str | None = None,
    entity_id: str | None = None,
    actor: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> tuple[list[Row], int]:
    """Audit entries, newest first, filtered; and how many match in all."""
    rows = conn.execute(
        LIST_AUDIT,
        {
            "entity": entity,
            "entity_id": entity_id,
            "actor": actor,
            "limit": limit,
            "offset": offset,
        },
    ).fetchall()
    total = int(rows[0]["total"]) if rows else 0
    return [{k: v for k, v in r.items() if k != "total"} for r in rows], total


def devices_for_credentials(*, conn: Conn) -> list[Row]:
    """Every live (not retired) logger with its current credential hash (None if none)."""
    return conn.execute(DEVICES_FOR_CREDENTIALS).fetchall()


def set_device_credential(*, conn: Conn, device_id: str, password_hash: str) -> None:
    """Issue (or replace) a logger's MQTT password hash."""
    conn.execute(UPSERT_DEVICE_CREDENTIAL, {"device_id": device_id, "password_hash": password_hash})


def revoke_device_credential(*, conn: Conn, device_id: str) -> bool:
    """Revoke a logger's MQTT password; False if it had no live one."""
    row = conn.execute(REVOKE_DEVICE_CREDENTIAL, {"device_id": device_id}).fetchone()
    return row is not None


def active_device_credentials(*, conn: Conn) -> list[Row]:
    """(device_id, password_hash) of every logger with a live credential."""
    return conn.execute(ACTIVE_DEVICE_CREDENTIALS).fetchall()


def set_service_account(*, conn: Conn, username: str, kind: str, password_hash: str) -> None:
    """Create or re-key an MQTT service account."""
    conn.execute(
        UPSERT_SERVICE_ACCOUNT, {"username": username, "kind": kind, "password_hash": password_hash}
    )


def active_service_accounts(*, conn: Conn) -> list[Row]:
    """Live MQTT service accounts with their hashes."""
    return conn.execute(ACTIVE_SERVICE_ACCOUNTS).fetchall()


def set_role(*, conn: Conn, username: str, role: str) -> Row | None:
    """Give a person another role (their live tokens carry it from their next request: a
    token's role is read from the person); None if no such person or the role is theirs."""
    return conn.execute(SET_ROLE, {"username": username, "role": role}).fetchone()


# How to reach a person when they are on call (issue 16; unique phone: app_users_phone).
SET_CONTACTS = """
UPDATE app_users SET email = %(email)s, phone = %(phone)s WHERE username = %(username)s
RETURNING username, full_name, email, phone
"""

PHONE_TAKEN = """
SELECT username FROM app_users WHERE phone = %(phone)s AND username <> %(username)s
"""


def set_contacts(*, conn: Conn, username: str, email: str | None, phone: str | None) -> Row | None:
    """A person's e-mail address and mobile number (None clears one); None if no such person."""
    params = {"username": username, "email": email, "phone": phone}
    return conn.execute(SET_CONTACTS, params).fetchone()


def phone_holder(*, conn: Conn, phone: str, username: str) -> str | None:
    """Who else has this mobile number, if anyone."""
    row = conn.execute(PHONE_TAKEN, {"phone": phone, "username": username}).fetchone()
    return None if row is None else str(row["username"])


def reactivate_user(*, conn: Conn, username: str) -> Row | None:
    """Let a deactivated person log in again (their old tokens stay revoked); None if there is
    no such inactive person."""
    return conn.execute(REACTIVATE_USER, {"username": username}).fetchone()


def revoke_user_tokens(*, conn: Conn, user_id: int) -> None:
    """Revoke every live token and session of a person."""
    conn.execute(REVOKE_USER_TOKENS, {"user_id": user_id})
