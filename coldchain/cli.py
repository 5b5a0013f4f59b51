"""The ``coldchain`` command: one entry point, a subcommand per running stage.

Settings come from ``COLDCHAIN_…`` environment variables (and ``.env``); see the README.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from pathlib import Path
from typing import Annotated

import typer

from coldchain.settings import Settings

app = typer.Typer(
    help="Cold-chain telemetry for pharmaceutical shipments.",
    no_args_is_help=True,
    add_completion=False,
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
app.add_typer(db_app, name="db")

log = logging.getLogger("coldchain")


def _settings() -> Settings:
    settings = Settings()
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
    )
    return settings


def _run_until_signal(main: object) -> None:
    """Run an ``async def main(stop)`` until SIGINT/SIGTERM, then let it finish cleanly."""

    async def runner() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await main(stop)  # type: ignore[operator]

    asyncio.run(runner())


@db_app.command("migrate")
def db_migrate() -> None:
    """Apply pending database migrations (idempotent)."""
    from db.migrate import migrate

    settings = _settings()
    applied = migrate(settings.db.dsn)
    typer.echo(
        f"applied {len(applied)} migration(s)" + (f": {', '.join(applied)}" if applied else "")
    )


@app.command()
def ingest() -> None:
    """Consume device telemetry from MQTT and store it in TimescaleDB."""
    from psycopg_pool import AsyncConnectionPool

    from ingest.service import Ingester
    from ingest.sink import TimescaleSink

    settings = _settings()

    async def main(stop: asyncio.Event) -> None:
        async with AsyncConnectionPool(settings.db.dsn, min_size=1, max_size=2, open=False) as pool:
            await pool.wait(timeout=30)
            await Ingester(settings, TimescaleSink(pool)).run(stop)

    _run_until_signal(main)


@app.command()
def rules() -> None:
    """Run the rules engine: excursions, MKT, budgets, alerts and their delivery."""
    from alerts.service import run_rules_engine

    settings = _settings()
    _run_until_signal(lambda stop: run_rules_engine(settings, stop))


@app.command()
def web(
    host: Annotated[
        str | None, typer.Option(help="Listen address (default from settings).")
    ] = None,
    port: Annotated[int | None, typer.Option(help="Port (default from settings).")] = None,
) -> None:
    """Serve the HTTP API and the dashboard on one port."""
    import uvicorn
    from api.app import create_app

    settings = _settings()
    uvicorn.run(
        create_app(settings),
        host=host or settings.web.host,
        port=port or settings.web.port,
        log_level=settings.log_level.lower(),
    )


@app.command()
def simulate(
    scenario: Annotated[
        str | None, typer.Option(help="Bundled scenario name or path to a file.")
    ] = None,
    speed: Annotated[
        float | None, typer.Option(help="Time acceleration (1 = real time); default from settings.")
    ] = None,
    fast: Annotated[
        bool, typer.Option(help="As fast as possible, with back-dated timestamps.")
    ] = False,
    seed: Annotated[
        int | None, typer.Option(help="Random seed (same seed, same readings).")
    ] = None,
    ground_truth: Annotated[
        Path | None, typer.Option(help="Write the ground truth JSON here.")
    ] = None,
    provision: Annotated[
        bool, typer.Option(help="Register the fleet in the database first.")
    ] = True,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """Drive the platform with a simulated fleet of loggers."""
    from simulator.service import run_simulation

    settings = _settings()
    _run_until_signal(
        lambda stop: run_simulation(
            settings,
            scenario=scenario or settings.simulator.scenario,
            speed=None if fast else (speed or settings.simulator.speed),
            seed=settings.simulator.seed if seed is None else seed,
            dsn=settings.db.dsn if provision else None,
            ground_truth_path=ground_truth,
            progress=progress and sys.stderr.isatty(),
            stop_event=stop,
        )
    )


@app.command()
def up(
    simulator: Annotated[
        bool, typer.Option(help="Also run the simulator with the demo fleet.")
    ] = True,
    scenario: Annotated[str, typer.Option(help="Scenario for the simulator.")] = "demo",
) -> None:
    """Start the whole platform locally (database, broker, ingester, rules, web, simulator)."""
    from coldchain.supervisor import run_stack

    settings = _settings()
    raise typer.Exit(run_stack(settings, simulator=simulator, scenario=scenario))


def main() -> None:  # pragma: no cover - console entry
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
