"""Import EPCIS 2.0 JSON / JSON-LD documents: validate, store the events, derive packing and
custody.

A document is taken whole or not at all: it is checked against the official schema
(:mod:`traceability.epcis_schema`) and then for what the platform needs (parseable event times,
well-formed SGTIN/SSCC identifiers, a parent for ADD/DELETE packing, no eventID reused with a
different content); any problem raises :class:`EPCISRejected` listing every reason, and nothing
is written. Otherwise everything happens in one transaction.

What the events mean here
-------------------------
* Every event is stored as received (``epcis_events``) under its ``eventID``, or under
  ``sha256:`` + the hash of its canonical JSON when it has none. An event already stored is
  skipped, so importing a document twice changes nothing (and the second import leaves no row).
* Every SGTIN or SSCC an event names becomes a unit if it is not one yet, matched by its
  prefix-free key (:mod:`traceability.identifiers`). Other identifiers (GRAI, GIAI, classes,
  quantities) are kept in the stored body only.
* ObjectEvent ``ADD`` with bizStep ``commissioning`` commissions its units (earliest time
  wins), with lot and expiry from its ILMD (``cbvmda:lotNumber``,
  ``cbvmda:itemExpirationDate``) or from the identifier itself.
* AggregationEvent ``ADD`` puts each child into the parent from eventTime on; ``DELETE`` takes
  it out (without childEPCs: every child inside at that moment); ``OBSERVE`` changes nothing.
  A child's membership lasts until its next ADD or DELETE: an ADD into another parent moves it.
  The intervals are *replayed* from all stored packing events of the children concerned, so
  events may arrive in any order and in any number of documents.
* bizStep ``shipping`` puts the event's units (epcList, or the parent of an aggregation) into
  the shipment its bizTransactionList names, ``receiving`` takes them out; replayed the same way.
  A bizTransaction names a shipment when it is its reference, or ends with ``:reference`` or
  ``/reference`` (our exports write ``urn:coldchain:shipment:<reference>``).
* Packing and custody rows provisioned otherwise (the simulator) are never rewritten, only
  ended: by a packing event of the same child, or a shipping/receiving event of the same unit,
  at that event's time. If the replayed rows would put a child in two parents (or a unit in two
  shipments) at once, the document is refused.

Parsing the document is :mod:`traceability.epcis_parse` and replaying packing and custody is
:mod:`traceability.epcis_replay` (both pure); this module loads the JSON and does the
transaction.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import psycopg

from coldchain.errors import EPCISRejected
from db.queries.trace import containment as containment_q
from db.queries.trace import epcis_store as epcis_store_q
from db.types import Conn
from traceability.epcis_parse import ParsedEvent, parse_document, shipment_candidates
from traceability.epcis_replay import (
    ACTION_ORDER,
    CustodyEvent,
    PackingEvent,
    custody_intervals,
    packing_intervals,
)
from traceability.epcis_schema import Problem
from traceability.identifiers import UnitKey

__all__ = [
    "EPCISRejected",
    "ImportResult",
    "import_document",
    "load_document",
]

log = logging.getLogger(__name__)


def _not_json(constant: str) -> object:
    raise ValueError(f"{constant} is not a JSON value")


def load_document(raw: bytes | str) -> object:
    """Parse JSON text; EPCISRejected (not a ValueError) when it is not JSON.

    ``NaN`` and ``Infinity``, which Python's parser accepts, are not JSON (RFC 8259): refused
    here, before the canonical form (which has no spelling for them) is taken of any event.
    """
    try:
        return json.loads(raw, parse_constant=_not_json)
    except (ValueError, UnicodeDecodeError) as error:
        raise EPCISRejected([Problem("", f"not JSON: {error}")]) from None


# --- the import (one transaction) --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ImportResult:
    """What an import did."""

    import_id: int | None  # None when nothing was new
    document_id: str | None
    n_events: int
    n_new: int
    n_known: int
    units_created: int
    commissioned: int
    packing_children: int
    custody_units: int
    untracked: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default=())


def _resolve(conn: Conn, events: Sequence[ParsedEvent]) -> dict[tuple[str, str], UnitKey]:
    """Every unit of the document by key, under its stored EPC when it exists already."""
    keys: dict[tuple[str, str], UnitKey] = {}
    for e in events:
        for _, unit in e.roles:
            keys.setdefault(unit.key, unit)
    stored = containment_q.units_by_key(
        conn=conn,
        sgtins=[k for k, u in keys.items() if u.kind == "sgtin"],
        ssccs=[k[0] for k, u in keys.items() if u.kind == "sscc"],
    )
    return {
        k: u if k not in stored else UnitKey(u.kind, u.gtin, u.serial, u.sscc, stored[k])
        for k, u in keys.items()
    }


def import_document(conn: Conn, document: object, *, source: str, today: date) -> ImportResult:
    """Validate and import one document in one transaction (see the module doc).

    ``conn`` may be in autocommit mode (the web pool's); the import opens its own transaction
    block. Raises EPCISRejected with every reason when the document is refused.
    """
    parsed = parse_document(document, today=today)
    context = document.get("@context") if isinstance(document, dict) else None
    with conn.transaction():
        # Imports run one at a time: two documents naming the same event or the same child would
        # otherwise race on the event key and on the replayed packing.
        epcis_store_q.lock_imports(conn=conn)
        existing = epcis_store_q.existing_events(
            conn=conn, keys=[e.event_key for e in parsed.events]
        )
        clashes = [
            Problem(
                f"/epcisBody/eventList/{e.index}/eventID",
                f"eventID {e.event_key} was imported before with a different content",
            )
            for e in parsed.events
            if e.event_key in existing and existing[e.event_key] != e.content_sha256
        ]
        if clashes:
            raise EPCISRejected(clashes)
        new = [e for e in parsed.events if e.event_key not in existing]
        untracked = tuple(dict.fromkeys(t for e in parsed.events for t in e.untracked))
        if not new:
            return ImportResult(
                import_id=None,
                document_id=parsed.document_id,
                n_events=parsed.n_events,
                n_new=0,
                n_known=len(parsed.events),
                units_created=0,
                commissioned=0,
                packing_children=0,
                custody_units=0,
                untracked=untracked,
            )
        units = _resolve(conn, new)
        epc = {k: u.epc for k, u in units.items()}
        import_id = epcis_store_q.insert_import(
            conn=conn,
            source=source,
            document_id=parsed.document_id,
            document_sha256=parsed.document_sha256,
            n_events=parsed.n_events,
            n_new=len(new),
        )
        created = epcis_store_q.insert_units(
            conn=conn,
            units=[
                {
                    "epc": u.epc,
                    "kind": u.kind,
                    "gtin": u.gtin,
                    "serial": u.serial,
                    "sscc": u.sscc,
                    "lot": u.lot,
                    "expiry": u.expiry,
                }
                for u in units.values()
            ],
        )
        commissioning = [
            {
                "epc": epc[u.key],
                "at": e.event_time,
                "lot": e.lot or u.lot,
                "expiry": e.expiry or u.expiry,
            }
            for e in new
            if e.commissions
            for _, u in e.roles
        ]
        epcis_store_q.commission_units(conn=conn, rows=commissioning)
        rows, role_rows = _event_rows(conn, new, epc, import_id, context)
        epcis_store_q.insert_events(conn=conn, events=rows, epcs=role_rows)
        children = _replay_packing(conn, new, epc)
        custody = _replay_custody(conn, new, epc)
    result = ImportResult(
        import_id=import_id,
        document_id=parsed.document_id,
        n_events=parsed.n_events,
        n_new=len(new),
        n_known=len(parsed.events) - len(new),
        units_created=created,
        commissioned=len({r["epc"] for r in commissioning}),
        packing_children=children,
        custody_units=custody,
        untracked=untracked,
    )
    log.info(
        "EPCIS import %s from %s: %d new event(s), %d known, %d unit(s) created",
        import_id,
        source,
        result.n_new,
        result.n_known,
        result.units_created,
    )
    return result


def _event_rows(
    conn: Conn,
    new: Sequence[ParsedEvent],
    epc: Mapping[tuple[str, str], str],
    import_id: int,
    context: object,
) -> tuple[list[dict[str, Any]], list[tuple[str, str, str]]]:
    rows: list[dict[str, Any]] = []
    role_rows: list[tuple[str, str, str]] = []
    # A DELETE without children unpacks whatever is inside the parent at that moment, as
    # stored or as packed by this document's earlier events.
    added: dict[str, list[tuple[datetime, str]]] = {}
    for e in sorted(new, key=lambda e: (e.event_time, ACTION_ORDER.get(e.action or "", 2))):
        parent_epc = None if e.parent is None else epc[e.parent.key]
        body = (
            e.body if "@context" in e.body or context is None else {"@context": context, **e.body}
        )
        rows.append(
            {
                "event_key": e.event_key,
                "event_id": e.event_id,
                "content_sha256": e.content_sha256,
                "event_type": e.event_type,
                "action": e.action,
                "biz_step": e.biz_step,
                "disposition": e.disposition,
                "event_time": e.event_time,
                "tz_offset": e.tz_offset,
                "read_point": e.read_point,
                "biz_location": e.biz_location,
                "parent_epc": parent_epc,
                "lat": e.lat,
                "lon": e.lon,
                "body": body,
                "import_id": import_id,
            }
        )
        for role, unit in e.roles:
            role_rows.append((e.event_key, role, epc[unit.key]))
            if role == "child" and e.action == "ADD" and parent_epc is not None:
                added.setdefault(parent_epc, []).append((e.event_time, epc[unit.key]))
        has_children = any(role == "child" for role, _ in e.roles)
        if (
            e.event_type == "AggregationEvent"
            and e.action == "DELETE"
            and parent_epc is not None
            and not has_children
        ):
            inside = set(epcis_store_q.children_at(conn=conn, parent=parent_epc, at=e.event_time))
            inside |= {c for t, c in added.get(parent_epc, []) if t <= e.event_time}
            role_rows.extend((e.event_key, "child", c) for c in sorted(inside))
    return rows, role_rows


def _replay_packing(
    conn: Conn, new: Sequence[ParsedEvent], epc: Mapping[tuple[str, str], str]
) -> int:
    touched = sorted(
        {
            epc[u.key]
            for e in new
            if e.event_type == "AggregationEvent" and e.action in ("ADD", "DELETE")
            for role, u in e.roles
            if role == "child"
        }
    )
    # Children expanded from a DELETE without childEPCs are stored by now: read them back.
    deletes = [
        e.event_key
        for e in new
        if e.event_type == "AggregationEvent"
        and e.action == "DELETE"
        and not any(r == "child" for r, _ in e.roles)
    ]
    if deletes:
        touched = sorted(set(touched) | set(_children_of_events(conn, deletes)))
    if not touched:
        return 0
    stored = epcis_store_q.packing_events(conn=conn, children=touched)
    events = [
        PackingEvent(r["child"], r["parent"], r["action"], r["event_time"], r["event_key"])
        for r in stored
    ]
    intervals = packing_intervals(events)
    # An ADD ends a provisioned membership in any parent, a DELETE only in the one it names.
    closings = [(e.child, e.at, None if e.action == "ADD" else e.parent) for e in events]
    try:
        epcis_store_q.replace_event_packing(
            conn=conn,
            children=touched,
            closings=closings,
            intervals=[(str(i.owner), i.member, i.start, i.end, i.event_key) for i in intervals],
        )
    except psycopg.errors.ExclusionViolation as error:
        raise EPCISRejected(
            [Problem("/epcisBody/eventList", f"packing conflicts with what is stored: {error}")]
        ) from None
    return len(touched)


def _children_of_events(conn: Conn, event_keys: Sequence[str]) -> list[str]:
    rows = conn.execute(
        "SELECT epc FROM epcis_event_epcs WHERE role = 'child' AND event_key = ANY(%(k)s)",
        {"k": list(event_keys)},
    ).fetchall()
    return [r["epc"] for r in rows]


def _replay_custody(
    conn: Conn, new: Sequence[ParsedEvent], epc: Mapping[tuple[str, str], str]
) -> int:
    touched = sorted(
        {
            epc[u.key]
            for e in new
            if e.biz_step in ("shipping", "receiving")
            for role, u in e.roles
            if role in ("epc", "parent")
        }
    )
    if not touched:
        return 0
    stored = epcis_store_q.custody_events(conn=conn, epcs=touched)
    candidates = {r["event_key"]: shipment_candidates(r["body"]) for r in stored}
    shipments = epcis_store_q.shipments_by_reference(
        conn=conn, references=[c for cs in candidates.values() for c in cs]
    )

    def shipment_of(key: str) -> int | None:
        return next((shipments[c] for c in candidates[key] if c in shipments), None)

    events = [
        CustodyEvent(
            r["epc"], r["biz_step"], r["event_time"], shipment_of(r["event_key"]), r["event_key"]
        )
        for r in stored
    ]
    intervals = custody_intervals(events)
    try:
        epcis_store_q.replace_event_custody(
            conn=conn,
            epcs=touched,
            closings=[(e.epc, e.at) for e in events],
            intervals=[(int(i.owner), i.member, i.start, i.end, i.event_key) for i in intervals],
        )
    except psycopg.errors.ExclusionViolation as error:
        raise EPCISRejected(
            [Problem("/epcisBody/eventList", f"custody conflicts with what is stored: {error}")]
        ) from None
    return len(touched)
