"""``coldchain db``: the database schema."""

from __future__ import annotations

from typing import Annotated

import typer

from coldchain.settings import Settings
from launcher.cli.common import load_settings

app = typer.Typer(help="Database schema.", no_args_is_help=True)


@app.command("migrate")
def db_migrate(
    ensure_app_role: Annotated[
        bool,
        typer.Option(
            help="First create (or update) the services' login role COLDCHAIN_DB__USER with "
            "COLDCHAIN_DB__PASSWORD, a member of coldchain_app that owns nothing; run as the "
            "owner COLDCHAIN_DB__OWNER_USER, who may create roles."
        ),
    ] = False,
) -> None:
    """Apply pending database migrations (idempotent)."""
    from db.migrate import migrate

    settings = load_settings()
    if ensure_app_role:
        _ensure_app_role(settings)
    # As the schema owner when one is set (COLDCHAIN_DB__OWNER_USER), else as the services' role.
    applied = migrate(settings.db.migration_dsn)
    typer.echo(
        f"applied {len(applied)} migration(s)" + (f": {', '.join(applied)}" if applied else "")
    )


def _ensure_app_role(settings: Settings) -> None:
    """The services' role for a deployment without ``coldchain up`` (Docker Compose)."""
    import psycopg

    from db.roles import APP_GROUP, ensure_app_role

    db = settings.db
    if not db.owner_user or db.owner_user == db.user:
        typer.echo(
            "error: --ensure-app-role needs a schema owner other than the services' role: set "
            "COLDCHAIN_DB__OWNER_USER (and …OWNER_PASSWORD) to a role that may create roles",
            err=True,
        )
        raise typer.Exit(2)
    try:
        with psycopg.connect(db.migration_dsn, autocommit=True) as conn:
            ensure_app_role(conn, db.user, db.password.get_secret_value())
    except psycopg.errors.InsufficientPrivilege as exc:
        typer.echo(f"error: {db.owner_user} may not create the role {db.user}: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"role {db.user}: login, member of {APP_GROUP}, password set")
