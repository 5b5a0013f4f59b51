"""The ``coldchain`` command: one entry point, a subcommand per running stage.

Settings come from ``COLDCHAIN_…`` environment variables (and ``.env``); see the README.

The command tree is wired here, in the order ``--help`` lists it; the commands live one module
per concern:

- :mod:`~launcher.cli.stages`: ``ingest``, ``rules``, ``automate``, ``web``, ``simulate``, ``logger``, ``up``
- :mod:`~launcher.cli.database`: ``db migrate``
- :mod:`~launcher.cli.trace`: ``epcis import|export``, ``passport``, ``recalls add|list``
- :mod:`~launcher.cli.accounts`: ``users add|list|revoke``, ``apikeys create|revoke``
- :mod:`~launcher.cli.devices`: ``devices provision``
- :mod:`~launcher.cli.products`: ``products list|show|add|update|retire|import``
- :mod:`~launcher.cli.loggers`: ``loggers list|show|add|update|retire|import``
- :mod:`~launcher.cli.locations`: ``locations|carriers|lanes list|show|add|update|retire|import``
- :mod:`~launcher.cli.shipments`: ``shipments create|show|attach|detach|start|arrive|cancel|
  timeline|import``
- :mod:`~launcher.cli.policies`: ``policies list|add|revoke`` (QA's auto-release policies)
- :mod:`~launcher.cli.audit`: ``audit verify``
- :mod:`~launcher.cli.insight`: ``insight lanes|carriers|report``
- :mod:`~launcher.cli.oncall`: ``oncall list|now|add|override`` (on-call rotations)
- :mod:`~launcher.cli.notify`: ``notify test`` (a test notification to a channel or a person)
- :mod:`~launcher.cli.ask`: ``ask "…"`` (a question in plain words)
- :mod:`~launcher.cli.common`: what they share (settings, the signal-driven run, a connection)
- :mod:`~launcher.cli.masterdata`: what the master-data commands share (``--set``, reports)
"""

from __future__ import annotations

import typer

from launcher.cli import (
    accounts,
    ask,
    audit,
    database,
    devices,
    insight,
    locations,
    loggers,
    notify,
    oncall,
    policies,
    products,
    shipments,
    stages,
    trace,
)

app = typer.Typer(
    help="Cold-chain telemetry for pharmaceutical shipments.",
    no_args_is_help=True,
    add_completion=False,
)

for command in (
    stages.ingest,
    stages.rules,
    stages.automate,
    stages.web,
    stages.simulate,
    stages.history,
    stages.logger,
    stages.up,
    trace.passport,
    ask.ask,
):
    app.command()(command)

app.add_typer(database.app, name="db")
app.add_typer(trace.epcis_app, name="epcis")
app.add_typer(trace.recalls_app, name="recalls")
app.add_typer(accounts.users_app, name="users")
app.add_typer(accounts.apikeys_app, name="apikeys")
app.add_typer(devices.app, name="devices")
app.add_typer(products.app, name="products")
app.add_typer(loggers.app, name="loggers")
app.add_typer(locations.locations_app, name="locations")
app.add_typer(locations.carriers_app, name="carriers")
app.add_typer(locations.lanes_app, name="lanes")
app.add_typer(shipments.app, name="shipments")
app.add_typer(policies.app, name="policies")
app.add_typer(audit.app, name="audit")
app.add_typer(insight.app, name="insight")
app.add_typer(oncall.app, name="oncall")
app.add_typer(notify.app, name="notify")


def main() -> None:  # pragma: no cover - console entry
    app()
