"""``coldchain insight lanes|carriers|report``: lane risk, carrier scorecards and the weekly lane
report from the command line (the same :mod:`services.insight` and :mod:`services.lane_reports`
calls as the API and the Insight page; README "Insight")."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from launcher.cli.common import connect, load_settings

app = typer.Typer(
    help="Lane risk, carrier scorecards and the weekly lane report.", no_args_is_help=True
)

Since = Annotated[
    datetime | None, typer.Option(help="Shipments that arrived from then (UTC if no offset).")
]
Until = Annotated[
    datetime | None, typer.Option(help="Shipments that arrived before then (UTC if no offset).")
]
AsJson = Annotated[bool, typer.Option("--json", help="One JSON object per line.")]


def _utc(at: datetime | None) -> datetime | None:
    return None if at is None or at.tzinfo is not None else at.replace(tzinfo=UTC)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.0f}%"


def _hours(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds / 3600:.1f}h"


def _fail(error: Exception) -> None:
    typer.echo(f"error: {error}", err=True)
    raise typer.Exit(1)


def _print(rows: list[dict[str, Any]], as_json: bool, columns: list[tuple[str, Any]]) -> None:
    if as_json:
        for row in rows:
            typer.echo(json.dumps(row, default=str))
        return
    table = [[name for name, _ in columns]] + [[str(f(r)) for _, f in columns] for r in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(columns))]
    for line in table:
        typer.echo("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip())


@app.command("lanes")
def lanes(
    lane: Annotated[str | None, typer.Option(help="One lane's code.")] = None,
    months: Annotated[
        bool, typer.Option(help="The lane's figures by month (needs --lane).")
    ] = False,
    since: Since = None,
    until: Until = None,
    as_json: AsJson = False,
) -> None:
    """Each lane's risk from its finished shipments, the riskiest first (or one lane by month)."""
    from coldchain.errors import ColdchainError
    from services import insight

    settings = load_settings()
    need = settings.insight.min_shipments
    try:
        with connect(settings) as conn:
            if months:
                if lane is None:
                    raise typer.BadParameter("--months needs --lane")
                rows = insight.lane_months(
                    conn, lane=lane, since=_utc(since), until=_utc(until), minimum=need
                )
            else:
                rows = insight.lane_risk(
                    conn, lane=lane, since=_utc(since), until=_utc(until), minimum=need
                )
    except ColdchainError as error:
        _fail(error)
    _print(
        [r.to_dict() for r in rows],
        as_json,
        [
            ("lane", lambda r: r["month"] or r["lane"]),
            ("mode", lambda r: r["mode"]),
            ("shipments", lambda r: r["shipments"]),
            ("excursions", lambda r: _pct(r["excursion_rate"])),
            (
                "out-of-range mean/p90",
                lambda r: f"{_hours(r['time_out_mean_s'])}/{_hours(r['time_out_p90_s'])}",
            ),
            (
                "band 90%",
                lambda r: (
                    "-"
                    if r["band_low_c"] is None
                    else f"{r['band_low_c']:.1f}..{r['band_high_c']:.1f}C"
                ),
            ),
            ("delay median", lambda r: _hours(r["delay_median_s"])),
            ("late", lambda r: _pct(r["late_share"])),
            (
                "alerts/shipment",
                lambda r: "-" if r["alarm_rate"] is None else f"{r['alarm_rate']:.2f}",
            ),
            ("score", lambda r: r["note"] if r["score"] is None else f"{r['score']:.0f}"),
        ],
    )


@app.command("carriers")
def carriers(
    lane: Annotated[str | None, typer.Option(help="One lane's code.")] = None,
    carrier: Annotated[str | None, typer.Option(help="One carrier, on every lane.")] = None,
    since: Since = None,
    until: Until = None,
    as_json: AsJson = False,
) -> None:
    """Carriers compared on each lane, leg by leg."""
    from coldchain.errors import ColdchainError
    from services import insight

    settings = load_settings()
    try:
        with connect(settings) as conn:
            rows = insight.carrier_scores(
                conn,
                lane=lane,
                carrier=carrier,
                since=_utc(since),
                until=_utc(until),
                minimum=settings.insight.min_carrier_legs,
            )
    except ColdchainError as error:
        _fail(error)
    _print(
        [c.to_dict() for c in rows],
        as_json,
        [
            ("lane", lambda r: r["lane"]),
            ("carrier", lambda r: r["carrier"]),
            ("legs", lambda r: r["legs"]),
            ("shipments", lambda r: r["shipments"]),
            ("on time", lambda r: f"{_pct(r['on_time_share'])} of {r['timed_legs']}"),
            ("excursions/100", lambda r: f"{r['excursions_per_100']:.0f}"),
            ("out-of-range/shipment", lambda r: _hours(r["time_out_per_shipment_s"])),
            ("volume", lambda r: "scored" if r["enough"] else r["note"]),
        ],
    )


@app.command("report")
def report(
    output: Annotated[Path, typer.Option("--output", "-o", help="The file: .pdf or .csv.")],
    lane: Annotated[str | None, typer.Option(help="One lane's code.")] = None,
    carrier: Annotated[str | None, typer.Option(help="One carrier.")] = None,
    week: Annotated[
        str | None, typer.Option(help="2026-W05 or a date in it (default: the last full week).")
    ] = None,
) -> None:
    """Write the weekly lane quality report of one lane or carrier (PDF or CSV by extension)."""
    from coldchain.errors import ColdchainError
    from coldchain.insight.weeks import last_complete_week, parse_week
    from services import lane_reports

    if output.suffix not in (".pdf", ".csv"):
        raise typer.BadParameter("--output must end in .pdf or .csv")
    settings = load_settings()
    try:
        when = last_complete_week(datetime.now(UTC)) if week is None else parse_week(week)
        with connect(settings) as conn:
            made = lane_reports.weekly_report(
                conn,
                week=when,
                lane=lane,
                carrier=carrier,
                min_shipments=settings.insight.min_shipments,
                min_carrier_legs=settings.insight.min_carrier_legs,
            )
    except (ColdchainError, ValueError) as error:
        _fail(error)
    output.write_bytes(made.pdf if output.suffix == ".pdf" else made.csv)
    typer.echo(f"{output}: {made.name} (content SHA-256 {made.content_hash})")
