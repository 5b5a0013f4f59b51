"""``users`` and ``apikeys``: the people and machine clients of the API and the dashboard.

The operations are :mod:`services.accounts`, the API's own, done by the console caller
(``cli:<os user>``, as admin); a refusal prints ``error: …`` and exits 1.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from typing import Annotated

import typer

from launcher.cli.common import connect, load_settings

users_app = typer.Typer(
    help="People who log in to the API and the dashboard (roles: viewer, operator, qa, admin).",
    no_args_is_help=True,
)
apikeys_app = typer.Typer(help="API keys of machine clients.", no_args_is_help=True)


@users_app.command("add")
def users_add(
    username: Annotated[str, typer.Argument(help="Log-in name (lower case).")],
    role: Annotated[str, typer.Option(help="viewer, operator, qa or admin.")],
    name: Annotated[str, typer.Option(help="Printed name, shown with signatures.")],
    password_stdin: Annotated[
        bool, typer.Option(help="Read the password from standard input instead of generating one.")
    ] = False,
) -> None:
    """Create a person (the first admin comes from here). Prints a generated password once."""
    from coldchain.errors import ColdchainError
    from services import accounts
    from services.caller import Caller

    settings = load_settings()
    password = sys.stdin.readline().rstrip("\n") if password_stdin else None
    try:
        with connect(settings) as conn:
            created = accounts.create_user(
                conn,
                Caller.console(),
                username=username,
                full_name=name,
                role=role,
                password=password,
                security=settings.security,
            )
    except ColdchainError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    user = created.user
    typer.echo(f"user {user['username']} ({user['role']}, {user['full_name']}) created")
    if created.password is not None:
        typer.echo(f"password: {created.password}")
        typer.echo("(shown once; the database keeps only its argon2 hash)")


@users_app.command("list")
def users_list() -> None:
    """Everyone, active or not."""
    from services import accounts
    from services.caller import Caller

    settings = load_settings()
    with connect(settings) as conn:
        rows = accounts.list_users(conn, Caller.console())
    for r in rows:
        state = "active" if r["active"] else f"deactivated {r['deactivated_at']:%Y-%m-%d}"
        typer.echo(f"{r['username']:<24} {r['role']:<9} {state:<22} {r['full_name']}")


@users_app.command("revoke")
def users_revoke(
    username: Annotated[str, typer.Argument(help="The person to deactivate.")],
    reason: Annotated[str | None, typer.Option(help="Why (goes into the audit trail).")] = None,
) -> None:
    """Deactivate a person and revoke every token and session they hold."""
    from coldchain.errors import ColdchainError
    from services import accounts
    from services.caller import Caller

    settings = load_settings()
    try:
        with connect(settings) as conn:
            accounts.deactivate_user(conn, Caller.console(), username=username, reason=reason)
    except ColdchainError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"user {username} deactivated; their tokens and sessions are revoked")


@users_app.command("ack-pin")
def users_ack_pin(
    username: Annotated[str, typer.Argument(help="The person whose PIN is set.")],
    clear: Annotated[bool, typer.Option(help="Remove the PIN instead of setting one.")] = False,
) -> None:
    """Set a person's acknowledgement PIN (6-12 digits, read from standard input), used with
    one-time acknowledgement links (README "On-call")."""
    from coldchain.errors import ColdchainError
    from services import ack
    from services.caller import Caller

    settings = load_settings()
    pin = None if clear else sys.stdin.readline().strip()
    try:
        with connect(settings) as conn:
            ack.set_ack_pin(conn, Caller.console(), username=username, pin=pin)
    except ColdchainError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"acknowledgement PIN of {username} {'removed' if clear else 'set'}")


@apikeys_app.command("create")
def apikeys_create(
    name: Annotated[str, typer.Argument(help="A name for the client (unique, never reused).")],
    role: Annotated[str, typer.Option(help="viewer, operator or admin.")] = "viewer",
    days: Annotated[int | None, typer.Option(help="Expire after this many days.")] = None,
) -> None:
    """Create an API key; prints it once (send it as the X-API-Key header)."""
    from datetime import timedelta

    from coldchain.errors import ColdchainError
    from services import accounts
    from services.caller import Caller

    settings = load_settings()
    expires = None if days is None else datetime.now(UTC) + timedelta(days=days)
    try:
        with connect(settings) as conn:
            secret, row = accounts.create_api_key(
                conn, Caller.console(), name=name, role=role, expires_at=expires
            )
    except ColdchainError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"API key {row['name']} ({row['role']}) created")
    typer.echo(f"key: {secret}")
    typer.echo("(shown once; the database keeps only its SHA-256)")


@apikeys_app.command("revoke")
def apikeys_revoke(name: Annotated[str, typer.Argument(help="The key's name.")]) -> None:
    """Revoke an API key at once."""
    from coldchain.errors import ColdchainError
    from services import accounts
    from services.caller import Caller

    settings = load_settings()
    try:
        with connect(settings) as conn:
            accounts.revoke_api_key(conn, Caller.console(), name=name)
    except ColdchainError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"API key {name} revoked")
