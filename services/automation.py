"""Shipments that start and arrive on their own, and the webhooks of every shipment's life.

``coldchain automate`` (a stage of ``coldchain up``) runs :func:`run_automation`. It follows the
readings the ingester stores, as the rules engine does: the ingester records each commit in
``reading_changes`` and NOTIFYs; this worker takes the changes after its own cursor (``automation``
in ``engine_cursor``), looks at the planned and in-transit shipments whose loggers they touch and
asks :mod:`coldchain.automation` whether one starts or arrives, then moves the cursor *in the same
transaction* as the transitions it made. Killed and started again, it neither misses a reading
nor moves a shipment twice. The cursor moves by the transaction horizon (:mod:`coldchain.changes`):
a change committed after a later one is taken all the same, once its transaction has ended.
Every ``automation.sweep_interval_s`` it also looks at every planned and in-transit shipment
with a logger: a booking changed (a departure brought forward, a lane set).
With each sweep it also e-mails the weekly lane quality reports due
(:func:`services.lane_reports.send_due`: at most once per subscription and week).

A transition it makes is the same as a person's (:mod:`services.lifecycle`): the shipment
locked, the state machine asked, the row updated with its audit entry, a timeline entry; the
arrival judges every product on board. The caller is :data:`SYSTEM` (actor
``system:automation``, role operator); the reason names the rule and the reading ("first reading
after departure (planned …) at …", "left origin geofence <GLN> … at …", "entered destination
geofence <GLN> … at …"), and the transition's time is that reading's time, not the clock's.
The timeline entry's ``data`` has the rule, the logger and the reading's time.

Why a stage of its own rather than inside the rules engine: the engine (``alerts/``) sits below
the services and may not import them (``tests/test_layers.py``), and a shipment's transitions
are the services' to make. The delivery of the webhooks stays the engine's: its worker sends
every row of the outbox.

A dock scan
-----------
:func:`dock_scan` arrives a shipment by one of its units (an SSCC or SGTIN label on board)
scanned at a site's GLN: the shipment the unit is on board now, if in transit, arrives now,
with the reason "dock scan of <EPC> at GLN <gln>". A shipment whose lane names another
destination is refused (409); a scan of a shipment that already arrived changes nothing (the
second pallet of the same delivery).

Webhooks
--------
Each timeline entry of :data:`WEBHOOK_EVENTS` is put in ``lifecycle_outbox`` by a trigger, in the
transaction that writes it, whoever writes it (``db/migrations/0012_lifecycle_automation.sql``).
This worker turns each into one ``notifications`` row per ``automation.webhook_urls`` receiver
(:func:`queue_webhooks`), which the rules engine's :class:`~alerts.delivery.DeliveryWorker` signs
and sends like an alert's (``X-Coldchain-Event: shipment.started`` …; payload:
:func:`lifecycle_payload`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import psycopg
from psycopg.rows import DictRow, dict_row

from alerts.policy import json_safe
from coldchain.automation import Fix, Trigger, arrive_trigger, start_trigger
from coldchain.changes import Position, next_position
from coldchain.errors import (
    IdentifierError,
    InvalidRecordError,
    NotFoundError,
    RecordConflictError,
    ShipmentStateError,
)
from coldchain.geo import Geofence, bounding_box
from coldchain.gs1 import check_key
from coldchain.runtime import first_of, utcnow
from coldchain.settings import Settings
from db.listen import listen
from db.queries import automation as q
from db.queries import bookings as booking_q
from db.types import Conn, Row
from reports.service import ReportSources
from services import lifecycle
from services.caller import Caller
from services.lane_reports import send_due
from services.reports import ReportSettings
from traceability.identifiers import parse_unit

log = logging.getLogger(__name__)

CURSOR_NAME: Final = "automation"
#: Reading changes taken per transaction.
CHANGES_PER_ROUND: Final = 10_000
#: Timeline entries turned into notifications per transaction.
WEBHOOKS_PER_ROUND: Final = 500

#: Who the automatic transitions are recorded as: an operator's permission, a name of its own.
SYSTEM: Final = Caller(
    "system:automation", "operator", f"automation@{socket.gethostname()}", "Lifecycle automation"
)

#: Timeline entry → the webhook's event (``X-Coldchain-Event``).
WEBHOOK_EVENTS: Final[dict[str, str]] = {
    "create": "shipment.created",
    "start": "shipment.started",
    "arrive": "shipment.arrived",
    "verdict": "shipment.verdict",
    "release": "shipment.released",
    "quarantine": "shipment.quarantined",
    "reject": "shipment.rejected",
    "return": "shipment.returned",
    "cancel": "shipment.cancelled",
}


@dataclass
class AutomationStats:
    """What the worker did since it started."""

    started: int = 0
    arrived: int = 0
    errors: int = 0
    webhooks_queued: int = 0
    lane_reports: int = 0  # weekly lane reports e-mailed


def _fence(row: Row, end: str) -> tuple[Geofence | None, str]:
    """The geofence of the lane's ``origin`` or ``destination`` and how to name it."""
    lat, lon, radius = row[f"{end}_lat"], row[f"{end}_lon"], row[f"{end}_geofence_m"]
    site = row[f"{end}_gln"] or row[f"{end}_id"] or ""
    name = f"GLN {site}" if row[f"{end}_gln"] else str(site)
    if lat is None or lon is None or radius is None:
        return None, name
    return Geofence(float(lat), float(lon), float(radius)), name


