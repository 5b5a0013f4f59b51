"""Track and trace: ``epcis import|export``, ``passport`` and ``recalls add|list``.

``passport`` is a plain function that :mod:`launcher.cli` registers as a top-level command.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from launcher.cli.common import connect, load_settings

epcis_app = typer.Typer(help="EPCIS 2.0 documents: import and export.", no_args_is_help=True)


@epcis_app.command("import")
def epcis_import(
    files: Annotated[list[Path], typer.Argument(help="EPCIS 2.0 JSON / JSON-LD documents.")],
) -> None:
    """Import EPCIS documents: each is validated against the official schema and stored whole,
    or refused with every reason and nothing stored. Importing again changes nothing."""
    from traceability.epcis_import import EPCISRejected, import_document, load_document

    settings = load_settings()
    refused = 0
    with connect(settings) as conn:
        for path in files:
            try:
                document = load_document(path.read_bytes())
                result = import_document(
                    conn, document, source=path.name, today=datetime.now(UTC).date()
                )
            except EPCISRejected as error:
                refused += 1
                typer.echo(f"{path}: refused, nothing stored", err=True)
                for problem in error.problems:
                    typer.echo(f"  {problem}", err=True)
                continue
            except OSError as error:
                refused += 1
                typer.echo(f"{path}: cannot read: {error}", err=True)
                continue
            untracked = (
                f", {len(result.untracked)} identifier(s) not tracked" if result.untracked else ""
            )
            typer.echo(
                f"{path}: {result.n_new} new event(s), {result.n_known} already known, "
                f"{result.units_created} unit(s) created{untracked}"
            )
    if refused:
        raise typer.Exit(1)


@epcis_app.command("export")
def epcis_export(
    shipment: Annotated[str | None, typer.Option(help="Shipment id or reference.")] = None,
    unit: Annotated[
        str | None, typer.Option(help="SGTIN or SSCC in any form (EPC URI, Digital Link, ...).")
    ] = None,
    interval_min: Annotated[int, typer.Option(help="Sensor report interval, minutes.")] = 60,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here instead of stdout.")
    ] = None,
) -> None:
    """Export a shipment or a unit as an EPCIS 2.0 JSON-LD document."""
    import json

    from coldchain.errors import NotFoundError
    from coldchain.gs1 import IdentifierError
    from traceability.epcis_export import build_document, gather_shipment, gather_unit

    if (shipment is None) == (unit is None):
        raise typer.BadParameter("give exactly one of --shipment or --unit")
    settings = load_settings()
    now = datetime.now(UTC)
    try:
        with connect(settings) as conn:
            if shipment is not None:
                data = gather_shipment(conn, shipment, bucket_s=interval_min * 60)
            else:
                assert unit is not None
                data = gather_unit(conn, unit, today=now.date(), bucket_s=interval_min * 60)
    except (NotFoundError, IdentifierError) as error:
        typer.echo(str(error), err=True)
        raise typer.Exit(1) from None
    text = json.dumps(build_document(data, now=now), indent=2, ensure_ascii=False)
    if output is None:
        typer.echo(text)
    else:
        output.write_text(text + "\n", encoding="utf-8")
        typer.echo(f"wrote {output}", err=True)


def passport(
    identifier: Annotated[
        str, typer.Argument(help="SGTIN or SSCC: EPC URI, Digital Link, scanned element string.")
    ],
    as_json: Annotated[bool, typer.Option("--json", help="The full passport as JSON.")] = False,
) -> None:
    """A unit's temperature passport: verdict, custody, excursions, budget use and MKT."""
    import json

    from coldchain.errors import NotFoundError
    from coldchain.gs1 import IdentifierError
    from traceability import lookup
    from traceability.passport import passport_json
    from traceability.report import passport_text

    settings = load_settings()
    now = datetime.now(UTC)
    with connect(settings) as conn:
        verification = lookup.verify(conn, identifier, today=now.date())
        try:
            from services.reports import ReportSettings

            result = lookup.load_passport(
                conn,
                identifier,
                today=now.date(),
                now=now,
                gap_factor=settings.alerts.gap_factor,
                rules=ReportSettings.from_settings(settings),
            )
        except (NotFoundError, IdentifierError) as error:
            typer.echo(f"{verification.status}: {error}", err=True)
            raise typer.Exit(1) from None
    if as_json:
        body = passport_json(result, include_readings=True)
        body["verification"] = {
            "status": verification.status,
            "reasons": list(verification.reasons),
        }
        typer.echo(json.dumps(body, indent=2, default=str, ensure_ascii=False))
    else:
        typer.echo(passport_text(result, verification))


