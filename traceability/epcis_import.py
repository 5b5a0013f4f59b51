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
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Final, Literal
from urllib.parse import unquote

import psycopg

from coldchain.canonical import canonical_json, sha256_hex
from coldchain.errors import EPCISRejected
from coldchain.gs1 import IdentifierError, parse_identifier
from db.queries.trace import containment as containment_q
from db.queries.trace import epcis_store as epcis_store_q
from db.types import Conn
from traceability.epcis_schema import Problem, schema_problems
from traceability.identifiers import UnitKey, claims_unit_key, from_parsed

__all__ = [
    "SHIPMENT_URN_PREFIX",
    "EPCISRejected",
    "ImportResult",
    "ParsedDocument",
    "ParsedEvent",
    "custody_intervals",
    "import_document",
    "load_document",
    "packing_intervals",
    "parse_document",
    "shipment_candidates",
]

log = logging.getLogger(__name__)

SHIPMENT_URN_PREFIX: Final = "urn:coldchain:shipment:"
_ROLE_FIELDS: Final = {
    "ObjectEvent": (("epcList", "epc"),),
    "AggregationEvent": (("parentID", "parent"), ("childEPCs", "child")),
    "TransactionEvent": (("parentID", "parent"), ("epcList", "epc")),
    "TransformationEvent": (("inputEPCList", "epc"), ("outputEPCList", "epc")),
    "AssociationEvent": (("parentID", "epc"), ("childEPCs", "epc")),
}
_ACTION_ORDER: Final = {"DELETE": 0, "ADD": 1}  # at one instant: unpack, then pack (a re-pack)


# --- parsing (pure) ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ParsedEvent:
    """One event, checked and with the units it names as keys."""

    index: int
    event_key: str
    event_id: str | None
    content_sha256: str
    event_type: str
    action: str | None
    biz_step: str | None
    disposition: str | None
    event_time: datetime
    tz_offset: str
    read_point: str | None
    biz_location: str | None
    parent: UnitKey | None
    roles: tuple[tuple[str, UnitKey], ...]  # (role, unit) for every tracked identifier
    lat: float | None
    lon: float | None
    lot: str | None
    expiry: date | None
    shipment_candidates: tuple[str, ...]
    body: dict[str, Any]
    untracked: tuple[str, ...] = ()

    @property
    def commissions(self) -> bool:
        """An ObjectEvent ADD at bizStep commissioning."""
        return (
            self.event_type == "ObjectEvent"
            and self.action == "ADD"
            and _vocab(self.biz_step) == "commissioning"
        )


@dataclass(frozen=True, slots=True)
class ParsedDocument:
    """A valid document's events (duplicates within the document removed)."""

    document_id: str | None
    document_sha256: str
    events: tuple[ParsedEvent, ...]
    n_events: int


def _vocab(value: str | None) -> str | None:
    """A CBV value in its bare form: ``shipping`` for ``shipping`` or for the CBV web URI
    ``https://ref.gs1.org/cbv/BizStep-shipping`` (2.0 JSON allows both)."""
    if value is not None and value.startswith("https://ref.gs1.org/cbv/") and "-" in value:
        return value.rsplit("-", 1)[-1]
    return value


def shipment_candidates(event: Mapping[str, Any]) -> tuple[str, ...]:
    """The shipment references an event's bizTransactionList may name (see module doc)."""
    out: list[str] = []
    for item in event.get("bizTransactionList") or []:
        value = item.get("bizTransaction") if isinstance(item, dict) else None
        if not isinstance(value, str):
            continue
        if value.startswith(SHIPMENT_URN_PREFIX):
            out.append(unquote(value[len(SHIPMENT_URN_PREFIX) :]))
        out.append(value)
        for sep in (":", "/"):
            if sep in value:
                out.append(unquote(value.rsplit(sep, 1)[-1]))
    return tuple(dict.fromkeys(v for v in out if v))


def _gps(event: Mapping[str, Any]) -> tuple[float | None, float | None]:
    """The last latitude/longitude (type Angle, uom DD) in the event's sensor reports."""
    lat = lon = None
    for element in event.get("sensorElementList") or []:
        for report in element.get("sensorReport") or []:
            kind = str(report.get("type", ""))
            if not kind.endswith("Angle") or report.get("uom", "DD") != "DD":
                continue
            value = report.get("value")
            if not isinstance(value, int | float):
                continue
            if report.get("component") == "latitude" and -90 <= value <= 90:
                lat = float(value)
            elif report.get("component") == "longitude" and -180 <= value <= 180:
                lon = float(value)
    return (lat, lon) if lat is not None and lon is not None else (None, None)


