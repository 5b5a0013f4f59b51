"""``coldchain loggers``: list, show, add, update, retire, import loggers (through
:mod:`services.loggers`, as the console). A logger's serial is its device id; registering one
prints its MQTT password once and rewrites the local broker's password file and ACL.

``coldchain devices provision`` (launcher/cli/devices.py) stays the command for the broker's
files and service accounts as a whole.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from coldchain.settings import Settings
from launcher.cli.common import connect, load_settings
from launcher.cli.masterdata import (
    SetOption,
    parse_sets,
    read_file,
    refusals,
    report_import,
    show,
    table,
)

app = typer.Typer(help="Loggers: register, calibrate, retire.", no_args_is_help=True)

ReasonOption = Annotated[str, typer.Option(help="Why (recorded in the audit trail).")]
VersionOption = Annotated[int, typer.Option(help="The version you read (`loggers show`).")]


def _reload_hint(settings: Settings) -> None:
    from services.loggers import broker_dir

    if broker_dir(settings) is None:
        typer.echo("no local broker files: run `coldchain devices provision` where the broker runs")
    else:
        typer.echo("broker password file and ACL rewritten: reload the broker (SIGHUP) to apply")


@app.command("list")
def loggers_list() -> None:
    """Every logger with its calibration, version and current shipment."""
    from services import loggers

    with connect(load_settings()) as conn:
        rows = loggers.list_loggers(conn)
    table(rows, ("device_id", "model", "interval_s", "calibration_due", "version", "retired_at",
                 "current_shipment_reference"))  # fmt: skip


@app.command("show")
def loggers_show(device_id: str) -> None:
    """One logger with its assignments."""
    from services import loggers

    with refusals(), connect(load_settings()) as conn:
        show(loggers.get_logger(conn, device_id))


@app.command("add")
def loggers_add(
    device_id: Annotated[str, typer.Argument(help="The serial number (also the MQTT user).")],
    model: str,
    values: Annotated[list[str] | None, SetOption] = None,
    reason: ReasonOption = "logger registered",
) -> None:
    """Register a logger and print its MQTT password (once), e.g. `coldchain loggers add
    TT4-000123 "TempTrace 4" -s interval_s=60 -s calibration_due=2027-06-30`."""
    from services import loggers
    from services.caller import Caller

    settings = load_settings()
    fields = {k: v for k, v in parse_sets(values).items() if v is not None}
    with refusals(), connect(settings) as conn:
        spec = loggers.LoggerIn.model_validate({"device_id": device_id, "model": model, **fields})
        done = loggers.register_logger(
            conn,
            Caller.console(),
            logger=spec,
            topic_root=settings.mqtt.topic_root,
            broker_dir=loggers.broker_dir(settings),
            reason=reason,
        )
    if not done.created:
        typer.echo(f"already registered as given: {device_id} (no new password)")
        return
    typer.echo(f"registered: {device_id}")
    typer.echo(f"MQTT user {device_id}, password {done.mqtt_password} (shown once)")
    _reload_hint(settings)


@app.command("update")
def loggers_update(
    device_id: str,
    version: VersionOption,
    reason: ReasonOption,
    values: Annotated[list[str] | None, SetOption] = None,
) -> None:
    """Change a logger's model, interval or calibration."""
    from services import loggers
    from services.caller import Caller

    with refusals(), connect(load_settings()) as conn:
        row = loggers.update_logger(
            conn,
            Caller.console(),
            device_id=device_id,
            changes=parse_sets(values),
            expected_version=version,
            reason=reason,
        )
    typer.echo(f"updated: {device_id} version {row['version']}")


@app.command("retire")
def loggers_retire(device_id: str, version: VersionOption, reason: ReasonOption) -> None:
    """Retire a logger: its MQTT password is revoked; its readings and history stay."""
    from services import loggers
    from services.caller import Caller

    settings = load_settings()
    with refusals(), connect(settings) as conn:
        loggers.retire_logger(
            conn,
            Caller.console(),
            device_id=device_id,
            expected_version=version,
            reason=reason,
            topic_root=settings.mqtt.topic_root,
            broker_dir=loggers.broker_dir(settings),
        )
    typer.echo(f"retired: {device_id}")
    _reload_hint(settings)


@app.command("import")
def loggers_import(
    file: Annotated[Path, typer.Argument(help="A CSV file with a header row.")],
    credentials: Annotated[
        Path, typer.Option(help="Where to write the new MQTT passwords (owner-readable only).")
    ] = Path("logger-credentials.csv"),
    skip_bad: Annotated[
        bool, typer.Option(help="Apply the good rows, report the bad ones.")
    ] = False,
    reason: ReasonOption = "loggers imported",
) -> None:
    """Register the loggers of a CSV file (columns: device_id, model, calibration_cert,
    calibration_due, interval_s), each with a new MQTT password written to --credentials.
    Nothing is applied unless every row is good, or with --skip-bad."""
    from security.devices import credentials_csv
    from security.mosquitto import write_private
    from services import loggers
    from services.caller import Caller

    settings = load_settings()
    text = read_file(file)
    with refusals(), connect(settings) as conn:
        result = loggers.import_loggers(
            conn,
            Caller.console(),
            text=text,
            reason=reason,
            topic_root=settings.mqtt.topic_root,
            broker_dir=loggers.broker_dir(settings),
            skip_bad=skip_bad,
        )
    report_import(result, file, skip_bad=skip_bad)
    if result.issued:
        write_private(credentials, credentials_csv(settings.mqtt.topic_root, result.issued))
        typer.echo(
            f"new MQTT passwords: {credentials} (load them into the loggers, then delete it)"
        )
        _reload_hint(settings)