recalls_app = typer.Typer(
    help="Product recalls: lots that must not be sold (recorded by QA, never edited).",
    no_args_is_help=True,
)


@recalls_app.command("add")
def recalls_add(
    gtin: Annotated[str, typer.Argument(help="GTIN-8/12/13/14, with its check digit.")],
    reason: Annotated[str, typer.Option(help="Why; shown with every recalled unit, and audited.")],
    user: Annotated[str, typer.Option(help="Your user name: a person with the qa role.")],
    lot: Annotated[
        str | None, typer.Option(help="The lot, as printed; omitted: every lot of the GTIN.")
    ] = None,
    password_stdin: Annotated[
        bool, typer.Option(help="Read your password from standard input instead of asking.")
    ] = False,
) -> None:
    """Record a recall as yourself, a QA person (your password is asked).

    From then on every unit of the lot (or of the GTIN) verifies as recalled.
    """
    import socket

    from security.accounts import Principal, authenticate
    from security.errors import SecurityError
    from security.ratelimit import LoginLimiter
    from traceability.recalls import parse_recall, record_recall

    try:
        recall = parse_recall(gtin=gtin, lot=lot, reason=reason)
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    settings = load_settings()
    password = (
        sys.stdin.readline().rstrip("\n")
        if password_stdin
        else typer.prompt(f"password of {user}", hide_input=True)
    )
    source = f"cli@{socket.gethostname()}"
    limiter = LoginLimiter(
        max_failures=settings.security.login_max_failures,
        window_s=settings.security.login_window_s,
    )
    try:
        with connect(settings) as conn:
            person = authenticate(
                conn, username=user, password=password, limiter=limiter, client=source
            )
            principal = Principal(
                kind="user",
                id=int(person["user_id"]),
                name=person["username"],
                display_name=person["full_name"],
                role=person["role"],
            )
            row = record_recall(conn, recall, principal=principal, source=source)
    except SecurityError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    scope = f"lot {row['lot']}" if row["lot"] else "every lot"
    product = f" ({row['product_name']})" if row["product_name"] else " (not a known product)"
    typer.echo(
        f"recall {row['recall_id']} recorded by {row['recalled_by']}: GTIN {row['gtin']}"
        f"{product}, {scope}; {row['units_on_record']} serialised item(s) on record"
    )


@recalls_app.command("list")
def recalls_list(
    gtin: Annotated[str | None, typer.Option(help="Only this product's recalls.")] = None,
    lot: Annotated[
        str | None, typer.Option(help="Only those covering this lot (whole-GTIN ones too).")
    ] = None,
) -> None:
    """Every recall, oldest first."""
    from coldchain.gs1 import IdentifierError, check_lot, normalize_gtin
    from db.queries.trace import recalls as recall_q

    try:
        gtin = None if gtin is None else normalize_gtin(gtin.strip())
        lot = None if lot is None else check_lot(lot)
    except IdentifierError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    settings = load_settings()
    with connect(settings) as conn:
        rows = recall_q.list_recalls(conn=conn, gtin=gtin, lot=lot)
    for r in rows:
        typer.echo(
            f"{r['recall_id']:>5} {r['recalled_at']:%Y-%m-%d %H:%M} {r['gtin']} "
            f"{r['lot'] or '(every lot)':<20} {r['recalled_by']:<16} "
            f"{r['units_on_record']:>6} item(s)  {r['reason']}"
        )
    if not rows:
        typer.echo("no recalls")
