"""The running stages: ``ingest``, ``rules``, ``automate``, ``web``, ``simulate``, ``logger``
and ``up``.

Plain functions: :mod:`launcher.cli` registers them as top-level commands, in its order. Each
imports its stage only when it runs, so ``coldchain --help`` stays fast.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from launcher.cli.common import load_settings, run_until_signal


def ingest() -> None:
    """Consume device telemetry from MQTT and store it in TimescaleDB."""
    from psycopg_pool import AsyncConnectionPool

    from ingest.readiness import wait_for_database
    from ingest.service import Ingester
    from ingest.sink import TimescaleSink

    settings = load_settings()

    async def main(stop: asyncio.Event) -> None:
        # Started before the database (or while it recovers): wait, saying so, until it answers
        # or we are stopped. Later outages are the ingester's to ride out (it retries commits);
        # the pool's short timeout lets each retry, and a stop, happen within seconds.
        if not await wait_for_database(settings.db.dsn, stop):
            return
        pool = AsyncConnectionPool(settings.db.dsn, min_size=1, max_size=2, open=False, timeout=5)
        await pool.open()
        try:
            await Ingester(settings, TimescaleSink(pool)).run(stop)
        finally:
            await pool.close(timeout=1)

    run_until_signal(main)


def rules() -> None:
    """Run the rules engine: excursions, MKT, budgets, alerts and their delivery."""
    from alerts.service import run_rules_engine

    settings = load_settings()
    run_until_signal(lambda stop: run_rules_engine(settings, stop))


def automate() -> None:
    """Start and arrive shipments on their own (first reading after departure, geofences) and
    queue their lifecycle webhooks."""
    from services.automation import run_automation

    settings = load_settings()
    run_until_signal(lambda stop: run_automation(settings, stop))


def web(
    host: Annotated[
        str | None, typer.Option(help="Listen address (default from settings).")
    ] = None,
    port: Annotated[int | None, typer.Option(help="Port (default from settings).")] = None,
) -> None:
    """Serve the HTTP API and the dashboard on one port."""
    import gc

    import uvicorn

    from api.app import create_app

    settings = load_settings()
    web_app = create_app(settings)
    # What is loaded by now (Dash, Plotly, pandas: about a million objects) lives as long as
    # the process: keep it out of the collector's full passes, which otherwise add ~100 ms to
    # every other request that allocates a lot (bench/web_pages.py: the MKT/budget callback).
    gc.freeze()
    uvicorn.run(
        web_app,
        host=host or settings.web.host,
        port=port or settings.web.port,
        log_level=settings.log_level.lower(),
    )


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
        bool,
        typer.Option(
            help="Register the fleet first, through the services (products, sites, lanes, "
            "loggers, shipments, attachments; then each trip is started)."
        ),
    ] = True,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
    provision_only: Annotated[
        bool, typer.Option(help="Register the fleet, print what was new, publish nothing.")
    ] = False,
) -> None:
    """Drive the platform with a simulated fleet of loggers, faults included."""
    from services.caller import Caller
    from services.fleet import registrar
    from simulator.service import run_simulation

    settings = load_settings()
    # The console registers the fleet through the services, as `coldchain ... import` would;
    # the broker files stay the job of `coldchain devices provision` / `coldchain up` (the
    # simulator publishes with its own account).
    register = registrar(
        settings.db.dsn, Caller.console(), topic_root=settings.mqtt.topic_root, broker_dir=None
    )
    speed_ = None if fast else (speed or settings.simulator.speed)
    seed_ = seed if seed is not None else settings.simulator.seed
    start_ = start.replace(tzinfo=UTC) if start and start.tzinfo is None else start
    if provision_only:
        import dataclasses
        import time

        from simulator.service import register_scenario

        began = time.perf_counter()
        fleet, done = asyncio.run(
            register_scenario(
                scenario or settings.simulator.scenario,
                register=register,
                speed=speed_,
                seed=seed_,
                start=start_,
            )
        )
        counts = {k: v for k, v in dataclasses.asdict(done).items() if k != "shipment_ids"}
        typer.echo(
            f"fleet of scenario {fleet.scenario.name} registered in "
            f"{time.perf_counter() - began:.1f} s: {len(fleet.shipments)} shipments, "
            f"{len(fleet.devices)} loggers; new or changed: "
            + ", ".join(f"{k} {v}" for k, v in counts.items())
        )
        return
    run_until_signal(
        lambda stop: run_simulation(
            settings,
            scenario=scenario or settings.simulator.scenario,
            speed=speed_,
            seed=seed_,
            register=register if provision else None,
            ground_truth_path=ground_truth,
            progress=progress and sys.stderr.isatty(),
            stop_event=stop,
            start=start_,
        )
    )


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

    settings = load_settings()
    if register:
        # Through the loggers service, as `coldchain loggers add` (audited, as the console); a
        # logger registered already, even with other values, is used as it is.
        from coldchain.errors import RecordConflictError
        from launcher.cli.common import connect
        from services import loggers
        from services.caller import Caller

        spec = loggers.LoggerIn(
            device_id=device_id, model="virtual", interval_s=max(1, round(interval))
        )
        with contextlib.suppress(RecordConflictError), connect(settings) as conn:
            loggers.register_logger(
                conn,
                Caller.console(),
                logger=spec,
                topic_root=settings.mqtt.topic_root,
                broker_dir=None,
                reason="virtual logger (coldchain logger)",
            )
    typer.echo(
        f"virtual logger {device_id}: type a temperature and Enter to change it; Ctrl-C stops"
    )
    run_until_signal(
        lambda stop: run_virtual_logger(
            settings,
            device_id=device_id,
            temp_c=temp,
            interval_s=interval,
            read_stdin=sys.stdin.isatty(),
            stop_event=stop,
        )
    )


def history(
    scenario: Annotated[
        str, typer.Option(help="A history scenario (bundled name or file) with a [history] table.")
    ] = "history",
) -> None:
    """Back-fill months of finished shipments (readings, excursions, verdicts) for the lane
    history the forecasts learn from; nothing if they are stored already."""
    from launcher.cli.common import connect
    from services.caller import Caller
    from services.history import backfill_history

    settings = load_settings()
    with connect(settings) as conn:
        done = backfill_history(
            conn,
            Caller.console(),
            scenario=scenario,
            now=datetime.now(UTC),
            settings=settings,
        )
    if done.skipped:
        typer.echo(f"history {scenario!r}: its {done.shipments} shipments are stored already")
    else:
        typer.echo(
            f"history {scenario!r}: {done.shipments} finished shipments, {done.readings} "
            f"readings, {done.lanes} new lane(s), {done.carriers} new carrier(s) "
            f"in {done.wall_s:.1f} s"
        )
    if done.alerts_settled or done.notifications_suppressed:
        typer.echo(
            f"history {scenario!r}: {done.alerts_settled} alert(s) of its shipments acknowledged "
            f"and resolved as simulator:history (no person), {done.notifications_suppressed} "
            "queued notification(s) of them closed unsent"
        )


def up(
    simulator: Annotated[
        bool, typer.Option(help="Also run the simulator with the demo fleet.")
    ] = True,
    scenario: Annotated[str, typer.Option(help="Scenario for the simulator.")] = "demo",
) -> None:
    """Start the whole platform locally (database, broker, ingester, rules, web, simulator)."""
    from launcher.supervisor import run_stack

    settings = load_settings()
    raise typer.Exit(run_stack(settings, simulator=simulator, scenario=scenario))
