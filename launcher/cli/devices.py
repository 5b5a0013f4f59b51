"""``coldchain devices``: the loggers' MQTT credentials and the broker's password file and ACL."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from launcher.cli.common import cli_context, connect, load_settings

app = typer.Typer(help="Loggers' MQTT credentials.", no_args_is_help=True)


@app.command("provision")
def devices_provision(
    out: Annotated[
        Path | None,
        typer.Option(
            help="Where to write Mosquitto's passwd and acl (default: the local stack's)."
        ),
    ] = None,
    rotate: Annotated[bool, typer.Option(help="New passwords for every logger.")] = False,
    ingest_account: Annotated[
        bool, typer.Option(help="Create or re-key the ingester's service account.")
    ] = False,
    simulator_account: Annotated[
        bool,
        typer.Option(help="Create or re-key the simulator's account (test fleets only)."),
    ] = False,
    ingest_password_env: Annotated[
        str | None,
        typer.Option(
            metavar="VAR",
            help="Give the ingester's account the password held in this environment variable "
            "instead of a new one (implies --ingest-account; for Docker Compose).",
        ),
    ] = None,
    simulator_password_env: Annotated[
        str | None,
        typer.Option(
            metavar="VAR",
            help="The same for the simulator's account (implies --simulator-account).",
        ),
    ] = None,
) -> None:
    """Issue MQTT passwords to registered loggers and write the broker's password file and ACL.

    New logger passwords go to a credentials file (owner-readable only) in the same folder;
    Mosquitto reloads both files on SIGHUP.
    """
    import os

    from security import devices

    settings = load_settings()
    folder = out or settings.stack.data_dir / "mosquitto"
    services = []
    from_env: dict[str, str] = {}  # service user -> the variable its password came from
    passwords: dict[str, str] = {}
    for account, wanted, var in (
        (devices.INGEST_ACCOUNT, ingest_account, ingest_password_env),
        (devices.SIMULATOR_ACCOUNT, simulator_account, simulator_password_env),
    ):
        if not (wanted or var):
            continue
        services.append(account)
        if var:
            password = os.environ.get(var, "")
            if len(password) < settings.security.password_min_length:
                typer.echo(
                    f"error: the environment variable {var} must hold the password of "
                    f"{account.username} (at least {settings.security.password_min_length} "
                    "characters)",
                    err=True,
                )
                raise typer.Exit(2)
            from_env[account.username], passwords[account.username] = var, password
    with connect(settings) as conn:
        result = devices.provision(
            conn,
            topic_root=settings.mqtt.topic_root,
            out_dir=folder,
            rotate=rotate,
            services=services,
            service_passwords=passwords,
            ctx=cli_context("MQTT credentials provisioned"),
        )
    typer.echo(f"password file: {result.password_file}")
    typer.echo(f"ACL:           {result.acl_file}")
    typer.echo(
        f"{result.devices_with_credentials} logger(s) with credentials, "
        f"{len(result.issued)} new password(s)"
    )
    if result.credentials_file is not None:
        typer.echo(f"new logger passwords: {result.credentials_file} (load them, then delete it)")
    for user, password in result.services.items():
        if user in from_env:
            typer.echo(f"service account {user}: password from ${from_env[user]}")
        else:
            typer.echo(f"service account {user}: password {password} (shown once)")
    for device_id in result.skipped:
        typer.echo(f"skipped {device_id!r}: not usable as an MQTT user name (':' or too long)")
    typer.echo("reload the broker (SIGHUP) or restart it to apply")
