"""``coldchain shipments``: book shipments and move them through their life, from the terminal
(through :mod:`services.bookings` and :mod:`services.lifecycle`, as the console).

``import FILE.csv`` validates the whole file (and against the database) before anything is
applied; every bad row is reported with its line and field, and nothing is applied unless every
row is good, or ``--skip-bad``; it books shipments without planned legs (``create --leg`` and the
API's ``legs`` plan them). Exit codes as the master-data commands: 0 done, 1 refused, 2 usage.
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from launcher.cli.common import connect, load_settings
from launcher.cli.masterdata import read_file, refusals, report_import, show, table

if TYPE_CHECKING:
    from services.booking_legs import Leg

app = typer.Typer(
    help="Shipments: booking, loggers, start, arrival, timeline.", no_args_is_help=True
)

Key = Annotated[str, typer.Argument(help="The shipment's id or reference.")]
Reason = Annotated[str | None, typer.Option(help="Why (recorded in the audit trail).")]


def _now() -> datetime:
    from coldchain.runtime import utcnow

    return utcnow()


LEG_FORMAT = "MODE:ORIGIN:DESTINATION[:DEPARTURE:ARRIVAL]"
# ISO 8601 times have colons of their own: the arrival starts at the colon before its date.
_TIMES = re.compile(r":(?=\d{4}-\d{2}-\d{2}|$)")


def parse_leg(spec: str) -> Leg:
    """``--leg road:DC Basel:Hub Milan:2026-12-05T08:00Z:2026-12-05T14:00Z`` as a
    :class:`~services.booking_legs.Leg` (either time may be left empty); ValueError saying what is
    wrong. Places cannot contain a colon here (the API takes any)."""
    from services.booking_legs import Leg

    parts = spec.split(":", 3)
    if len(parts) < 3:
        raise ValueError(f"--leg {spec!r} is not {LEG_FORMAT}")
    mode, origin, destination = parts[:3]
    times: list[datetime | None] = [None, None]
    if len(parts) == 4:
        texts = _TIMES.split(parts[3], maxsplit=1)
        if len(texts) != 2:
            raise ValueError(f"--leg {spec!r}: give DEPARTURE:ARRIVAL (ISO 8601, either empty)")
        for i, (name, text) in enumerate(zip(("departure", "arrival"), texts, strict=True)):
            if not text:
                continue
            try:
                times[i] = datetime.fromisoformat(text)
            except ValueError:
                raise ValueError(f"--leg {spec!r}: {name} {text!r} is not ISO 8601") from None
    return Leg(mode=mode, origin=origin, destination=destination,
               planned_departure=times[0], planned_arrival=times[1])  # fmt: skip


@app.command("create")
def shipments_create(
    reference: Annotated[str, typer.Argument(help="The shipment's own reference.")],
    origin: Annotated[str | None, typer.Option(help="Where from (unless --lane).")] = None,
    destination: Annotated[str | None, typer.Option(help="Where to (unless --lane).")] = None,
    lane: Annotated[int | None, typer.Option(help="A lane id (`coldchain lanes list`).")] = None,
    carrier: Annotated[int | None, typer.Option(help="A carrier id.")] = None,
    item: Annotated[
        list[str] | None,
        typer.Option(metavar="GTIN:LOT:QTY", help="A product lot on board (repeatable)."),
    ] = None,
    po: Annotated[str | None, typer.Option(help="Purchase order reference.")] = None,
    so: Annotated[str | None, typer.Option(help="Sales order reference.")] = None,
    customer: Annotated[str | None, typer.Option(help="Customer reference.")] = None,
    planned_departure: Annotated[
        datetime | None, typer.Option(help="ISO 8601 with a time zone.", formats=None)
    ] = None,
    planned_arrival: Annotated[
        datetime | None, typer.Option(help="ISO 8601 with a time zone.", formats=None)
    ] = None,
    leg: Annotated[
        list[str] | None,
        typer.Option(
            metavar=LEG_FORMAT,
            help="A planned leg, in route order (repeatable); MODE is road, air, sea, rail or "
            "warehouse, times ISO 8601 with a time zone, e.g. "
            "road:DC Basel:Hub Milan:2026-12-05T08:00Z:2026-12-05T14:00Z.",
        ),
    ] = None,
) -> None:
    """Book a planned shipment (a repeat of the same booking shows the first one)."""
    from services import bookings
    from services.caller import Caller

    items = []
    for spec in item or []:
        parts = spec.split(":")
        if len(parts) != 3 or not parts[2].isdigit():
            typer.echo(f"error: --item {spec!r} is not GTIN:LOT:QUANTITY", err=True)
            raise typer.Exit(2)
        items.append(bookings.Item(parts[0], parts[1], int(parts[2])))
    legs = []
    for spec in leg or []:
        try:
            legs.append(parse_leg(spec))
        except ValueError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
    refs = tuple((k, v) for k, v in (("purchase_order", po), ("sales_order", so),
                                     ("customer", customer)) if v)  # fmt: skip
    new = bookings.NewShipment(
        reference=reference, origin=origin, destination=destination, lane_id=lane,
        carrier_id=carrier, planned_departure=planned_departure, planned_arrival=planned_arrival,
        references=refs, items=tuple(items), legs=tuple(legs),
    )  # fmt: skip
    with refusals(), connect(load_settings()) as conn:
        row, created = bookings.create(conn, Caller.console(), new=new, now=_now())
    typer.echo(f"{'created' if created else 'already booked'}: shipment {row['shipment_id']}")
    show(row)


@app.command("show")
def shipments_show(key: Key) -> None:
    """The booking: state, version, references, items, loggers."""
    from services import bookings

    with refusals(), connect(load_settings()) as conn:
        show(bookings.get(conn, shipment_id=bookings.resolve(conn, key=key)))


@app.command("attach")
def shipments_attach(
    key: Key,
    device: Annotated[str, typer.Argument(help="The logger's serial (device id).")],
    override_reason: Annotated[
        str | None,
        typer.Option(help="Attach a logger whose calibration is past due, saying why (audited)."),
    ] = None,
) -> None:
    """Attach a logger from now."""
    from services import bookings
    from services.caller import Caller

    with refusals(), connect(load_settings()) as conn:
        rows = bookings.attach(
            conn, Caller.console(), shipment_id=bookings.resolve(conn, key=key), device_id=device,
            now=_now(), override_reason=override_reason,
        )  # fmt: skip
    table(rows, ("device_id", "assigned_from", "assigned_to", "calibration_due"))


@app.command("detach")
def shipments_detach(
    key: Key, device: Annotated[str, typer.Argument(help="The logger.")], reason: Reason = None
) -> None:
    """Detach a logger now (its readings until now stay the shipment's)."""
    from services import bookings
    from services.caller import Caller

    with refusals(), connect(load_settings()) as conn:
        rows = bookings.detach(
            conn, Caller.console(), shipment_id=bookings.resolve(conn, key=key), device_id=device,
            now=_now(), reason=reason,
        )  # fmt: skip
    table(rows, ("device_id", "assigned_from", "assigned_to", "calibration_due"))


@app.command("start")
def shipments_start(key: Key, reason: Reason = None) -> None:
    """planned → in transit."""
    from services import bookings, lifecycle
    from services.caller import Caller

    with refusals(), connect(load_settings()) as conn:
        row = lifecycle.start(conn, Caller.console(), shipment_id=bookings.resolve(conn, key=key),
                              now=_now(), reason=reason)  # fmt: skip
    typer.echo(f"shipment {row['shipment_id']}: {row['status']}")


@app.command("arrive")
def shipments_arrive(key: Key, reason: Reason = None) -> None:
    """in transit → arrived → under review, with a verdict per product on board."""
    from services import bookings, lifecycle
    from services.caller import Caller
    from services.reports import ReportSettings

    settings = load_settings()
    with refusals(), connect(settings) as conn:
        rows = lifecycle.arrive(
            conn, Caller.console(), shipment_id=bookings.resolve(conn, key=key), now=_now(),
            gap_factor=settings.alerts.gap_factor, reason=reason,
            release=ReportSettings.from_settings(settings),
        )  # fmt: skip
    for v in rows:
        reasons = "; ".join(r["message"] for r in v["reasons"]) or "no reason to hold it"
        typer.echo(f"{v['gtin']}: {v['verdict']} ({reasons})")


@app.command("cancel")
def shipments_cancel(
    key: Key, reason: Annotated[str, typer.Option(help="Why (required; audited).")]
) -> None:
    """planned → cancelled."""
    from services import bookings, lifecycle
    from services.caller import Caller

    with refusals(), connect(load_settings()) as conn:
        row = lifecycle.cancel(conn, Caller.console(), shipment_id=bookings.resolve(conn, key=key),
                               now=_now(), reason=reason)  # fmt: skip
    typer.echo(f"shipment {row['shipment_id']}: {row['status']}")


@app.command("timeline")
def shipments_timeline(key: Key) -> None:
    """Every transition and booking change, oldest first."""
    from services import bookings, lifecycle

    with refusals(), connect(load_settings()) as conn:
        rows = lifecycle.timeline(conn, shipment_id=bookings.resolve(conn, key=key))
    table(rows, ("at", "event", "from_state", "to_state", "actor", "reason"))


@app.command("import")
def shipments_import(
    file: Annotated[Path, typer.Argument(help="A CSV file with a header row.", exists=False)],
    skip_bad: Annotated[
        bool, typer.Option(help="Apply the good rows and report the bad ones.")
    ] = False,
) -> None:
    """Book shipments from a CSV file (columns: services.shipment_import.CSV_COLUMNS)."""
    from services import shipment_import
    from services.caller import Caller

    text = read_file(file)
    with refusals(), connect(load_settings()) as conn:
        result = shipment_import.import_csv(conn, Caller.console(), text=text, now=_now(),
                                     skip_bad=skip_bad)  # fmt: skip
    report_import(result, file, skip_bad=skip_bad)
