"""``coldchain products``: list, show, add, update, retire, import products and their
stability profiles (through :mod:`services.products`, as the console)."""

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

app = typer.Typer(help="Products and their stability profiles.", no_args_is_help=True)

ReasonOption = Annotated[str, typer.Option(help="Why (recorded in the audit trail).")]
VersionOption = Annotated[int, typer.Option(help="The version you read (`products show`).")]
AllowancesOption = Annotated[
    str | None,
    typer.Option(
        help="Allowance bands LOW..HIGH=BUDGET separated by ';', e.g. '8..25=72h; 0..2=12h'."
    ),
]


def _stability(allowances: str | None, values: dict[str, object]) -> None:
    from services.products import parse_allowances

    stability: dict[str, object] = {}
    if allowances is not None:
        stability["allowances"] = parse_allowances(allowances)
    for key in ("max_freeze_thaw_cycles", "thaw_hysteresis_c"):
        if key in values:
            stability[key] = values.pop(key)
    if stability:
        values["stability"] = stability


@app.command("list")
def products_list(
    retired: Annotated[bool, typer.Option(help="Also the retired products.")] = False,
) -> None:
    """Every product with its range, profile version and version."""
    from services import products

    with connect(load_settings()) as conn:
        rows = products.list_products(conn, include_retired=retired)
    table(
        rows,
        ("gtin", "name", "temp_min_c", "temp_max_c", "profile_version", "version", "retired_at"),
    )


@app.command("show")
def products_show(gtin: str) -> None:
    """One product with its stability part, and its profile versions."""
    from services import products

    with refusals(), connect(load_settings()) as conn:
        show(products.get_product(conn, gtin))
        for p in products.list_profile_versions(conn, gtin):
            typer.echo(f"profile version {p['version']}: {p['created_at']:%Y-%m-%d %H:%M} "
                       f"by {p['created_by']}: {p['reason']}")  # fmt: skip


@app.command("add")
def products_add(
    gtin: str,
    name: str,
    values: Annotated[list[str] | None, SetOption] = None,
    allowances: AllowancesOption = None,
    reason: ReasonOption = "product registered",
) -> None:
    """Register a product, e.g. `coldchain products add 09506000134352 "Vaxigrip" -s
    temp_min_c=2 -s temp_max_c=8 --allowances '8..25=72h; 0..2=12h'`."""
    from services import products
    from services.caller import Caller

    fields = {k: v for k, v in parse_sets(values).items() if v is not None}
    _stability(allowances, fields)
    with refusals(), connect(load_settings()) as conn:
        spec = products.ProductIn.model_validate({"gtin": gtin, "name": name, **fields})
        row, created = products.create_product(conn, Caller.console(), product=spec, reason=reason)
    typer.echo(("registered" if created else "already registered as given") + f": {row['gtin']}"
               f" version {row['version']}, profile version {row['profile_version']}")  # fmt: skip


@app.command("update")
def products_update(
    gtin: str,
    version: VersionOption,
    reason: ReasonOption,
    values: Annotated[list[str] | None, SetOption] = None,
    allowances: AllowancesOption = None,
) -> None:
    """Change fields of a product; new allowances make a new profile version."""
    from services import products
    from services.caller import Caller

    changes = parse_sets(values)
    given = {"max_freeze_thaw_cycles", "thaw_hysteresis_c"} & set(changes)
    if allowances is not None or given:
        # The stability part is replaced whole: start from the current one.
        with refusals(), connect(load_settings()) as conn:
            stability = dict(products.get_product(conn, gtin)["stability"])
            stability.update({k: changes.pop(k) for k in given})
            if allowances is not None:
                stability["allowances"] = products.parse_allowances(allowances)
        changes["stability"] = stability
    with refusals(), connect(load_settings()) as conn:
        row = products.update_product(
            conn,
            Caller.console(),
            gtin=gtin,
            changes=changes,
            expected_version=version,
            reason=reason,
        )
    typer.echo(
        f"updated: {gtin} version {row['version']}, profile version {row['profile_version']}"
    )


@app.command("retire")
def products_retire(gtin: str, version: VersionOption, reason: ReasonOption) -> None:
    """Retire a product (kept with its history; no new shipment may carry it)."""
    from services import products
    from services.caller import Caller

    with refusals(), connect(load_settings()) as conn:
        products.retire_product(
            conn, Caller.console(), gtin=gtin, expected_version=version, reason=reason
        )
    typer.echo(f"retired: {gtin}")


@app.command("import")
def products_import(
    file: Annotated[Path, typer.Argument(help="A CSV file with a header row.")],
    skip_bad: Annotated[
        bool, typer.Option(help="Apply the good rows, report the bad ones.")
    ] = False,
    reason: ReasonOption = "products imported",
) -> None:
    """Register the products of a CSV file (columns: gtin, name, temp_min_c, temp_max_c,
    freeze_limit_c, alarm_delay_s, stability_budget_s, mkt_delta_h_j_mol, mkt_limit_c,
    mkt_window_days, rh_min, rh_max, allowances, max_freeze_thaw_cycles, thaw_hysteresis_c).
    Nothing is applied unless every row is good, or with --skip-bad."""
    from services import products
    from services.caller import Caller

    text = read_file(file)
    with refusals(), connect(load_settings()) as conn:
        result = products.import_products(
            conn, Caller.console(), text=text, skip_bad=skip_bad, reason=reason
        )
    report_import(result, file, skip_bad=skip_bad)
