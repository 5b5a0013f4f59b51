"""Back-fill months of finished shipments from a history scenario (issue 17; ``coldchain
history``, and ``make demo`` before its live fleet starts).

Every step is the platform's own path, as for the live simulator (:mod:`services.fleet`):

1. the fleet (:func:`simulator.history.history_fleet`) is registered by
   :func:`services.fleet.register_fleet`: products, sites, carriers, lanes, loggers, shipments,
   each logger attached and each shipment started at its planned departure;
2. the loggers' readings from departure to arrival are stored in one transaction by the
   ingester's own bulk statements (:data:`db.queries.ingest.STAGING_COPY` then
   :data:`~db.queries.ingest.MERGE_STAGED`): ``readings``, ``device_state`` and the change log
   the rules engine follows, so the engine records the excursions as it does for live data;
3. each shipment's logger is detached and the shipment arrives at its arrival time with its
   verdicts (:func:`services.lifecycle.arrive`): it waits in the QA queue as a real one would.

Not through MQTT: twelve weeks of readings would take twelve weeks, or flood the broker. Run
again on the same database, it does nothing (the history's shipments are booked already).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from db.queries import bookings as booking_q
from db.queries import ingest as ingest_sql
from db.types import Conn
from services import bookings, lifecycle
from services.caller import Caller
from services.fleet import register_fleet
from simulator.history import arrivals, history_fleet, transit_readings
from simulator.scenario import Scenario, load_scenario


@dataclass(frozen=True, slots=True)
class HistoryResult:
    """What a back-fill did (``skipped``: the history was there already)."""

    shipments: int
    readings: int
    lanes: int
    carriers: int
    skipped: bool
    wall_s: float


def backfill_history(
    conn: Conn,
    caller: Caller,
    *,
    scenario: str | Path | Scenario = "history",
    now: datetime,
    gap_factor: float,
    topic_root: str,
    broker_dir: Path | None = None,
) -> HistoryResult:
    """Store the history scenario's finished shipments, ending before ``now`` (module
    docstring). ``conn`` in autocommit mode (each step is its own transaction)."""
    t0 = time.monotonic()
    sc = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
    fleet = history_fleet(sc, now=now)
    refs = [s.reference for s in fleet.shipments]
    booked = booking_q.states_by_reference(conn=conn, references=refs)
    if len(booked) == len(refs):
        return HistoryResult(len(refs), 0, 0, 0, True, time.monotonic() - t0)
    reg = register_fleet(conn, caller, fleet, topic_root=topic_root, broker_dir=broker_dir, now=now)
    arrived = arrivals(fleet)
    with conn.transaction():
        conn.execute(ingest_sql.STAGING_CREATE)
        with conn.cursor().copy(ingest_sql.STAGING_COPY) as copy:
            copy.set_types(ingest_sql.STAGING_TYPES)
            for r in transit_readings(fleet, arrived):
                copy.write_row((r.device_id, r.ts, r.temp_c, r.rh, r.lat, r.lon, r.battery))
        row = conn.execute(ingest_sql.MERGE_STAGED).fetchone()
    stored = int(next(iter(row.values()))) if row else 0
    states = booking_q.states_by_reference(conn=conn, references=refs)
    reason = f"simulated history: scenario {sc.name}"
    for s in fleet.shipments:
        if states[s.reference]["status"] != "in_transit":
            continue  # moved already (an interrupted earlier run that got this far)
        shipment_id = reg.shipment_ids[s.reference]
        at = arrived[s.reference]
        for device_id in s.device_ids:
            bookings.detach(conn, caller, shipment_id=shipment_id, device_id=device_id, now=at,
                            reason=reason)  # fmt: skip
        lifecycle.arrive(conn, caller, shipment_id=shipment_id, now=at, gap_factor=gap_factor,
                         reason=reason)  # fmt: skip
    return HistoryResult(len(refs), stored, reg.lanes, reg.carriers, False, time.monotonic() - t0)
