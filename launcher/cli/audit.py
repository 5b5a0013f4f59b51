"""``coldchain audit``: the tamper-evident audit trail."""

from __future__ import annotations

import typer

from launcher.cli.common import connect, load_settings

app = typer.Typer(help="The tamper-evident audit trail.", no_args_is_help=True)


@app.command("verify")
def audit_verify() -> None:
    """Recompute the whole hash chain; exit 1 and name the first broken entry if any."""
    from services import audit
    from services.caller import Caller

    settings = load_settings()
    with connect(settings) as conn:
        verdict = audit.verify(conn, Caller.console())
    typer.echo(verdict.summary())
    if not verdict.ok:
        raise typer.Exit(1)
