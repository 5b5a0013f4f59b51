"""People and machine clients against the database: create, log in, resolve a token, revoke.

The edge of the security package: it reads and writes through :mod:`db.queries.security` and
takes the clock from the database (``now()``) or from the caller. Every change happens inside
:func:`security.audit.audit_context`, so the audit triggers record who did it, from where and
why; logins and revocations, which are not row changes of audited tables, are appended
explicitly.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Literal

import psycopg

from db.queries import security as q
from db.types import Conn, Row
from security import passwords, tokens
from security.audit import AuditContext, audit_context
from security.errors import AccountError, AuthenticationError
from security.ratelimit import LoginLimiter
from security.roles import API_KEY_ROLES, ROLES, Permission, Role, can

USERNAME_RE = re.compile(r"^[a-z0-9][a-z0-9._@-]{1,63}$")
KEY_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
TokenKind = Literal["api", "dashboard"]


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a person (by token or session) or a machine (by API key)."""

    kind: Literal["user", "api_key"]
    id: int
    name: str  # user name, or the key's name
    display_name: str  # printed name, or "API key <name>"
    role: Role
    token_id: int | None = None  # the person's token or session in use
    # The secret presented, handed to the database with each audited change (security.audit).
    secret: str | None = field(default=None, repr=False, compare=False)

    @property
    def actor(self) -> str:
        """How the audit trail and the alert history name this principal."""
        return self.name if self.kind == "user" else f"apikey:{self.name}"

    def can(self, permission: Permission) -> bool:
        """Whether the principal's role allows ``permission``."""
        return can(self.role, permission)

    def context(self, source: str | None, reason: str | None = None) -> AuditContext:
        """The audit context of a change this principal makes."""
        return AuditContext(self.actor, self.role, source, reason, self.secret)


def normalise_username(username: str) -> str:
    """User names are case-insensitive: stored and compared in lower case, trimmed."""
    return username.strip().lower()


def _principal(row: Row) -> Principal:
    return Principal(
        kind="user",
        id=int(row["user_id"]),
        name=row["username"],
        display_name=row["full_name"],
        role=row["role"],
        token_id=row.get("token_id"),
    )


def create_user(
    conn: Conn,
    *,
    username: str,
    full_name: str,
    role: str,
    password: str,
    min_length: int,
    ctx: AuditContext,
) -> Row:
    """A new person; AccountError for a bad or taken name or role, WeakPasswordError for a weak
    password."""
    username = normalise_username(username)
    if not USERNAME_RE.match(username):
        raise AccountError(
            f"user name {username!r}: 2–64 characters, lower-case letters, digits and . _ @ -, "
            "starting with a letter or digit"
        )
    if role not in ROLES:
        raise AccountError(f"role {role!r}: one of {', '.join(ROLES)}")
    full_name = " ".join(full_name.split())
    if not 1 <= len(full_name) <= 200:
        raise AccountError("the printed name (full name) must have 1–200 characters")
    passwords.check_policy(password, min_length=min_length, username=username)
    password_hash = passwords.hash_password(password)
    try:
        with audit_context(conn, ctx), conn.transaction():
            return q.insert_user(
                conn=conn,
                username=username,
                full_name=full_name,
                role=role,
                password_hash=password_hash,
            )
    except psycopg.errors.UniqueViolation:
        raise AccountError(f"user name {username!r} is taken") from None


def authenticate(
    conn: Conn,
    *,
    username: str,
    password: str,
    limiter: LoginLimiter,
    client: str | None,
) -> Row:
    """The active person with these credentials; AuthenticationError (or RateLimitedError)
    otherwise. Failures are counted, audited, and cost as much time for an unknown name."""
    username = normalise_username(username)
    # Counted before the password is checked (RateLimitedError when over a limit), so parallel
    # attempts cannot all be checked; it stays a failure unless it succeeds below.
    attempt = limiter.begin(user=username, client=client)
    row = q.user_for_login(conn=conn, username=username) if len(username) <= 64 else None
    stored = row["password_hash"] if row is not None and row["active"] else passwords.dummy_hash()
    ok = passwords.verify_password(stored, password) and row is not None and row["active"]
    if not ok or row is None:
        q.append_audit(
            conn=conn,
            actor=username[:64] or "(empty)",
            actor_role=None,
            action="login_failed",
            entity="auth",
            entity_id=username[:64] or None,
            source=client,
        )
        raise AuthenticationError("wrong user name or password, or the account is inactive")
    limiter.succeeded(attempt)
    if passwords.needs_rehash(row["password_hash"]):
        q.set_password_hash(
            conn=conn,
            user_id=row["user_id"],
            password_hash=passwords.hash_password(password),
            rehash=True,
        )
    return row


def issue_token(
    conn: Conn, *, user: Row, kind: TokenKind, ttl: timedelta, now: datetime, client: str | None
) -> tuple[str, Principal, datetime]:
    """A new bearer token or dashboard session for ``user``: (secret, principal, expires_at).
    The secret is returned once; only its hash is stored."""
    secret = tokens.new_secret("person")
    stored = q.insert_token(
        conn=conn,
        user_id=user["user_id"],
        token_hash=tokens.secret_hash(secret),
        kind=kind,
        expires_at=now + ttl,
        client=client,
    )
    principal = _principal({**user, "token_id": stored["token_id"]})
    q.append_audit(
        conn=conn,
        actor=principal.actor,
        actor_role=principal.role,
        action="login",
        entity="auth",
        entity_id=principal.name,
        after={"token_id": stored["token_id"], "kind": kind},
        source=client,
    )
    return secret, principal, stored["expires_at"]