def _ilmd(event: Mapping[str, Any]) -> tuple[str | None, date | None, list[str]]:
    """Lot and expiry from the ILMD (any prefix spelling of the CBV master data names)."""
    lot = expiry = None
    problems: list[str] = []
    for name, value in (event.get("ilmd") or {}).items():
        if name.endswith("lotNumber") and isinstance(value, str | int):
            lot = str(value)
        elif name.endswith("itemExpirationDate") and isinstance(value, str):
            try:
                expiry = date.fromisoformat(value[:10])
            except ValueError:
                problems.append(f"ilmd {name} is not a date YYYY-MM-DD: {value!r}")
    return lot, expiry, problems


def _unit(text: str, *, today: date) -> UnitKey | str | None:
    """The unit key, None for an identifier we do not track, or the error text."""
    try:
        parsed = parse_identifier(text, today=today)
    except IdentifierError as error:
        return str(error) if claims_unit_key(text) else None
    if parsed.kind == "gtin":
        return None  # a class, not an instance
    return from_parsed(parsed)


def _event_time(event: Mapping[str, Any]) -> datetime | None:
    try:
        ts = datetime.fromisoformat(str(event.get("eventTime", "")).upper())
    except ValueError:
        return None
    return ts if ts.tzinfo is not None else None


def _parse_event(
    index: int, event: dict[str, Any], *, today: date, problems: list[Problem]
) -> ParsedEvent | None:
    where = f"/epcisBody/eventList/{index}"
    before = len(problems)
    event_type = str(event.get("type"))
    at = _event_time(event)
    if at is None:
        problems.append(Problem(f"{where}/eventTime", "not a timestamp with a time zone"))
    roles: list[tuple[str, UnitKey]] = []
    untracked: list[str] = []
    parent: UnitKey | None = None
    for field_name, role in _ROLE_FIELDS.get(event_type, ()):
        raw = event.get(field_name)
        values = [raw] if isinstance(raw, str) else raw if isinstance(raw, list) else []
        for i, text in enumerate(values):
            path = f"{where}/{field_name}" + ("" if isinstance(raw, str) else f"/{i}")
            found = _unit(str(text), today=today)
            if isinstance(found, str):
                problems.append(Problem(path, f"{text!r} is not a valid SGTIN/SSCC: {found}"))
            elif found is None:
                untracked.append(str(text))
            else:
                roles.append((role, found))
                if role == "parent":
                    parent = found
    action = event.get("action")
    if event_type == "AggregationEvent" and action in ("ADD", "DELETE") and parent is None:
        problems.append(
            Problem(
                f"{where}/parentID",
                f"an AggregationEvent {action} needs a parentID that is an SGTIN or SSCC",
            )
        )
    lot, expiry, ilmd_problems = _ilmd(event)
    problems.extend(Problem(f"{where}/ilmd", p) for p in ilmd_problems)
    if len(problems) > before or at is None:
        return None
    content_sha = sha256_hex(canonical_json(event))
    event_id = event.get("eventID")
    lat, lon = _gps(event)
    return ParsedEvent(
        index=index,
        event_key=str(event_id) if event_id else f"sha256:{content_sha}",
        event_id=str(event_id) if event_id else None,
        content_sha256=content_sha,
        event_type=event_type,
        action=None if action is None else str(action),
        biz_step=_vocab(event.get("bizStep")),
        disposition=_vocab(event.get("disposition")),
        event_time=at,
        tz_offset=str(event.get("eventTimeZoneOffset")),
        read_point=(event.get("readPoint") or {}).get("id"),
        biz_location=(event.get("bizLocation") or {}).get("id"),
        parent=parent,
        roles=tuple(dict.fromkeys(roles)),
        lat=lat,
        lon=lon,
        lot=lot,
        expiry=expiry,
        shipment_candidates=shipment_candidates(event),
        body=event,
        untracked=tuple(untracked),
    )


