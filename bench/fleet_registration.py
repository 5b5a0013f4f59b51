"""Registering a simulated fleet through the services (``coldchain simulate --provision-only``):
the ``load_test`` scenario's 10,000 loggers in 5,000 shipments, with 35,000 serialised units.

Run: ``.venv/bin/python bench/fleet_registration.py [--shipments 5000]``. It starts a private
PostgreSQL (``bench._common.local_stack``) and times :func:`services.fleet.register_fleet` as the
console twice: **first** (everything new: products, sites, lanes, loggers and shipments by their
bulk imports, one attach per logger and one start per shipment, the units' EPCIS document) and
**repeat** (the same fleet again: nothing new; the EPCIS document is recognised and skipped).
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
from psycopg.rows import dict_row

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import local_stack
from services.caller import Caller
from services.fleet import register_fleet
from simulator.fleet import build_fleet
from simulator.scenario import load_scenario

START = datetime(2030, 1, 1, tzinfo=UTC)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shipments", type=int, default=None, help="default: the scenario's")
    args = parser.parse_args()
    scenario = load_scenario("load_test")
    if args.shipments is not None:
        fleet_spec = scenario.fleet.model_copy(update={"shipments": args.shipments})
        scenario = scenario.model_copy(update={"fleet": fleet_spec})
    fleet = build_fleet(scenario, start=START)
    with local_stack() as stack:
        settings = stack.new_database()
        with psycopg.connect(settings.db.dsn, autocommit=True, row_factory=dict_row) as conn:
            for name in ("first", "repeat"):
                began = time.perf_counter()
                done = register_fleet(conn, Caller.console(), fleet, topic_root="bench/v1",
                                      broker_dir=None, now=START + timedelta(hours=1))  # fmt: skip
                print(
                    f"{name:7s} {len(fleet.devices):,} loggers, {len(fleet.shipments):,} shipments, "
                    f"{len(fleet.units):,} units: {time.perf_counter() - began:6.1f} s "
                    f"({done.loggers:,} loggers, {done.shipments:,} shipments, "
                    f"{done.epcis_events:,} EPCIS events new)"
                )


if __name__ == "__main__":
    main()
