"""The ``coldchain`` command: one entry point, a subcommand per running stage.

Settings come from ``COLDCHAIN_…`` environment variables (and ``.env``); see the README.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from datetime import UTC, datetime
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
    logging.getLogger("yoyo").setLevel(logging.WARNING)  # one line per step is noise
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
        str | None, typer.Option(help="Bundled scenario name (demo, ...) or a scenario file.")
    ] = None,
    speed: Annotated[
        float | None, typer.Option(help="Time acceleration (1 = real time); default from settings.")
    ] = None,
    fast: Annotated[
        bool, typer.Option(help="As fast as possible, with back-dated timestamps.")
    ] = False,
    seed: Annotated[
        int | None, typer.Option(help="Random seed; default: the scenario's own.")
    ] = None,
    start: Annotated[
        datetime | None,
        typer.Option(help="Simulated start time (UTC); fixed start + seed = identical bytes."),
    ] = None,
    ground_truth: Annotated[
        Path | None, typer.Option(help="Write what really happened (ground truth JSON) here.")
    ] = None,
    provision: Annotated[
        bool, typer.Option(help="Register the fleet (products, shipments, loggers) first.")
    ] = True,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """Drive the platform with a simulated fleet of loggers, faults included."""
    from simulator.service import run_simulation

    settings = _settings()
    _run_until_signal(
        lambda stop: run_simulation(
            settings,
            scenario=scenario or settings.simulator.scenario,
            speed=None if fast else (speed or settings.simulator.speed),
            seed=seed if seed is not None else settings.simulator.seed,
            dsn=settings.db.dsn if provision else None,
            ground_truth_path=ground_truth,
            progress=progress and sys.stderr.isatty(),
            stop_event=stop,
            start=start.replace(tzinfo=UTC) if start and start.tzinfo is None else start,
        )
    )


@app.command()
def logger(
    device_id: Annotated[str, typer.Option(help="The virtual logger's id.")] = "SIM-VIRTUAL-01",
    temp: Annotated[float, typer.Option(help="Starting temperature, °C.")] = 5.0,
    interval: Annotated[float, typer.Option(help="Seconds between readings.")] = 10.0,
    register: Annotated[
        bool, typer.Option(help="Register the logger in the database if it is not known.")
    ] = True,
) -> None:
    """One virtual logger for manual testing: type a temperature (e.g. 12) and Enter to set it.

    It also obeys {"temp_c": 12} published to {root}/sim/{device_id}/set.
    """
    from simulator.service import run_virtual_logger

    settings = _settings()
    if register:
        import psycopg

        with psycopg.connect(settings.db.dsn) as conn:
            conn.execute(
                "INSERT INTO devices (device_id, model, interval_s) VALUES (%s, 'virtual', %s)"
                " ON CONFLICT (device_id) DO NOTHING",
                (device_id, max(1, round(interval))),
            )
    typer.echo(
        f"virtual logger {device_id}: type a temperature and Enter to change it; Ctrl-C stops"
    )
    _run_until_signal(
        lambda stop: run_virtual_logger(
            settings,
            device_id=device_id,
            temp_c=temp,
            interval_s=interval,
            read_stdin=sys.stdin.isatty(),
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
