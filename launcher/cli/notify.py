"""``notify test``: send a test notification now, to a channel's target or to a person.

The operation is :func:`services.notify.send_test`, the API's and the dashboard's own, done by
the console caller (``cli:<os user>``, as admin) with this host's settings (its SMTP server,
webhook secret, channels). Each result is printed (delivered, with the receiver's answer, or the
error); the exit status is 0 when every attempt was delivered, 1 otherwise (also for a refused
channel, target or person: ``error: …``).
"""

from __future__ import annotations

from typing import Annotated

import typer

from launcher.cli.common import connect, load_settings

app = typer.Typer(help="Notifications: try a channel before you rely on it.", no_args_is_help=True)


@app.command("test")
def test(
    channel: Annotated[
        str | None,
        typer.Option(help="webhook, email, slack, teams, pagerduty, opsgenie or sms."),
    ] = None,
    to: Annotated[
        str | None, typer.Option(help="The target: URL, address, phone number (E.164) or key.")
    ] = None,
    person: Annotated[
        str | None, typer.Option(help="A person's user name: their e-mail and phone.")
    ] = None,
) -> None:
    """Send a test notification now (recorded in deliveries and the audit trail)."""
    from coldchain.errors import ColdchainError
    from services import notify
    from services.caller import Caller

    settings = load_settings()
    try:
        with connect(settings) as conn:
            results = notify.send_test(
                conn, Caller.console(), settings, channel=channel, to=to, person=person
            )
    except ColdchainError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    for r in results:
        outcome = "delivered" if r.ok else "FAILED"
        typer.echo(f"{r.channel} {r.target}: {outcome}: {r.response}")
    if not all(r.ok for r in results):
        raise typer.Exit(1)
