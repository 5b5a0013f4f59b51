"""An EPCIS 2.0 document → checked events, each naming its units by key (pure, no I/O).

The first half of an import (:mod:`traceability.epcis_import`): the document is checked against
the official schema (:mod:`traceability.epcis_schema`) and then for what the platform needs
(parseable event times, well-formed SGTIN/SSCC identifiers, a parent for ADD/DELETE packing, no
eventID reused with a different content). Every problem is collected and raised at once as
:class:`~coldchain.errors.EPCISRejected`, so a document is refused with all its reasons.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Final
from urllib.parse import unquote

from coldchain.canonical import canonical_json, sha256_hex
from coldchain.errors import EPCISRejected
from coldchain.gs1 import IdentifierError
from coldchain.gs1_parse import parse_identifier
from traceability.epcis_schema import Problem, schema_problems
from traceability.identifiers import UnitKey, claims_unit_key, from_parsed

__all__ = [
    "SHIPMENT_URN_PREFIX",
    "ParsedDocument",
    "ParsedEvent",
    "parse_document",
    "shipment_candidates",
]

SHIPMENT_URN_PREFIX: Final = "urn:coldchain:shipment:"
_ROLE_FIELDS: Final = {
    "ObjectEvent": (("epcList", "epc"),),
    "AggregationEvent": (("parentID", "parent"), ("childEPCs", "child")),
    "TransactionEvent": (("parentID", "parent"), ("epcList", "epc")),
    "TransformationEvent": (("inputEPCList", "epc"), ("outputEPCList", "epc")),
    "AssociationEvent": (("parentID", "epc"), ("childEPCs", "epc")),
}


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