def _fixes(rows: list[Row]) -> list[Fix]:
    return [Fix(r["ts"], r["device_id"], r["lat"], r["lon"]) for r in rows]


def _data(trigger: Trigger) -> dict[str, Any]:
    return {
        "automatic": True,
        "rule": trigger.rule,
        "device_id": trigger.device_id,
        "reading_ts": trigger.at.isoformat(),
    }


def consider(
    conn: Conn,
    shipment: Row,
    *,
    now: datetime,
    gap_factor: float,
    release: ReportSources | None = None,
) -> list[Trigger]:
    """Start and then arrive ``shipment`` (a :func:`db.queries.automation.candidates` row) if
    its readings say so; the triggers applied, in order. A shipment that someone else moved
    meanwhile is left as it is. With ``release``, a conforming arrival that QA's policies cover
    is released automatically, as a person's arrival would be (:func:`lifecycle.arrive`)."""
    applied: list[Trigger] = []
    status, started_at = shipment["status"], shipment["started_at"]
    sid = int(shipment["shipment_id"])
    try:
        if status == "planned":
            origin, origin_site = _fence(shipment, "origin")
            trigger = start_trigger(
                _fixes(q.fixes(conn=conn, shipment_id=sid, since=None)),
                departure=shipment["planned_departure"],
                origin=origin,
                origin_site=origin_site,
            )
            if trigger is None:
                return applied
            lifecycle.move(conn, SYSTEM, shipment_id=sid, event="start", reason=trigger.reason,
                           now=trigger.at, data=_data(trigger))  # fmt: skip
            applied.append(trigger)
            status, started_at = "in_transit", trigger.at
        if status == "in_transit" and started_at is not None:
            destination, site = _fence(shipment, "destination")
            if destination is None:
                return applied
            box = bounding_box(destination)
            rows = q.fixes(
                conn=conn,
                shipment_id=sid,
                since=started_at,
                box=(box.lat_min, box.lat_max, box.lon_min, box.lon_max),
            )
            trigger = arrive_trigger(
                _fixes(rows), started_at=started_at, destination=destination, site=site
            )
            if trigger is None:
                return applied
            lifecycle.arrive(conn, SYSTEM, shipment_id=sid, now=now, at=trigger.at,
                             gap_factor=gap_factor, reason=trigger.reason,
                             data=_data(trigger), release=release)  # fmt: skip
            applied.append(trigger)
    except ShipmentStateError as exc:  # moved by someone else since it was read: theirs
        log.info("shipment %s not moved automatically: %s", shipment["reference"], exc)
    return applied


def _consider_all(
    conn: Conn,
    shipments: list[Row],
    *,
    now: datetime,
    gap_factor: float,
    stats: AutomationStats,
    release: ReportSources | None,
) -> None:
    """Each shipment apart: one that fails is logged and rolled back; the others go on."""
    for shipment in shipments:
        try:
            with conn.transaction():  # a savepoint in a batch; its own transaction in a sweep
                for trigger in consider(
                    conn, shipment, now=now, gap_factor=gap_factor, release=release
                ):
                    if trigger.rule == "entered_destination":
                        stats.arrived += 1
                    else:
                        stats.started += 1
                    log.info("shipment %s: %s", shipment["reference"], trigger.reason)
        except psycopg.OperationalError:
            raise
        except Exception:  # one shipment's fault must not stop the others (nor move the cursor
            # past them silently: the sweep tries it again)
            stats.errors += 1
            log.exception("shipment %s: automatic transition failed", shipment["reference"])


