"""The fleet's serialised units, packing and loading as an EPCIS 2.0 document (pure).

What a packing line and a warehouse system would send for the fleet
(:mod:`simulator.units`): units commissioned (ObjectEvent ``ADD`` at ``commissioning``, lot and
expiry in the ILMD), packed (AggregationEvent ``ADD`` at ``packing``; a re-pack is an ``ADD``
into the other parent, which moves the case), loaded (ObjectEvent ``OBSERVE`` at ``shipping``
naming the shipment as a bizTransaction ``urn:coldchain:shipment:<reference>``) and unloaded at
the scenario's end (``receiving``). The platform imports it as any other EPCIS document
(docs/TRACE.md, :func:`services.trace.import_epcis`), so the demo's passports come from the
same path as a customer's.

Deterministic: the same fleet gives the same document, byte for byte (events in a fixed order,
every ``eventID`` a name-based UUID of the event's content), so importing it again changes
nothing.
"""

from __future__ import annotations

import json
import uuid
from collections import defaultdict
from datetime import UTC, date, datetime
from typing import Any

from simulator.fleet import Fleet

CONTEXT = "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"
#: The namespace of the events' name-based UUIDs.
EVENT_NAMESPACE = uuid.UUID("8f6f2a57-2f5c-4c5e-9d0a-6a0f1c0c2b51")


def _ts(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _event(kind: str, at: datetime, **fields: Any) -> dict[str, Any]:
    body = {"type": kind, "eventTime": _ts(at), "eventTimeZoneOffset": "+00:00", **fields}
    name = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return {**body, "eventID": f"urn:uuid:{uuid.uuid5(EVENT_NAMESPACE, name)}"}


def _shipment(reference: str) -> list[dict[str, str]]:
    return [{"type": "bol", "bizTransaction": f"urn:coldchain:shipment:{reference}"}]


def fleet_events(fleet: Fleet) -> list[dict[str, Any]]:
    """Commissioning, packing, re-packing, loading and unloading of the fleet's units."""
    events: list[dict[str, Any]] = []
    made: dict[tuple[datetime, str | None, date | None], list[str]] = defaultdict(list)
    for u in fleet.units:
        made[(u.commissioned_at, u.lot, u.expiry)].append(u.epc)
    for (at, lot, expiry), epcs in made.items():
        ilmd: dict[str, Any] = {}
        if lot is not None:
            ilmd["cbvmda:lotNumber"] = lot
        if expiry is not None:
            ilmd["cbvmda:itemExpirationDate"] = expiry.isoformat()
        extra = {"ilmd": ilmd} if ilmd else {}
        events.append(_event("ObjectEvent", at, epcList=epcs, action="ADD",
                             bizStep="commissioning", disposition="active", **extra))  # fmt: skip
    packed: dict[tuple[datetime, str], list[str]] = defaultdict(list)
    for a in fleet.aggregations:
        packed[(a.start, a.parent_epc)].append(a.child_epc)
    starts = {(a.child_epc, a.start) for a in fleet.aggregations}
    for (at, parent), children in packed.items():
        events.append(_event("AggregationEvent", at, parentID=parent, childEPCs=children,
                             action="ADD", bizStep="packing"))  # fmt: skip
    for a in fleet.aggregations:
        # Taken out and put nowhere else (a re-pack's ADD into the other parent moves it).
        if a.end is not None and (a.child_epc, a.end) not in starts:
            events.append(_event("AggregationEvent", a.end, parentID=a.parent_epc,
                                 childEPCs=[a.child_epc], action="DELETE",
                                 bizStep="unpacking"))  # fmt: skip
    for su in fleet.shipment_units:
        events.append(_event("ObjectEvent", su.start, epcList=[su.epc], action="OBSERVE",
                             bizStep="shipping", disposition="in_transit",
                             bizTransactionList=_shipment(su.shipment_reference)))  # fmt: skip
        events.append(_event("ObjectEvent", su.end, epcList=[su.epc], action="OBSERVE",
                             bizStep="receiving", disposition="in_progress",
                             bizTransactionList=_shipment(su.shipment_reference)))  # fmt: skip
    return events


def fleet_document(fleet: Fleet) -> dict[str, Any]:
    """The EPCIS 2.0 JSON-LD document of :func:`fleet_events`."""
    return {
        "@context": [CONTEXT],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": _ts(fleet.start),
        "epcisBody": {"eventList": fleet_events(fleet)},
    }