def parse_document(document: object, *, today: date) -> ParsedDocument:
    """Check a document (schema, then our own rules) and parse its events; EPCISRejected with
    every problem found, if any. ``today`` fixes the century of YYMMDD dates in identifiers."""
    problems = schema_problems(document)
    if problems:
        raise EPCISRejected(problems)
    assert isinstance(document, dict)
    if document.get("type") != "EPCISDocument":
        raise EPCISRejected(
            [Problem("/type", "only EPCISDocument is imported (not a query document or event)")]
        )
    events = document["epcisBody"]["eventList"]
    parsed: list[ParsedEvent] = []
    for index, event in enumerate(events):
        result = _parse_event(index, event, today=today, problems=problems)
        if result is not None:
            parsed.append(result)
    unique: dict[str, ParsedEvent] = {}
    for e in parsed:
        other = unique.get(e.event_key)
        if other is None:
            unique[e.event_key] = e
        elif other.content_sha256 != e.content_sha256:
            problems.append(
                Problem(
                    f"/epcisBody/eventList/{e.index}/eventID",
                    f"eventID {e.event_key} is also used by event {other.index} with a "
                    "different content",
                )
            )
    if problems:
        raise EPCISRejected(problems)
    doc_id = document.get("id")
    return ParsedDocument(
        document_id=None if doc_id is None else str(doc_id),
        document_sha256=sha256_hex(canonical_json(document)),
        events=tuple(unique.values()),
        n_events=len(events),
    )


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


# --- replay of packing and custody (pure) ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PackingEvent:
    """A stored ADD/DELETE aggregation event, seen from one child."""

    child: str
    parent: str | None
    action: Literal["ADD", "DELETE"]
    at: datetime
    event_key: str


@dataclass(frozen=True, slots=True)
class Interval:
    """``member`` belongs to ``owner`` over [start, end) since the event ``event_key``."""

    owner: str | int
    member: str
    start: datetime
    end: datetime | None
    event_key: str


def packing_intervals(events: Iterable[PackingEvent]) -> list[Interval]:
    """Replay packing events into child → parent intervals (see the module doc).

    Per child in time order (at one instant DELETE before ADD): ADD closes the current
    membership, if any, and opens one in the parent; DELETE closes the membership in the parent
    it names (a DELETE naming another parent is inconsistent and changes nothing).
    """
    by_child: dict[str, list[PackingEvent]] = {}
    for e in events:
        by_child.setdefault(e.child, []).append(e)
    out: list[Interval] = []
    for child, seq in sorted(by_child.items()):
        seq.sort(key=lambda e: (e.at, _ACTION_ORDER[e.action], e.event_key))
        current: PackingEvent | None = None
        for e in seq:
            if e.action == "ADD":
                if current is not None:
                    _close(out, current.parent, child, current, e.at)
                current = e
            elif current is not None and current.parent == e.parent:
                _close(out, current.parent, child, current, e.at)
                current = None
        if current is not None and current.parent is not None:
            out.append(Interval(current.parent, child, current.at, None, current.event_key))
    return out


def _close(
    out: list[Interval], owner: str | int | None, member: str, opened: Any, at: datetime
) -> None:
    # A membership opened and closed at the same instant is empty: nothing to record.
    if owner is not None and opened.at < at:
        out.append(Interval(owner, member, opened.at, at, opened.event_key))


@dataclass(frozen=True, slots=True)
class CustodyEvent:
    """A stored shipping/receiving event, seen from one unit."""

    epc: str
    step: Literal["shipping", "receiving"]
    at: datetime
    shipment_id: int | None
    event_key: str


def custody_intervals(events: Iterable[CustodyEvent]) -> list[Interval]:
    """Replay shipping/receiving into unit → shipment intervals.

    Per unit in time order (at one instant receiving before shipping): shipping ends the
    current ride, if any, and starts one in the shipment it names (none when it names no known
    shipment); receiving ends the current ride when it names that shipment or none.
    """
    by_epc: dict[str, list[CustodyEvent]] = {}
    for e in events:
        by_epc.setdefault(e.epc, []).append(e)
    out: list[Interval] = []
    order = {"receiving": 0, "shipping": 1}
    for epc, seq in sorted(by_epc.items()):
        seq.sort(key=lambda e: (e.at, order[e.step], e.event_key))
        current: CustodyEvent | None = None
        for e in seq:
            if e.step == "shipping":
                if current is not None:
                    _close(out, current.shipment_id, epc, current, e.at)
                current = e if e.shipment_id is not None else None
            elif current is not None and e.shipment_id in (None, current.shipment_id):
                _close(out, current.shipment_id, epc, current, e.at)
                current = None
        if current is not None and current.shipment_id is not None:
            out.append(Interval(current.shipment_id, epc, current.at, None, current.event_key))
    return out


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
    for e in sorted(new, key=lambda e: (e.event_time, _ACTION_ORDER.get(e.action or "", 2))):
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