def process_changes(
    conn: Conn,
    *,
    now: datetime,
    gap_factor: float,
    stats: AutomationStats | None = None,
    release: ReportSources | None = None,
) -> int:
    """Look at the shipments touched by every reading change after the cursor; return the
    number of changes taken. Each batch and its transitions commit with the cursor's move."""
    stats = stats if stats is not None else AutomationStats()
    q.ensure_cursor(conn=conn, name=CURSOR_NAME)
    taken = 0
    while True:
        with conn.transaction():
            cursor = q.lock_cursor(conn=conn, name=CURSOR_NAME)
            horizon = q.horizon(conn=conn)
            changes = q.pending_changes(
                conn=conn, after=cursor, horizon=horizon, limit=CHANGES_PER_ROUND
            )
            if not changes:
                return taken
            devices = sorted({c["device_id"] for c in changes})
            shipments = q.candidates(conn=conn, devices=devices)
            _consider_all(
                conn, shipments, now=now, gap_factor=gap_factor, stats=stats, release=release
            )
            read = [Position(int(c["xid"]), int(c["change_id"])) for c in changes]
            to = next_position(read, limit=CHANGES_PER_ROUND, horizon=horizon)
            q.move_cursor(conn=conn, name=CURSOR_NAME, to=to)
        taken += len(changes)


def sweep(
    conn: Conn,
    *,
    now: datetime,
    gap_factor: float,
    stats: AutomationStats | None = None,
    release: ReportSources | None = None,
) -> None:
    """Look at every planned and in-transit shipment that has a logger, each in a transaction
    of its own (``conn`` in autocommit), so that no lock is held longer than one shipment."""
    stats = stats if stats is not None else AutomationStats()
    shipments = q.candidates(conn=conn, devices=None)
    _consider_all(conn, shipments, now=now, gap_factor=gap_factor, stats=stats, release=release)


@dataclass(frozen=True, slots=True)
class DockScan:
    """What a dock scan did: the shipment, its state after, and the verdicts if it arrived."""

    shipment_id: int
    reference: str
    status: str
    arrived: bool
    verdicts: list[Row]


def _gln(value: str) -> str:
    value = value.strip()
    try:
        check_key(value, "GLN", 13)
    except IdentifierError as exc:
        raise InvalidRecordError("gln", str(exc)) from None
    return value


def dock_scan(
    conn: Conn,
    caller: Caller,
    *,
    scan: str,
    gln: str,
    now: datetime,
    gap_factor: float,
    release: ReportSources | None = None,
) -> DockScan:
    """Arrive the shipment that has the scanned unit on board, scanned at site ``gln``."""
    caller.require(lifecycle.MANAGE)
    site = _gln(gln)
    try:
        unit = parse_unit(scan, today=now.date())
    except IdentifierError as exc:
        raise InvalidRecordError("scan", str(exc)) from None
    key = {"kind": unit.kind, "sscc": unit.sscc, "gtin": unit.gtin, "serial": unit.serial}
    found = q.shipment_of_unit(conn=conn, key=key, at=now)
    if found is None:
        raise NotFoundError(f"no shipment has unit {unit.epc} on board")
    sid, reference = int(found["shipment_id"]), str(found["reference"])
    expected = found["destination_gln"]
    if expected is not None and expected != site:
        raise RecordConflictError(
            f"unit {unit.epc} rides in shipment {reference}, bound for GLN {expected}, "
            f"not GLN {site}"
        )
    if found["status"] != "in_transit":
        if found["status"] == "planned":
            raise ShipmentStateError(
                f"shipment {reference} is planned: start it before it can arrive"
            )
        return DockScan(sid, reference, str(found["status"]), False, [])
    verdicts = lifecycle.arrive(
        conn, caller, shipment_id=sid, now=now, gap_factor=gap_factor,
        reason=f"dock scan of {unit.epc} at GLN {site}",
        data={"rule": "dock_scan", "epc": unit.epc, "gln": site}, release=release,
    )  # fmt: skip
    after = booking_q.booking(conn=conn, shipment_id=sid)
    return DockScan(sid, reference, str(after["status"]) if after else "", True, verdicts)


