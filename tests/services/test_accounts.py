"""services.accounts against the real database: only administrators manage people and keys, the
caller is the audit trail's actor, a missing person or key is NotFoundError, and a token lives as
long as its kind says."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from coldchain.errors import (
    AccountError,
    AuthenticationError,
    NotFoundError,
    PermissionDeniedError,
)
from coldchain.settings import SecuritySettings
from security import passwords
from security.accounts import principal_for_secret
from security.ratelimit import LoginLimiter
from security.roles import Role
from services import accounts as service
from services.caller import Caller
from tests.fixtures.auth import PASSWORD, PEOPLE
from tests.services.conftest import SOURCE, audit_rows

pytestmark = pytest.mark.integration

CallerOf = Callable[[Role], Caller]
SECURITY = SecuritySettings(token_ttl_h=1, session_ttl_h=5)


def _users(conn: psycopg.Connection[Any]) -> list[tuple[str, bool]]:
    rows = conn.execute("SELECT username, active FROM app_users ORDER BY username").fetchall()
    return [(r["username"], r["active"]) for r in rows]


def test_an_admin_creates_a_person_with_a_generated_password(
    conn: psycopg.Connection[Any], caller: CallerOf
) -> None:
    created = service.create_user(
        conn,
        caller("admin"),
        username="Nina.Night",
        full_name="Nina  Night",
        role="operator",
        password=None,
        security=SECURITY,
    )
    assert (created.user["username"], created.user["full_name"]) == ("nina.night", "Nina Night")
    assert created.password is not None and "password_hash" not in created.user
    stored = conn.execute(
        "SELECT password_hash FROM app_users WHERE username = 'nina.night'"
    ).fetchone()
    assert stored is not None and passwords.verify_password(
        stored["password_hash"], created.password
    )
    (entry,) = [r for r in audit_rows(conn, "app_users") if r["action"] == "insert"][-1:]
    assert (entry["actor"], entry["reason"]) == (PEOPLE["admin"][0], "user created")
    assert entry["source"].startswith(SOURCE)
    given = service.create_user(
        conn,
        caller("admin"),
        username="omar.ops",
        full_name="Omar",
        role="viewer",
        password="a long enough passphrase",
        security=SECURITY,
    )
    assert given.password is None  # the caller knows it: it is not shown back


@pytest.mark.parametrize("role", ["viewer", "operator", "qa"])
def test_only_an_admin_manages_accounts(
    conn: psycopg.Connection[Any], caller: CallerOf, role: Role
) -> None:
    someone = caller(role)
    before = _users(conn)
    keys = conn.execute("SELECT count(*) AS n FROM api_keys").fetchone()
    with pytest.raises(PermissionDeniedError, match="'admin' permission"):
        service.create_user(
            conn,
            someone,
            username="sneaky",
            full_name="Sneaky",
            role="admin",
            password=None,
            security=SECURITY,
        )
    with pytest.raises(PermissionDeniedError):
        service.deactivate_user(conn, someone, username=PEOPLE["admin"][0])
    with pytest.raises(PermissionDeniedError):
        service.create_api_key(conn, someone, name="mine", role="admin", expires_at=None)
    with pytest.raises(PermissionDeniedError):
        service.list_users(conn, someone)
    with pytest.raises(PermissionDeniedError):
        service.list_api_keys(conn, someone)
    assert _users(conn) == before
    assert conn.execute("SELECT count(*) AS n FROM api_keys").fetchone() == keys


def test_deactivating_refuses_oneself_and_names_a_missing_person(
    conn: psycopg.Connection[Any], caller: CallerOf
) -> None:
    admin = caller("admin")
    with pytest.raises(AccountError, match="yourself"):
        service.deactivate_user(conn, admin, username=f" {PEOPLE['admin'][0].upper()} ")
    with pytest.raises(NotFoundError, match="no active user 'nobody'"):
        service.deactivate_user(conn, admin, username="nobody")
    qa = PEOPLE["qa"][0]
    row = service.deactivate_user(conn, admin, username=qa, reason="left the company")
    assert (row["username"], row["active"]) == (qa, False)
    assert (qa, False) in _users(conn) and (PEOPLE["admin"][0], True) in _users(conn)
    entry = [r for r in audit_rows(conn, "app_users") if r["action"] == "update"][-1]
    assert (entry["actor"], entry["reason"]) == (PEOPLE["admin"][0], "left the company")
    with pytest.raises(NotFoundError):  # not active any more
        service.deactivate_user(conn, admin, username=qa)


def test_api_keys_are_created_listed_and_revoked_by_name(
    conn: psycopg.Connection[Any], caller: CallerOf
) -> None:
    admin = caller("admin")
    secret, row = service.create_api_key(conn, admin, name="wms", role="viewer", expires_at=None)
    assert row["created_by"] == PEOPLE["admin"][0] and secret.startswith(row["prefix"])
    key = principal_for_secret(conn, secret)
    assert key is not None and key.actor == "apikey:wms"
    with pytest.raises(AccountError, match="never reused"):
        service.create_api_key(conn, admin, name="wms", role="viewer", expires_at=None)
    assert [k["name"] for k in service.list_api_keys(conn, admin)] == ["wms"]
    revoked = service.revoke_api_key(conn, admin, name="wms")
    assert revoked["revoked_at"] is not None and principal_for_secret(conn, secret) is None
    with pytest.raises(NotFoundError, match="'wms'"):
        service.revoke_api_key(conn, admin, name="wms")
    # (the key's own use, last_used_at, is recorded as the database role's, without a reason)
    assert [(r["actor"], r["reason"]) for r in audit_rows(conn, "api_keys") if r["reason"]] == [
        (PEOPLE["admin"][0], "API key created"),
        (PEOPLE["admin"][0], "API key revoked"),
    ]


def test_the_console_acts_as_admin_and_is_recorded_as_claimed(
    conn: psycopg.Connection[Any], people: Any
) -> None:
    console = Caller.console()
    service.deactivate_user(conn, console, username=PEOPLE["viewer"][0])
    entry = [r for r in audit_rows(conn, "app_users") if r["action"] == "update"][-1]
    assert entry["actor"] == console.actor and "actor not verified" in entry["source"]


@pytest.mark.parametrize(("kind", "hours"), [("api", 1), ("dashboard", 5)])
def test_login_gives_a_token_of_its_kinds_lifetime_and_logout_revokes_it(
    conn: psycopg.Connection[Any], people: Any, kind: Any, hours: int
) -> None:
    limiter = LoginLimiter(max_failures=5, window_s=60)
    now = datetime.now(UTC)
    username = PEOPLE["operator"][0]
    with pytest.raises(AuthenticationError):
        service.login(
            conn,
            username=username,
            password="wrong",
            kind=kind,
            security=SECURITY,
            limiter=limiter,
            client=SOURCE,
            now=now,
        )
    secret, principal, expires_at = service.login(
        conn,
        username=username.upper(),
        password=PASSWORD,
        kind=kind,
        security=SECURITY,
        limiter=limiter,
        client=SOURCE,
        now=now,
    )
    assert principal.name == username
    assert abs(expires_at - (now + timedelta(hours=hours))) < timedelta(seconds=1)
    found = principal_for_secret(conn, secret, kinds=(kind,))
    assert found is not None and found.token_id == principal.token_id
    assert service.logout(conn, principal, source=SOURCE) is True
    assert principal_for_secret(conn, secret, kinds=(kind,)) is None
    assert service.logout(conn, principal, source=SOURCE) is False


def test_an_admin_changes_a_role_at_once_but_never_their_own(
    conn: psycopg.Connection[Any], caller: CallerOf, people: dict[Role, Any]
) -> None:
    admin = caller("admin")
    operator = PEOPLE["operator"][0]
    changed = service.change_role(
        conn, admin, username=operator, role="viewer", reason="moved to logistics"
    )
    assert changed["role"] == "viewer"
    # Their live token carries the new role from the next request.
    principal = principal_for_secret(conn, people["operator"].token, kinds=("api",))
    assert principal is not None and principal.role == "viewer"
    last = audit_rows(conn, "app_users")[-1]
    assert (last["actor"], last["reason"], last["after"]["role"]) == (
        PEOPLE["admin"][0],
        "moved to logistics",
        "viewer",
    )
    with pytest.raises(AccountError, match="has the role viewer already"):
        service.change_role(conn, admin, username=operator, role="viewer")
    with pytest.raises(AccountError, match="role 'boss'"):
        service.change_role(conn, admin, username=operator, role="boss")
    with pytest.raises(AccountError, match="your own role"):
        service.change_role(conn, admin, username=PEOPLE["admin"][0], role="viewer")
    with pytest.raises(NotFoundError, match="no user 'nobody'"):
        service.change_role(conn, admin, username="nobody", role="viewer")
    with pytest.raises(PermissionDeniedError):
        service.change_role(conn, caller("qa"), username=operator, role="admin")


def test_a_deactivated_person_is_reactivated_with_their_password(
    conn: psycopg.Connection[Any], caller: CallerOf
) -> None:
    admin = caller("admin")
    viewer = PEOPLE["viewer"][0]
    service.deactivate_user(conn, admin, username=viewer)
    with pytest.raises(AccountError, match="is active already"):
        service.reactivate_user(conn, admin, username=PEOPLE["qa"][0])
    row = service.reactivate_user(conn, admin, username=viewer, reason="back from leave")
    assert row["active"] is True and row["deactivated_at"] is None
    token, _, _ = service.login(
        conn,
        username=viewer,
        password=PASSWORD,
        kind="dashboard",
        security=SECURITY,
        limiter=LoginLimiter(max_failures=5, window_s=60),
        client=SOURCE,
    )
    assert token
    listed = {u["username"]: u for u in service.list_users(conn, admin)}
    assert listed[viewer]["last_login_at"] is not None


def test_a_reset_password_is_shown_once_and_ends_the_persons_sessions(
    conn: psycopg.Connection[Any], caller: CallerOf, people: dict[Role, Any]
) -> None:
    operator = PEOPLE["operator"][0]
    with pytest.raises(PermissionDeniedError):
        service.reset_password(
            conn, caller("operator"), username=operator, password=None, security=SECURITY
        )
    reset = service.reset_password(
        conn, caller("admin"), username=operator, password=None, security=SECURITY
    )
    assert reset.password is not None and reset.user["username"] == operator
    # The old token is gone; the old password no longer works, the new one does.
    assert principal_for_secret(conn, people["operator"].token, kinds=("api",)) is None
    stored = conn.execute(
        "SELECT password_hash FROM app_users WHERE username = %s", (operator,)
    ).fetchone()
    assert stored is not None
    assert passwords.verify_password(stored["password_hash"], reset.password)
    assert not passwords.verify_password(stored["password_hash"], PASSWORD)
    assert audit_rows(conn, "app_users")[-1]["reason"] == "password reset"
