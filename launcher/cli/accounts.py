"""``users`` and ``apikeys``: the people and machine clients of the API and the dashboard."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from typing import Annotated

import typer

from launcher.cli.common import cli_context, connect, load_settings

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
    from security import accounts, passwords
    from security.errors import SecurityError

    settings = load_settings()
    generated = not password_stdin
    password = (
        passwords.generate_password(username=username)
        if generated
        else sys.stdin.readline().rstrip("\n")
    )
    try:
        with connect(settings) as conn:
            row = accounts.create_user(
                conn,
                username=username,
                full_name=name,
                role=role,
                password=password,
                min_length=settings.security.password_min_length,
                ctx=cli_context("user created"),
            )
    except SecurityError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"user {row['username']} ({row['role']}, {row['full_name']}) created")
    if generated:
        typer.echo(f"password: {password}")
        typer.echo("(shown once; the database keeps only its argon2 hash)")


@users_app.command("list")
def users_list() -> None:
    """Everyone, active or not."""
    from db.queries import security as q

    settings = load_settings()
    with connect(settings) as conn:
        rows = q.list_users(conn=conn)
    for r in rows:
        state = "active" if r["active"] else f"deactivated {r['deactivated_at']:%Y-%m-%d}"
        typer.echo(f"{r['username']:<24} {r['role']:<9} {state:<22} {r['full_name']}")


@users_app.command("revoke")
def users_revoke(
    username: Annotated[str, typer.Argument(help="The person to deactivate.")],
    reason: Annotated[str | None, typer.Option(help="Why (goes into the audit trail).")] = None,
) -> None:
    """Deactivate a person and revoke every token and session they hold."""
    from security import accounts
    from security.errors import SecurityError

    settings = load_settings()
    try:
        with connect(settings) as conn:
            accounts.deactivate_user(
                conn, username=username, ctx=cli_context(reason or "user deactivated")
            )
    except SecurityError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"user {username} deactivated; their tokens and sessions are revoked")


@apikeys_app.command("create")
def apikeys_create(
    name: Annotated[str, typer.Argument(help="A name for the client (unique, never reused).")],
    role: Annotated[str, typer.Option(help="viewer, operator or admin.")] = "viewer",
    days: Annotated[int | None, typer.Option(help="Expire after this many days.")] = None,
) -> None:
    """Create an API key; prints it once (send it as the X-API-Key header)."""
    from datetime import timedelta

    from security import accounts
    from security.errors import SecurityError

    settings = load_settings()
    expires = None if days is None else datetime.now(UTC) + timedelta(days=days)
    try:
        with connect(settings) as conn:
            secret, row = accounts.create_api_key(
                conn, name=name, role=role, expires_at=expires, ctx=cli_context("API key created")
            )
    except SecurityError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"API key {row['name']} ({row['role']}) created")
    typer.echo(f"key: {secret}")
    typer.echo("(shown once; the database keeps only its SHA-256)")


@apikeys_app.command("revoke")
def apikeys_revoke(name: Annotated[str, typer.Argument(help="The key's name.")]) -> None:
    """Revoke an API key at once."""
    from security import accounts
    from security.errors import SecurityError

    settings = load_settings()
    try:
        with connect(settings) as conn:
            accounts.revoke_api_key(conn, name=name, ctx=cli_context("API key revoked"))
    except SecurityError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"API key {name} revoked")