def lifecycle_payload(entry: Row) -> dict[str, Any]:
    """The JSON document a lifecycle webhook sends for one timeline entry."""
    payload: dict[str, Any] = json_safe(
        {
            "event": WEBHOOK_EVENTS[entry["event"]],
            "shipment": {
                "id": entry["shipment_id"],
                "reference": entry["reference"],
                "status": entry["status"],
            },
            "entry": {
                "id": entry["event_id"],
                "at": entry["at"],
                "event": entry["event"],
                "from_state": entry["from_state"],
                "to_state": entry["to_state"],
                "actor": entry["actor"],
                "reason": entry["reason"],
                "data": entry["data"] or {},
            },
        }
    )
    return payload


def queue_webhooks(conn: Conn, *, receivers: list[str]) -> int:
    """Turn the pending timeline entries into notifications, one per receiver; the number of
    entries handled (with no receiver they are marked handled and nothing is sent)."""
    handled = 0
    while True:
        with conn.transaction():
            entries = q.pending_webhooks(conn=conn, limit=WEBHOOKS_PER_ROUND)
            if not entries:
                return handled
            rows = [
                (int(e["event_id"]), WEBHOOK_EVENTS[e["event"]], url, lifecycle_payload(e))
                for e in entries
                if e["event"] in WEBHOOK_EVENTS
                for url in receivers
            ]
            q.queue_webhooks(conn=conn, rows=rows, handled=[int(e["event_id"]) for e in entries])
        handled += len(entries)


def connect(dsn: str) -> Conn:
    """A connection as the worker uses it: autocommit (each step its own transaction), dict
    rows, UTC."""
    return psycopg.Connection[DictRow].connect(
        dsn, autocommit=True, row_factory=dict_row, options="-c TimeZone=UTC"
    )


class Automation:
    """One worker's state: its connection, when it last swept, what it did."""

    def __init__(self, settings: Settings, *, clock: Callable[[], datetime] = utcnow) -> None:
        self._settings = settings
        self._clock = clock
        self._conn: Conn | None = None
        # The report's sources, for the automatic release of a conforming arrival.
        self._release = ReportSettings.from_settings(settings)
        self._last_sweep: float | None = None
        self.stats = AutomationStats()

    def step(self) -> None:
        """New readings, the sweep when due, then the webhooks (blocking: run in a thread)."""
        if self._conn is None or self._conn.closed:
            self._conn = connect(self._settings.db.dsn)
        conn, gap = self._conn, self._settings.alerts.gap_factor
        process_changes(
            conn, now=self._clock(), gap_factor=gap, stats=self.stats, release=self._release
        )
        due = self._settings.automation.sweep_interval_s
        if self._last_sweep is None or time.monotonic() - self._last_sweep >= due:
            sweep(conn, now=self._clock(), gap_factor=gap, stats=self.stats, release=self._release)
            # The weekly lane reports due, at most once each (services.lane_reports).
            self.stats.lane_reports += send_due(conn, self._settings, now=self._clock()).sent
            self._last_sweep = time.monotonic()
        self.stats.webhooks_queued += queue_webhooks(
            conn, receivers=list(self._settings.automation.webhook_urls)
        )

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()

    async def run(self, stop: asyncio.Event, wake: asyncio.Event) -> None:
        """Step until ``stop``: when woken (new readings, new timeline entries) and at least
        every sweep interval. A database outage is waited out; a bug is logged and retried."""
        poll = self._settings.automation.sweep_interval_s
        try:
            while not stop.is_set():
                wake.clear()
                try:
                    await asyncio.to_thread(self.step)
                except psycopg.OperationalError as exc:
                    log.warning("database unavailable for the automation (%s); retrying", exc)
                    await asyncio.to_thread(self.close)
                    self._conn = None
                except Exception:
                    log.exception("automation step failed; retrying")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(first_of(wake, stop), timeout=poll)
        finally:
            await asyncio.to_thread(self.close)


async def run_automation(
    settings: Settings, stop: asyncio.Event, *, clock: Callable[[], datetime] = utcnow
) -> None:
    """Run until ``stop``: the worker, and the listener that wakes it."""
    worker = Automation(settings, clock=clock)
    wake = asyncio.Event()
    log.info("lifecycle automation running")
    async with asyncio.TaskGroup() as tg:
        listener = tg.create_task(
            listen(settings.db.dsn, {"reading_changes": wake, "lifecycle_events": wake}, stop),
            name="automation-listen",
        )
        await tg.create_task(worker.run(stop, wake), name="automation-run")
        listener.cancel()
    s = worker.stats
    log.info(
        "lifecycle automation stopped (%d started, %d arrived, %d errors, %d webhooks queued)",
        s.started,
        s.arrived,
        s.errors,
        s.webhooks_queued,
    )
