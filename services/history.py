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
   verdicts (:func:`services.lifecycle.arrive`): it waits in the QA queue as a real one would;
4. the rules engine judges the history's shipments with its own code
   (:meth:`alerts.rounds.RulesEngine.judge_shipments`), so their excursions and alerts are the
   engine's, not invented; this engine has **no recipients** (no tiers, no webhook, no e-mail),
   so no notification is queued for a months-old simulated alert;
5. those alerts are acknowledged and resolved through the alert services
   (:func:`services.alerts.acknowledge`, :func:`~services.alerts.resolve`) by the actor
   :data:`HISTORY_ACTOR`, ``simulator:history``, which is no person, with a comment that says
   so: on a real platform they would have been handled at the time. Should a notification of
   one be queued all the same (the live engine judged the history before this step, e.g. a
   back-fill interrupted and run again while the platform runs), it is closed unsent as given
   up, with the reason (:data:`SUPPRESSED`), and counted.

The history's shipments are not given QA decisions: a disposition is a signed record that needs
a person's password, which a back-fill has not got. They stay as the arrival left them (under
review, or released by a release policy), and the QA queue shows them so.

Not through MQTT: twelve weeks of readings would take twelve weeks, or flood the broker. Run
again on the same database, it stores nothing (the history's shipments are booked already) and
only settles what of its alerts is still unresolved (step 5).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Final

from psycopg_pool import AsyncConnectionPool

from alerts.rounds import RulesEngine
from alerts.rules import RulesFile, load_rules_file
from coldchain.settings import Settings
from db.queries import bookings as booking_q
from db.queries import history as history_q
from db.queries import ingest as ingest_sql
from db.types import Conn
from services import alerts, bookings, lifecycle
from services.caller import Caller
from services.fleet import register_fleet
from simulator.history import arrivals, history_fleet, transit_readings
from simulator.scenario import Scenario, load_scenario

#: Who acknowledges and resolves the history's alerts: the back-fill, no person.
HISTORY_ACTOR: Final = "simulator:history"
ACK_COMMENT: Final = (
    "Simulated history: this alert belongs to a months-old shipment of the simulated history "
    "(coldchain history). No person saw it; the back-fill acknowledges it in their stead."
)
RESOLVE_COMMENT: Final = (
    "Simulated history: resolved by the back-fill (simulator:history), not by a person; no "
    "notification of it was sent."
)
#: Why an unsent notification of a history alert is closed (``notifications.last_error``).
SUPPRESSED: Final = "suppressed: an alert of the simulated history (coldchain history), not sent"


@dataclass(frozen=True, slots=True)
class HistoryResult:
    """What a back-fill did (``skipped``: the history was there already): ``alerts_opened`` by
    the engine's round, ``alerts_settled`` (acknowledged and resolved as simulated),
    ``notifications_suppressed`` (closed unsent)."""

    shipments: int
    readings: int
    lanes: int
    carriers: int
    skipped: bool
    wall_s: float
    alerts_opened: int = 0
    alerts_settled: int = 0
    notifications_suppressed: int = 0


def backfill_history(
    conn: Conn,
    caller: Caller,
    *,
    scenario: str | Path | Scenario = "history",
    now: datetime,
    settings: Settings,
    broker_dir: Path | None = None,
) -> HistoryResult:
    """Store the history scenario's finished shipments, ending before ``now``, have the rules
    engine judge them and settle their alerts as simulated (module docstring). ``conn`` in
    autocommit mode (each step is its own transaction); the engine connects with
    ``settings.db``."""
    t0 = time.monotonic()
    sc = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
    fleet = history_fleet(sc, now=now)
    refs = [s.reference for s in fleet.shipments]
    booked = booking_q.states_by_reference(conn=conn, references=refs)
    if len(booked) == len(refs):
        ids = [int(b["shipment_id"]) for b in booked.values()]
        settled, suppressed = settle_history_alerts(conn, shipment_ids=ids, scenario=sc.name)
        return HistoryResult(
            len(refs), 0, 0, 0, True, time.monotonic() - t0, 0, settled, suppressed
        )
    gap_factor = settings.alerts.gap_factor
    reg = register_fleet(
        conn, caller, fleet, topic_root=settings.mqtt.topic_root, broker_dir=broker_dir, now=now
    )
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
    ids = [reg.shipment_ids[r] for r in refs]
    opened = asyncio.run(judge_history(settings, ids))
    settled, suppressed = settle_history_alerts(conn, shipment_ids=ids, scenario=sc.name)
    return HistoryResult(
        len(refs), stored, reg.lanes, reg.carriers, False, time.monotonic() - t0,
        opened, settled, suppressed,
    )  # fmt: skip


async def judge_history(settings: Settings, shipment_ids: Sequence[int]) -> int:
    """Have the rules engine judge these shipments now, with the configured rules but no
    recipients (nothing is queued); how many alerts it opened."""
    path = settings.alerts.rules_file
    rules = load_rules_file(path) if path is not None else RulesFile()
    quiet = settings.model_copy(
        update={"alerts": settings.alerts.model_copy(update={"webhook_urls": [], "smtp_to": []})}
    )
    async with AsyncConnectionPool(settings.db.dsn, open=False, min_size=1, max_size=1) as pool:
        await pool.wait(timeout=30)
        engine = RulesEngine(pool, quiet, rules_file=rules.model_copy(update={"escalation": None}))
        await engine.judge_shipments(shipment_ids)
        return engine.stats.alerts_opened


def settle_history_alerts(
    conn: Conn, *, shipment_ids: Sequence[int], scenario: str
) -> tuple[int, int]:
    """Acknowledge and resolve, as :data:`HISTORY_ACTOR`, the unresolved alerts of these
    history shipments, and close their unsent notifications (:data:`SUPPRESSED`); return
    (alerts settled, notifications suppressed)."""
    actor = Caller(HISTORY_ACTOR, "admin", f"coldchain history ({scenario})", "Simulated history")
    found = history_q.unresolved_alerts(conn=conn, shipment_ids=shipment_ids)
    for a in found:
        if a["state"] == "open":
            alerts.acknowledge(conn, actor, alert_id=a["alert_id"], comment=ACK_COMMENT)
        alerts.resolve(conn, actor, alert_id=a["alert_id"], comment=RESOLVE_COMMENT)
    with conn.transaction():
        suppressed = history_q.suppress_notifications(
            conn=conn, shipment_ids=shipment_ids, reason=SUPPRESSED
        )
    return len(found), suppressed