def login(
    conn: Conn,
    *,
    username: str,
    password: str,
    kind: TokenKind,
    ttl: timedelta,
    now: datetime,
    limiter: LoginLimiter,
    client: str | None,
) -> tuple[str, Principal, datetime]:
    """Check the credentials and issue a token: (secret, principal, expires_at)."""
    user = authenticate(conn, username=username, password=password, limiter=limiter, client=client)
    return issue_token(conn, user=user, kind=kind, ttl=ttl, now=now, client=client)


def principal_for_secret(
    conn: Conn, secret: str, *, kinds: tuple[TokenKind, ...] = ("api",)
) -> Principal | None:
    """The principal a presented token or API key stands for; None if it is not a live one.

    A dashboard session is not a bearer token (and the reverse): ``kinds`` says which person
    tokens are accepted here.
    """
    kind = tokens.kind_of(secret)
    if kind == "person":
        row = q.resolve_token(conn=conn, token_hash=tokens.secret_hash(secret))
        if row is None or row["kind"] not in kinds:
            return None
        return replace(_principal(row), secret=secret)
    if kind == "api_key":
        key = q.resolve_api_key(conn=conn, key_hash=tokens.secret_hash(secret))
        if key is None:
            return None
        return Principal(
            kind="api_key",
            id=int(key["key_id"]),
            name=key["name"],
            display_name=f"API key {key['name']}",
            role=key["role"],
            secret=secret,
        )
    return None


def logout(conn: Conn, principal: Principal, *, source: str | None) -> bool:
    """Revoke the principal's token or session; False if there was none to revoke."""
    if principal.token_id is None:
        return False
    revoked = q.revoke_token(conn=conn, token_id=principal.token_id)
    if revoked:
        q.append_audit(
            conn=conn,
            actor=principal.actor,
            actor_role=principal.role,
            action="logout",
            entity="auth",
            entity_id=principal.name,
            after={"token_id": principal.token_id},
            source=source,
        )
    return revoked


def deactivate_user(conn: Conn, *, username: str, ctx: AuditContext) -> Row:
    """Deactivate a person and revoke all their tokens; AccountError if no such active person."""
    username = normalise_username(username)
    with audit_context(conn, ctx):
        row = q.deactivate_user(conn=conn, username=username)
    if row is None:
        raise AccountError(f"no active user {username!r}")
    return row


def create_api_key(
    conn: Conn,
    *,
    name: str,
    role: str,
    expires_at: datetime | None,
    ctx: AuditContext,
) -> tuple[str, Row]:
    """A new API key: (secret, row). The secret is shown once; only its hash is stored."""
    if not KEY_NAME_RE.match(name):
        raise AccountError(
            f"key name {name!r}: 1–64 letters, digits and . _ -, starting with a letter or digit"
        )
    if role not in API_KEY_ROLES:
        raise AccountError(
            f"role {role!r}: an API key is one of {', '.join(API_KEY_ROLES)} (signing needs a person)"
        )
    secret = tokens.new_secret("api_key")
    try:
        with audit_context(conn, ctx), conn.transaction():
            row = q.insert_api_key(
                conn=conn,
                name=name,
                role=role,
                key_hash=tokens.secret_hash(secret),
                prefix=secret[: tokens.SHOWN_PREFIX_LENGTH],
                created_by=ctx.actor,
                expires_at=expires_at,
            )
    except psycopg.errors.UniqueViolation:
        raise AccountError(f"an API key named {name!r} exists (names are never reused)") from None
    return secret, row


def revoke_api_key(conn: Conn, *, name: str, ctx: AuditContext) -> Row:
    """Revoke a live API key; AccountError if there is none of that name."""
    with audit_context(conn, ctx):
        row = q.revoke_api_key(conn=conn, name=name)
    if row is None:
        raise AccountError(f"no live API key named {name!r}")
    return row


def public_user(row: Row) -> dict[str, Any]:
    """A person as the API and the CLI show them (never the hash)."""
    keys = ("user_id", "username", "full_name", "role", "active", "created_at", "deactivated_at")
    return {k: row.get(k) for k in keys}


def ensure_demo_user(
    conn: Conn, *, username: str, full_name: str, role: str, ctx: AuditContext
) -> str:
    """Create a demo account, or give the existing one a new password; returns the password.

    For ``coldchain up``'s demo only: every start prints working passwords, so nobody needs to
    remember the last ones.
    """
    password = passwords.generate_password(username=username)
    row = q.user_for_login(conn=conn, username=username)
    if row is None:
        create_user(
            conn,
            username=username,
            full_name=full_name,
            role=role,
            password=password,
            min_length=12,
            ctx=ctx,
        )
        return password
    with audit_context(conn, ctx):
        q.set_password_hash(
            conn=conn, user_id=row["user_id"], password_hash=passwords.hash_password(password)
        )
    return password
