"""People and API keys as administrators manage them (list, add, change role, deactivate,
reactivate, reset a password; create and revoke keys), and logging in and out, for the API, the
dashboard and the ``coldchain`` command alike.

The work itself (name and password rules, hashing, tokens, the audited writes) is
:mod:`security.accounts`; this module adds who may ask (``admin`` for managing accounts), the
caller as the audit trail's actor, the rules of the operation (a generated password when none
is given; an administrator cannot deactivate themselves nor change their own role; a reset
password ends the person's sessions), and one error per outcome: a person or
key that is not there is :class:`~coldchain.errors.NotFoundError`, a request that cannot be
carried out :class:`~coldchain.errors.AccountError`.

Listing users and keys is an administrator's read, so it takes a caller too
(see :mod:`services`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from coldchain.errors import AccountError, InvalidRecordError, NotFoundError
from coldchain.settings import SecuritySettings
from db.queries import security as q
from db.types import Conn, Row
from security import accounts, passwords
from security.accounts import Principal, TokenKind
from security.ratelimit import LoginLimiter
from security.roles import ROLES
from services.caller import Caller, acting


@dataclass(frozen=True, slots=True)
class NewUser:
    """A person just created (as :func:`security.accounts.public_user` shows them), and the
    generated password, to be shown once (None when the caller gave one)."""

    user: dict[str, Any]
    password: str | None


def list_users(conn: Conn, caller: Caller) -> list[Row]:
    """Everyone, active or not (never a password hash)."""
    caller.require("admin")
    return q.list_users(conn=conn)


def create_user(
    conn: Conn,
    caller: Caller,
    *,
    username: str,
    full_name: str,
    role: str,
    password: str | None,
    security: SecuritySettings,
) -> NewUser:
    """Create a person with a role; without ``password`` one is generated (and returned once).
    AccountError for a bad or taken name or role, WeakPasswordError for a weak password."""
    caller.require("admin")
    generated = password is None
    secret = passwords.generate_password(username=username) if password is None else password
    row = accounts.create_user(
        conn,
        username=username,
        full_name=full_name,
        role=role,
        password=secret,
        min_length=security.password_min_length,
        ctx=caller.context("user created"),
    )
    return NewUser(accounts.public_user(row), secret if generated else None)


def deactivate_user(
    conn: Conn, caller: Caller, *, username: str, reason: str | None = None
) -> dict[str, Any]:
    """Deactivate a person and revoke every token and session they hold; NotFoundError if there
    is no such active person, AccountError for the caller themselves (an administrator cannot
    lock themselves out)."""
    caller.require("admin")
    # A person's actor is their user name; an API key's and the console's have a prefix
    # (``apikey:``, ``cli:``) that no user name can carry.
    if accounts.normalise_username(username) == caller.actor:
        raise AccountError("you cannot deactivate yourself")
    try:
        row = accounts.deactivate_user(
            conn, username=username, ctx=caller.context(reason or "user deactivated")
        )
    except AccountError as exc:
        raise NotFoundError(str(exc)) from None
    return accounts.public_user(row)


def change_role(
    conn: Conn, caller: Caller, *, username: str, role: str, reason: str | None = None
) -> dict[str, Any]:
    """Give a person another role, effective at their next request. NotFoundError for no such
    person; AccountError for an unknown role, the role they have, or the caller themselves (an
    administrator cannot take their own rights away, nor hand themselves others)."""
    caller.require("admin")
    username = accounts.normalise_username(username)
    if username == caller.actor:
        raise AccountError("you cannot change your own role: ask another administrator")
    if role not in ROLES:
        raise AccountError(f"role {role!r}: one of {', '.join(ROLES)}")
    user = _user(conn, username)
    with acting(conn, caller, reason or f"role changed to {role}"):
        row = q.set_role(conn=conn, username=username, role=role)
    if row is None:
        raise AccountError(f"{username} has the role {user['role']} already")
    return accounts.public_user(row)


def reactivate_user(
    conn: Conn, caller: Caller, *, username: str, reason: str | None = None
) -> dict[str, Any]:
    """Let a deactivated person log in again with their password (the tokens they held stay
    revoked). NotFoundError for no such person; AccountError if they are active."""
    caller.require("admin")
    username = accounts.normalise_username(username)
    _user(conn, username)
    with acting(conn, caller, reason or "user reactivated"):
        row = q.reactivate_user(conn=conn, username=username)
    if row is None:
        raise AccountError(f"{username} is active already")
    return accounts.public_user(row)


def reset_password(
    conn: Conn,
    caller: Caller,
    *,
    username: str,
    password: str | None,
    security: SecuritySettings,
    reason: str | None = None,
) -> NewUser:
    """Give a person a new password (generated when ``password`` is None, and returned once)
    and end every session and token they hold, so whoever knew the old one is out.
    NotFoundError for no such person; WeakPasswordError for a weak password."""
    caller.require("admin")
    username = accounts.normalise_username(username)
    user = _user(conn, username)
    generated = password is None
    secret = passwords.generate_password(username=username) if password is None else password
    passwords.check_policy(secret, min_length=security.password_min_length, username=username)
    password_hash = passwords.hash_password(secret)
    with acting(conn, caller, reason or "password reset"), conn.transaction():
        q.set_password_hash(conn=conn, user_id=user["user_id"], password_hash=password_hash)
        q.revoke_user_tokens(conn=conn, user_id=user["user_id"])
    return NewUser(accounts.public_user(user), secret if generated else None)


#: What the database accepts (db/migrations/0023_people_contacts.sql), checked here first so
#: that the refusal names the field.
EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,255}$")
PHONE = re.compile(r"^\+[1-9][0-9]{6,14}$")


def set_contacts(
    conn: Conn,
    caller: Caller,
    *,
    username: str,
    email: str | None,
    phone: str | None,
    reason: str | None = None,
) -> Row:
    """Set how a person is reached when on call: e-mail address and mobile number in E.164
    (``+41791234567``); blank or None clears one. NotFoundError for no such person;
    InvalidRecordError naming ``email`` or ``phone`` for a malformed value, AccountError
    (naming ``phone``) for a number another person has."""
    caller.require("admin")
    username = accounts.normalise_username(username)
    mail = (email or "").strip() or None
    mobile = (phone or "").replace(" ", "").strip() or None
    if mail is not None and not EMAIL.match(mail):
        raise InvalidRecordError("email", f"{mail!r} is not an e-mail address")
    if mobile is not None and not PHONE.match(mobile):
        raise InvalidRecordError(
            "phone", f"{mobile!r} is not a mobile number in E.164 form (such as +41791234567)"
        )
    _user(conn, username)
    with acting(conn, caller, reason or "contacts changed"), conn.transaction():
        if mobile is not None and (
            other := q.phone_holder(conn=conn, phone=mobile, username=username)
        ):
            raise AccountError(f"phone: {mobile} is {other}'s number already")
        row = q.set_contacts(conn=conn, username=username, email=mail, phone=mobile)
    if row is None:
        raise NotFoundError(f"no user {username!r}")
    return row


def _user(conn: Conn, username: str) -> Row:
    row = q.user_for_login(conn=conn, username=username)
    if row is None:
        raise NotFoundError(f"no user {username!r}")
    return row


def list_api_keys(conn: Conn, caller: Caller) -> list[Row]:
    """Every API key, live or revoked (never a key itself)."""
    caller.require("admin")
    return q.list_api_keys(conn=conn)


def create_api_key(
    conn: Conn, caller: Caller, *, name: str, role: str, expires_at: datetime | None
) -> tuple[str, Row]:
    """A new API key: (the key, shown this once; its row). AccountError for a bad or used name
    or a role keys may not carry."""
    caller.require("admin")
    return accounts.create_api_key(
        conn, name=name, role=role, expires_at=expires_at, ctx=caller.context("API key created")
    )


def revoke_api_key(conn: Conn, caller: Caller, *, name: str) -> Row:
    """Revoke a live API key at once; NotFoundError if there is no live key of that name."""
    caller.require("admin")
    try:
        return accounts.revoke_api_key(conn, name=name, ctx=caller.context("API key revoked"))
    except AccountError as exc:
        raise NotFoundError(str(exc)) from None


def token_ttl(kind: TokenKind, security: SecuritySettings) -> timedelta:
    """How long a new token lives: an API bearer token ``token_ttl_h``, a dashboard session
    ``session_ttl_h``."""
    hours = security.token_ttl_h if kind == "api" else security.session_ttl_h
    return timedelta(hours=hours)


def login(
    conn: Conn,
    *,
    username: str,
    password: str,
    kind: TokenKind,
    security: SecuritySettings,
    limiter: LoginLimiter,
    client: str | None,
    now: datetime | None = None,
) -> tuple[str, Principal, datetime]:
    """A person's credentials for a new bearer token (``kind="api"``) or dashboard session:
    (the secret, returned once; who it stands for; when it expires). AuthenticationError, or
    RateLimitedError after too many failures, never saying which part was wrong."""
    return accounts.login(
        conn,
        username=username,
        password=password,
        kind=kind,
        ttl=token_ttl(kind, security),
        now=now or datetime.now(UTC),
        limiter=limiter,
        client=client,
    )


def logout(conn: Conn, principal: Principal, *, source: str | None) -> bool:
    """Revoke the token or session ``principal`` presented; False if there was none (an API key
    is revoked by an administrator instead)."""
    return accounts.logout(conn, principal, source=source)
