"""``coldchain policies list|add|revoke``: QA's auto-release policies (services/release_policies).

Signing and revoking are a QA person's acts, not the console's: ``--user`` names them and their
password is asked (or read from standard input), as ``coldchain recalls add`` does.
"""

from __future__ import annotations

import socket
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

import typer

from launcher.cli.common import connect, load_settings
from launcher.cli.masterdata import refusals

if TYPE_CHECKING:
    from db.types import Conn, Row
    from security.ratelimit import LoginLimiter
    from services.caller import Caller

app = typer.Typer(help="QA's auto-release policies (per product or lane).", no_args_is_help=True)

User = Annotated[str, typer.Option(help="Your user name (a QA person); your password is asked.")]
Reason = Annotated[str, typer.Option(help="Why (it is what your signature attests).")]
PasswordStdin = Annotated[
    bool, typer.Option(help="Read your password from standard input instead of asking.")
]


def _as_person(conn: Conn, user: str, password: str) -> tuple[Caller, LoginLimiter]:
    """The QA person as a caller, authenticated by their password."""
    from security.accounts import Principal, authenticate
    from security.ratelimit import LoginLimiter
    from services.caller import Caller

    settings = load_settings()
    limiter = LoginLimiter(
        max_failures=settings.security.login_max_failures,
        window_s=settings.security.login_window_s,
    )
    source = f"cli@{socket.gethostname()}"
    person = authenticate(conn, username=user, password=password, limiter=limiter, client=source)
    principal = Principal(
        kind="user",
        id=int(person["user_id"]),
        name=person["username"],
        display_name=person["full_name"],
        role=person["role"],
    )
    return Caller.of(principal, source), limiter


def _password(user: str, stdin: bool) -> str:
    if stdin:
        return sys.stdin.readline().rstrip("\n")
    return str(typer.prompt(f"password of {user}", hide_input=True))


def _show(row: Row) -> None:
    scope = f"GTIN {row['gtin']}" if row["gtin"] else f"lane {row['lane_id']}"
    state = "active" if row["active"] else f"revoked by {row['revoked_by_username']}"
    typer.echo(
        f"policy {row['policy_id']}: {scope}, signed by {row['signer_username']} on "
        f"{row['signed_at']} ({row['reason']}); {state}; {row['releases']} release(s)"
    )


@app.command("list")
def policies_list(
    active: Annotated[bool | None, typer.Option("--active/--revoked", help="Only those.")] = None,
) -> None:
    """Every policy, oldest first."""
    from services import release_policies

    with refusals(), connect(load_settings()) as conn:
        rows = release_policies.list_policies(conn, active=active)
    for row in rows:
        _show(row)


@app.command("add")
def policies_add(
    user: User,
    reason: Reason,
    gtin: Annotated[str | None, typer.Option(help="The product covered.")] = None,
    lane: Annotated[int | None, typer.Option(help="The lane covered (its id).")] = None,
    password_stdin: PasswordStdin = False,
) -> None:
    """Sign a policy as yourself, a QA person: conforming shipments in its scope are released
    automatically at arrival."""
    from services import release_policies

    password = _password(user, password_stdin)
    with refusals(), connect(load_settings()) as conn:
        caller, limiter = _as_person(conn, user, password)
        row, created = release_policies.create(
            conn, caller, scope=release_policies.Scope(gtin=gtin, lane_id=lane), reason=reason,
            password=password, limiter=limiter, now=datetime.now(UTC),
        )  # fmt: skip
    typer.echo("signed:" if created else "already active:")
    _show(row)


@app.command("revoke")
def policies_revoke(
    policy_id: Annotated[int, typer.Argument(help="The policy's id.")],
    user: User,
    reason: Reason,
    password_stdin: PasswordStdin = False,
) -> None:
    """Revoke a policy as yourself, a QA person (signed, with a reason)."""
    from services import release_policies

    password = _password(user, password_stdin)
    with refusals(), connect(load_settings()) as conn:
        caller, limiter = _as_person(conn, user, password)
        row = release_policies.revoke(
            conn, caller, policy_id=policy_id, reason=reason, password=password,
            limiter=limiter, now=datetime.now(UTC),
        )  # fmt: skip
    _show(row)
