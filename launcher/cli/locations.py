"""``coldchain locations|carriers|lanes``: list, show, add, update, retire, import sites,
carriers and lanes (through :mod:`services.locations`, as the console). The three behave alike,
so one function builds each one's commands; records are given as ``--set field=value``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

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

ReasonOption = Annotated[str, typer.Option(help="Why (recorded in the audit trail).")]
VersionOption = Annotated[int, typer.Option(help="The version you read (`show`).")]
SetsOption = Annotated[list[str] | None, SetOption]

#: Per table: its help, the columns `list` shows, how `show` parses a key, an example.
_SPECS = {
    "locations": (
        "Sites: GLN, address, coordinates, geofence, IANA time zone.",
        (
            "location_id",
            "gln",
            "name",
            "lat",
            "lon",
            "geofence_m",
            "time_zone",
            "version",
            "retired_at",
        ),
        str,
        "-s gln=4098765000010 -s name='DC Basel' -s lat=47.56 -s lon=7.59 -s geofence_m=250"
        " -s time_zone=Europe/Zurich",
    ),
    "carriers": (
        "Carriers.",
        ("carrier_id", "name", "code", "version", "retired_at"),
        int,
        "-s name='Alpen Kühltransport' -s code=AKT",
    ),
    "lanes": (
        "Lanes: origin, destination, mode.",
        ("lane_id", "code", "origin_location_id", "destination_location_id", "mode", "version",
         "retired_at"),
        int,
        "-s code=BSL-BRN -s origin_location_id=4098765000010 "
        "-s destination_location_id=4098765000027 -s mode=road",
    ),
}  # fmt: skip


def _app(table_name: str) -> typer.Typer:
    from services.locations import Table

    name: Table = table_name  # type: ignore[assignment]
    help_text, columns, key_type, example = _SPECS[name]
    app = typer.Typer(help=help_text, no_args_is_help=True)

    @app.command("list")
    def list_records(retired: Annotated[bool, typer.Option(help="Also retired.")] = False) -> None:
        """Every record."""
        from services import locations

        with connect(load_settings()) as conn:
            table(locations.list_records(conn, name, include_retired=retired), columns)

    @app.command("show")
    def show_record(key: str) -> None:
        """One record by its id."""
        from services import locations

        with refusals(), connect(load_settings()) as conn:
            show(locations.get_record(conn, name, key_type(key)))

    @app.command("add", help=f"Create a record, e.g. `coldchain {name} add {example}`.")
    def add_record(values: SetsOption = None, reason: ReasonOption = "registered") -> None:
        from services import locations
        from services.caller import Caller

        fields = {k: v for k, v in parse_sets(values).items() if v is not None}
        model = locations.MODELS[name]
        with refusals(), connect(load_settings()) as conn:
            row, created = locations.create_record(
                conn, Caller.console(), name, record=model.model_validate(fields), reason=reason
            )
        typer.echo(("created" if created else "already registered as given") + ":")
        show(row)

    @app.command("update")
    def update_record(
        key: str, version: VersionOption, reason: ReasonOption, values: SetsOption = None
    ) -> None:
        """Change fields of a record at the version you read."""
        from services import locations
        from services.caller import Caller

        with refusals(), connect(load_settings()) as conn:
            row = locations.update_record(
                conn, Caller.console(), name, key=key_type(key), changes=parse_sets(values),
                expected_version=version, reason=reason,
            )  # fmt: skip
        typer.echo(f"updated: version {row['version']}")

    @app.command("retire")
    def retire_record(key: str, version: VersionOption, reason: ReasonOption) -> None:
        """Retire a record (kept with its history; not usable for new shipments)."""
        from services import locations
        from services.caller import Caller

        with refusals(), connect(load_settings()) as conn:
            locations.retire_record(
                conn, Caller.console(), name, key=key_type(key), expected_version=version,
                reason=reason,
            )  # fmt: skip
        typer.echo("retired")

    @app.command("import")
    def import_records(
        file: Annotated[Path, typer.Argument(help="A CSV file with a header row.")],
        skip_bad: Annotated[bool, typer.Option(help="Apply the good rows only.")] = False,
        reason: ReasonOption = "imported",
    ) -> None:
        """Create the records of a CSV file (a column per field). Nothing is applied unless
        every row is good, or with --skip-bad."""
        from services import locations
        from services.caller import Caller

        text = read_file(file)
        with refusals(), connect(load_settings()) as conn:
            result = locations.import_records(
                conn, Caller.console(), name, text=text, reason=reason, skip_bad=skip_bad
            )
        report_import(result, file, skip_bad=skip_bad)

    return app


locations_app = _app("locations")
carriers_app = _app("carriers")
lanes_app = _app("lanes")
