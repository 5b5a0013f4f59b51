"""Register a simulated fleet through the services a person or an ERP uses (issue 13).

The demo and the load test must prove the real path, so the fleet a scenario describes
(:class:`simulator.fleet.Fleet`) is registered by the same service functions as the API and the
CLI call, as ``caller`` (the console for ``coldchain simulate``), each change audited with who
and why:

* products: :func:`services.products.create_product` (a product the scenario now defines
  differently is changed with :func:`~services.products.update_product`: a new profile version);
* sites, carriers and lanes: :func:`services.locations.create_record` (one site per city, its
  GLN made from the scenario's company prefix and the city's name, so it is stable; one lane per
  route of the fleet);
* loggers: :func:`services.loggers.import_loggers` (the bulk path: one CSV, one transaction),
  and :func:`~services.loggers.update_logger` for a logger whose calibration the scenario moved;
* shipments with their lot: :func:`services.shipment_import.import_csv` (the bulk path);
* each logger attached with :func:`services.bookings.attach` from the fleet's start, and each
  shipment still planned started with :func:`services.lifecycle.start` at its planned departure
  (or now, if that is later: the call an operator makes when the truck leaves).

Running the same fleet again registers nothing twice: what is registered is left (a booked
shipment keeps its booking; a logger already riding in its shipment keeps its assignment, open
from the first run, which so covers the new run and keeps the earlier readings in the
shipment). The serialised units, their packing and loading go in as the EPCIS document a
packing line and a warehouse system would send (:mod:`simulator.epcis`), through
:func:`services.trace.import_epcis` (its events are named by their content, so the same fleet's
document again is recognised and skipped). The planned legs are written for the whole fleet at once
(:func:`db.queries.bookings.replace_legs_by_reference`), in the caller's audit context: the
shipments come in through the CSV import, which books no legs.

This module sits in ``services`` (not in ``simulator``, which is below the services, nor in the
launcher, which is an edge): registering a fleet is an operation of the platform that the CLI,
the tests and the benchmarks call alike.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import dict_row

from coldchain.errors import EPCISRejected, InvalidRecordError, RecordConflictError
from coldchain.gs1 import check_digit
from db.queries import bookings as booking_q
from db.queries import devices as device_q
from db.queries.trace import epcis_store as epcis_q
from db.types import Conn
from security import devices as mqtt
from services import bookings, lifecycle, locations, loggers, products, shipment_import, trace
from services.caller import Caller, acting
from services.csvimport import ImportResult
from simulator.epcis import fleet_document
from simulator.fleet import Fleet

#: A simulated site's geofence radius: a depot or an airport, not a city.
SITE_GEOFENCE_M = 2_000.0


@dataclass
class FleetRegistration:
    """What registering a fleet did (new records; the rest was registered already)."""

    products: int = 0
    products_changed: int = 0
    sites: int = 0
    carriers: int = 0
    lanes: int = 0
    loggers: int = 0
    loggers_changed: int = 0
    shipments: int = 0
    riding: int = 0  # loggers riding in their shipment (attached now or before)
    started: int = 0
    epcis_events: int = 0  # new events of the units' EPCIS document
    shipment_ids: dict[str, int] = field(default_factory=dict)


def site_gln(company_prefix: str, city: str) -> str:
    """The GLN of the fleet's site in ``city``: the company prefix, a number from the city's
    name (stable across runs and scenarios), the GS1 check digit."""
    room = 12 - len(company_prefix)
    number = int.from_bytes(hashlib.sha256(city.encode()).digest()[:8], "big") % 10**room
    body = f"{company_prefix}{number:0{room}d}"
    return body + str(check_digit(body))


def _code(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.") or "X"


def _raise_first(result: ImportResult, what: str) -> None:
    if result.problems:
        first = result.problems[0]
        raise InvalidRecordError(
            first.field, f"{what}: {first.message} ({len(result.problems)} problem(s))"
        )


def _csv(header: tuple[str, ...], rows: list[tuple[Any, ...]]) -> str:
    """A CSV the import services read (the fleet's values hold no comma or quote)."""
    out = [",".join(header)]
    out += [",".join("" if v is None else str(v) for v in row) for row in rows]
    return "\n".join(out) + "\n"


def _products(
    conn: Conn, caller: Caller, fleet: Fleet, reason: str, out: FleetRegistration
) -> None:
    for p in fleet.products:
        spec = products.ProductIn(
            gtin=p.gtin,
            name=p.name,
            temp_min_c=p.temp_min_c,
            temp_max_c=p.temp_max_c,
            freeze_limit_c=p.freeze_limit_c,
            alarm_delay_s=p.alarm_delay_s,
            stability_budget_s=p.stability_budget_s,
            mkt_delta_h_j_mol=p.mkt_delta_h_j_mol,
            mkt_limit_c=p.mkt_limit_c,
        )
        try:
            _, created = products.create_product(conn, caller, product=spec, reason=reason)
            out.products += created
        except RecordConflictError:
            # The scenario changed the product: a new version, audited, as an editor would.
            stored = products.get_product(conn, spec.gtin)
            changes = spec.model_dump(exclude={"gtin", "stability"})
            products.update_product(conn, caller, gtin=spec.gtin, changes=changes,
                                    expected_version=stored["version"],
                                    reason=f"{reason}: the scenario changed it")  # fmt: skip
            out.products_changed += 1


def _record(
    conn: Conn, caller: Caller, table: locations.Table, record: Any, reason: str
) -> tuple[dict[str, Any], bool]:
    try:
        return locations.create_record(conn, caller, table, record=record, reason=reason)
    except RecordConflictError:
        # Registered with other values (edited by someone since): use it as it is.
        key = {"locations": "gln", "carriers": "name", "lanes": "code"}[table]
        value = getattr(record, key)
        rows = [r for r in locations.list_records(conn, table) if r[key] == value]
        if not rows:
            raise
        return rows[0], False


def _lanes(
    conn: Conn, caller: Caller, fleet: Fleet, reason: str, out: FleetRegistration
) -> tuple[dict[str, int], dict[str, int]]:
    """Sites, carriers and lanes of the fleet; the lane id of each route, the carrier ids."""
    sc = fleet.scenario
    site_ids: dict[str, str] = {}
    carrier_ids: dict[str, int] = {}
    lane_ids: dict[str, int] = {}
    for s in fleet.shipments:
        for name in (s.origin, s.destination):
            if name in site_ids:
                continue
            city = sc.city(name)
            gln = site_gln(sc.company_prefix, name)
            row, created = _record(conn, caller, "locations", locations.LocationIn(
                gln=gln, name=name, lat=city.lat, lon=city.lon, geofence_m=SITE_GEOFENCE_M,
                time_zone=city.time_zone,
            ), reason)  # fmt: skip
            site_ids[name] = row["location_id"]
            out.sites += created
        if s.carrier is not None and s.carrier not in carrier_ids:
            row, created = _record(
                conn, caller, "carriers", locations.CarrierIn(name=s.carrier), reason
            )
            carrier_ids[s.carrier] = int(row["carrier_id"])
            out.carriers += created
        if s.route not in lane_ids:
            modes = {leg.mode for leg in s.legs}
            route = next(r for r in sc.routes if r.name == s.route)
            lane = locations.LaneIn(
                code=route.lane or _code(f"{sc.fleet.id_prefix}-{s.route}"),
                origin_location_id=site_ids[s.origin],
                destination_location_id=site_ids[s.destination],
                mode=modes.pop() if len(modes) == 1 else "multimodal",
            )
            row, created = _record(conn, caller, "lanes", lane, reason)
            lane_ids[s.route] = int(row["lane_id"])
            out.lanes += created
    return lane_ids, carrier_ids


def _loggers(
    conn: Conn,
    caller: Caller,
    fleet: Fleet,
    reason: str,
    out: FleetRegistration,
    *,
    topic_root: str,
) -> None:
    specs = {
        d.device_id: loggers.LoggerIn(
            device_id=d.device_id,
            model=d.model,
            interval_s=d.interval_s,
            calibration_cert=d.calibration_cert,
            calibration_due=d.calibration_due,
        )
        for d in fleet.devices
    }
    stored = device_q.devices_by_id(conn=conn, device_ids=list(specs))
    new = [s for device_id, s in specs.items() if device_id not in stored]
    if new:
        text = _csv(loggers.CSV_COLUMNS, [
            tuple(getattr(s, c) for c in loggers.CSV_COLUMNS) for s in new
        ])  # fmt: skip
        result = loggers.import_loggers(
            conn, caller, text=text, reason=reason, topic_root=topic_root, broker_dir=None
        )
        _raise_first(result, "loggers")
        out.loggers = result.applied
    for device_id, row in stored.items():
        spec = specs[device_id]
        changes = {f: getattr(spec, f) for f in device_q.FIELDS if row[f] != getattr(spec, f)}
        if changes and row["retired_at"] is None:
            # A new calibration (a later run's scenario start moves the due date).
            loggers.update_logger(conn, caller, device_id=device_id, changes=changes,
                                  expected_version=row["version"],
                                  reason=f"{reason}: the scenario changed it")  # fmt: skip
            out.loggers_changed += 1


def _shipments(
    conn: Conn,
    caller: Caller,
    fleet: Fleet,
    lane_ids: dict[str, int],
    carrier_ids: dict[str, int],
    now: datetime,
    out: FleetRegistration,
) -> dict[str, dict[str, Any]]:
    refs = [s.reference for s in fleet.shipments]
    booked = booking_q.states_by_reference(conn=conn, references=refs)
    per_pallet = fleet.scenario.fleet.cases_per_pallet * fleet.scenario.fleet.items_per_case
    header = ("reference", "lane_id", "carrier_id", "product_gtin", "lot", "quantity",
              "planned_departure", "planned_arrival")  # fmt: skip
    rows = [
        (s.reference, lane_ids[s.route], carrier_ids.get(s.carrier or ""), s.product_gtin, s.lot,
         per_pallet, s.planned_departure.isoformat(), s.planned_arrival.isoformat())
        for s in fleet.shipments
        if s.reference not in booked
    ]  # fmt: skip
    if rows:
        result = shipment_import.import_csv(conn, caller, text=_csv(header, rows), now=now)
        _raise_first(result, "shipments")
        out.shipments = result.applied
    return booking_q.states_by_reference(conn=conn, references=refs)


def register_fleet(
    conn: Conn,
    caller: Caller,
    fleet: Fleet,
    *,
    topic_root: str,
    broker_dir: Path | None,
    now: datetime,
) -> FleetRegistration:
    """Register ``fleet`` through the services (module docstring); what was new."""
    reason = f"simulated fleet: scenario {fleet.scenario.name}"
    out = FleetRegistration()
    # One transaction (each service's own is a savepoint in it): a fleet is registered whole or
    # not at all, and 10,000 loggers do not wait for 15,000 commits.
    with conn.transaction():
        _products(conn, caller, fleet, reason, out)
        lane_ids, carrier_ids = _lanes(conn, caller, fleet, reason, out)
        _loggers(conn, caller, fleet, reason, out, topic_root=topic_root)
        states = _shipments(conn, caller, fleet, lane_ids, carrier_ids, now, out)
        out.shipment_ids = {ref: int(row["shipment_id"]) for ref, row in states.items()}
        riding = booking_q.rides_from(
            conn=conn,
            device_ids=[a.device_id for a in fleet.assignments],
            at=min((a.start for a in fleet.assignments), default=now),
        )
        for a in fleet.assignments:
            out.riding += 1
            if riding.get(a.device_id) == {out.shipment_ids[a.shipment_reference]}:
                # Riding in its shipment already (open since an earlier run): nothing to do, and
                # attach would say the same, 1.5 ms later per logger.
                continue
            bookings.attach(conn, caller, shipment_id=out.shipment_ids[a.shipment_reference],
                            device_id=a.device_id, now=a.start)  # fmt: skip
        for s in fleet.shipments:
            if states[s.reference]["status"] == "planned":
                lifecycle.start(conn, caller, shipment_id=out.shipment_ids[s.reference],
                                now=min(s.planned_departure, now), reason=reason)  # fmt: skip
                out.started += 1
        with acting(conn, caller, reason):
            booking_q.replace_legs_by_reference(
                conn=conn,
                rows=(
                    (s.reference, g.seq, g.mode, g.origin, g.destination, g.carrier,
                     g.planned_departure, g.planned_arrival)
                    for s in fleet.shipments
                    for g in s.legs
                ),
            )  # fmt: skip
        document = fleet_document(fleet)
        events = document["epcisBody"]["eventList"]
        known = epcis_q.existing_events(conn=conn, keys=[e["eventID"] for e in events])
        # Each eventID names its content (simulator.epcis): a document whose events are all
        # stored is this fleet's again, and would change nothing (validating it is most of
        # the import's time).
        if len(known) < len(events):
            try:
                imported = trace.import_epcis(
                    conn,
                    caller,
                    document=json.dumps(document),
                    source=f"scenario {fleet.scenario.name}",
                    today=now.date(),
                )
            except EPCISRejected as exc:
                raise RecordConflictError(
                    f"the units of scenario {fleet.scenario.name} (id prefix "
                    f"{fleet.scenario.fleet.id_prefix}) conflict with packing stored otherwise: "
                    "a database the simulator provisioned before its fleet went through the "
                    "services, or another fleet with that id prefix. Nothing was registered. "
                    "For the local demo, stop it and remove the stack's data folder "
                    f"(.coldchain/ by default) to start afresh. {exc}"
                ) from exc
            out.epcis_events = imported.n_new
    if out.loggers and broker_dir is not None:
        # After the commit: the files never admit a logger the database does not have.
        mqtt.write_broker_files(conn, topic_root=topic_root, out_dir=broker_dir)
    return out


def registrar(
    dsn: str, caller: Caller, *, topic_root: str, broker_dir: Path | None
) -> Callable[[Fleet], Awaitable[FleetRegistration]]:
    """What the simulator calls to register its fleet (``run_simulation(register=...)``): on
    its own connection, in a thread, so the event loop stays free."""

    def register(fleet: Fleet) -> FleetRegistration:
        with psycopg.connect(dsn, autocommit=True, row_factory=dict_row) as conn:
            return register_fleet(conn, caller, fleet, topic_root=topic_root,
                                  broker_dir=broker_dir, now=datetime.now(fleet.start.tzinfo))  # fmt: skip

    async def run(fleet: Fleet) -> FleetRegistration:
        return await asyncio.to_thread(register, fleet)

    return run
