"""``oncall list|now|add|override``: on-call rotations from the command line.

The operations are :mod:`services.oncall`, the API's and the dashboard's own, done by the
console caller (``cli:<os user>``, as admin); a refusal prints ``error: …`` and exits 1.
"""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Annotated

import typer

from launcher.cli.common import connect, load_settings

app = typer.Typer(
    help="On-call rotations: who is on call now, the next hand-overs, overrides.",
    no_args_is_help=True,
)


def _fail(exc: Exception) -> None:
    typer.echo(f"error: {exc}", err=True)
    raise typer.Exit(1) from None


@app.command("list")
def oncall_list() -> None:
    """Every rotation: members in turn order, who is on call now, the next hand-overs."""
    from services import oncall
    from services.caller import Caller

    with connect(load_settings()) as conn:
        rows = oncall.list_rotations(conn, Caller.console())
    for r in rows:
        now = r["on_call"]["username"] if r["on_call"] else "nobody"
        typer.echo(
            f"{r['name']} ({r['team']}): every {r['shift_days']} day(s) at {r['handover_time']} "
            f"{r['time_zone']}; on call now: {now}"
        )
        typer.echo(f"  members: {', '.join(m['username'] for m in r['members']) or '-'}")
        for h in r["handovers"][1:]:
            typer.echo(f"  from {h['starts_at']:%Y-%m-%d %H:%M %Z}: {h['username']}")
        for o in r["overrides"]:
            typer.echo(
                f"  override: {o['username']} {o['starts_at']:%Y-%m-%d %H:%M} – "
                f"{o['ends_at']:%Y-%m-%d %H:%M} UTC ({o['reason']})"
            )


@app.command("now")
def oncall_now(
    rotation: Annotated[str | None, typer.Argument(help="One rotation (default: all).")] = None,
) -> None:
    """Who is on call now, per rotation (one line each: rotation, username, name)."""
    from coldchain.errors import ColdchainError
    from services import oncall
    from services.caller import Caller

    try:
        with connect(load_settings()) as conn:
            rows = (
                [oncall.get_rotation(conn, Caller.console(), name=rotation)]
                if rotation
                else oncall.list_rotations(conn, Caller.console())
            )
    except ColdchainError as exc:
        _fail(exc)
        return
    for r in rows:
        person = r["on_call"]
        who = f"{person['username']}\t{person['full_name']}" if person else "nobody"
        typer.echo(f"{r['name']}\t{who}")


@app.command("add")
def oncall_add(
    name: Annotated[
        str, typer.Argument(help="The rotation's name (what a tier's rotation names).")
    ],
    team: Annotated[str, typer.Option(help="The team it belongs to.")],
    members: Annotated[str, typer.Option(help="User names in turn order, comma-separated.")],
    time_zone: Annotated[str, typer.Option(help="IANA zone of the hand-over time.")] = "UTC",
    handover: Annotated[str, typer.Option(help="Local hand-over time, HH:MM.")] = "09:00",
    shift_days: Annotated[int, typer.Option(help="1: daily, 7: weekly.")] = 7,
    start: Annotated[str | None, typer.Option(help="First shift's date (default today).")] = None,
) -> None:
    """Create a rotation."""
    from coldchain.errors import ColdchainError
    from services import oncall
    from services.caller import Caller

    try:
        spec = oncall.rotation_spec(
            team=team,
            time_zone=time_zone,
            handover_time=time.fromisoformat(handover),
            shift_days=shift_days,
            start_date=date.fromisoformat(start) if start else date.today(),
            members=[m for m in members.split(",") if m.strip()],
        )
        with connect(load_settings()) as conn:
            row = oncall.create_rotation(conn, Caller.console(), name=name, spec=spec)
    except (ColdchainError, ValueError) as exc:
        _fail(exc)
        return
    now = row["on_call"]["username"] if row["on_call"] else "nobody"
    typer.echo(f"rotation {row['name']} created; on call now: {now}")


@app.command("override")
def oncall_override(
    rotation: Annotated[str, typer.Argument(help="The rotation.")],
    username: Annotated[str, typer.Argument(help="Who is on call instead.")],
    starts: Annotated[str, typer.Option(help="From (ISO 8601 with offset).")],
    ends: Annotated[str, typer.Option(help="Until (ISO 8601 with offset).")],
    reason: Annotated[str, typer.Option(help="Why (goes into the audit trail).")],
) -> None:
    """Put someone on call instead, for a while."""
    from coldchain.errors import ColdchainError
    from services import oncall
    from services.caller import Caller

    try:
        with connect(load_settings()) as conn:
            row = oncall.add_override(
                conn,
                Caller.console(),
                rotation=rotation,
                username=username,
                starts_at=datetime.fromisoformat(starts),
                ends_at=datetime.fromisoformat(ends),
                reason=reason,
            )
    except (ColdchainError, ValueError) as exc:
        _fail(exc)
        return
    typer.echo(
        f"override {row['override_id']}: {row['username']} on call in {rotation} from "
        f"{row['starts_at']:%Y-%m-%d %H:%M} until {row['ends_at']:%Y-%m-%d %H:%M} UTC"
    )
