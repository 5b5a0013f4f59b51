"""Export a shipment's or a unit's conditions and packing as an EPCIS 2.0 JSON-LD document.

The document (:func:`build_document`, pure) holds

* **AggregationEvent** ``ADD`` (bizStep ``packing``) when children went into a parent and
  ``DELETE`` (bizStep ``unpacking``) when they came out, one event per (parent, time);
* **ObjectEvent** ``OBSERVE`` with bizStep ``shipping`` / ``receiving`` when logistic units
  entered and left the shipment, its reference in ``bizTransactionList`` as
  ``urn:coldchain:shipment:<reference>`` (which the importer reads back);
* **ObjectEvent** ``OBSERVE`` with bizStep ``sensor_reporting``, one per logger and interval
  (``bucket_s``, an hour by default), naming what the logger watched (the logistic units in
  the shipment then, or the unit), with a ``sensorElementList``:

  - ``Temperature`` min/max/mean in ``CEL`` and ``RelativeHumidity`` min/max/mean in ``P1``
    (percent) over the interval's readings, ``sensorMetadata`` startTime/endTime the first and
    last reading, ``deviceID`` ``urn:coldchain:device:<device id>``;
  - the last position as two ``Angle`` reports (components ``latitude``/``longitude``, ``DD``,
    CRS84), as in GS1's SensorDataExample14;
  - per recorded excursion overlapping the interval, a further element whose report carries
    ``exception: ALARM_CONDITION`` with the excursion's min/max and its start/end in the
    metadata.

Every event has ``eventTimeZoneOffset`` ``+00:00`` and a deterministic ``eventID``: a name-based
UUID (RFC 4122 v5) of its canonical JSON, so exporting the same data twice gives the same ids
and an importer deduplicates them. (It is not the CBV 2.0 event hash, which needs the full
canonicalisation algorithm; a UUID URN does not pretend to be one.)
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Final
from urllib.parse import quote

from coldchain.canonical import canonical_json
from coldchain.errors import NotFoundError
from db.queries.shipments import find_shipment_id
from db.queries.trace import containment as containment_q
from db.queries.trace import epcis_export as epcis_export_q
from db.types import Conn
from traceability.epcis_parse import SHIPMENT_URN_PREFIX
from traceability.lookup import exposures, find_unit, pieces_from_rows
from traceability.tracks import merge_windows

__all__ = [
    "DEVICE_URN_PREFIX",
    "EPCIS_CONTEXT",
    "AlarmSpan",
    "Bucket",
    "ExportData",
    "Membership",
    "RideSpan",
    "build_document",
    "gather_shipment",
    "gather_unit",
]

EPCIS_CONTEXT: Final = "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"
DEVICE_URN_PREFIX: Final = "urn:coldchain:device:"
CRS84: Final = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
DEFAULT_BUCKET_S: Final = 3600
_EVENT_ID_NAMESPACE: Final = uuid.UUID("5b0c7a1e-8f2d-4c4e-9a51-2f7a3d6c9e10")
_TYPE_ORDER: Final = {"receiving": 0, "unpacking": 1, "packing": 2, "shipping": 3}


@dataclass(frozen=True, slots=True)
class Membership:
    """``child`` inside ``parent`` over [start, end)."""

    parent: str
    child: str
    start: datetime | None
    end: datetime | None


@dataclass(frozen=True, slots=True)
class RideSpan:
    """Logistic unit ``epc`` in shipment ``reference`` over [start, end)."""

    epc: str
    reference: str
    start: datetime | None
    end: datetime | None


@dataclass(frozen=True, slots=True)
class Bucket:
    """One logger's readings over one interval, and the units they describe."""

    device_id: str
    first_ts: datetime
    last_ts: datetime
    n: int
    temp_min: float | None
    temp_max: float | None
    temp_mean: float | None
    rh_min: float | None
    rh_max: float | None
    rh_mean: float | None
    lat: float | None
    lon: float | None
    epcs: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class AlarmSpan:
    """A recorded excursion of one logger over [start, end] (end None: still open)."""

    excursion_id: int
    device_id: str
    direction: str
    start: datetime
    end: datetime | None
    min_c: float
    max_c: float


@dataclass(frozen=True, slots=True)
class ExportData:
    """What one export covers."""

    packing: tuple[Membership, ...]
    rides: tuple[RideSpan, ...]
    buckets: tuple[Bucket, ...]
    alarms: tuple[AlarmSpan, ...]


# --- the document (pure) -----------------------------------------------------------------------


def _ts(value: datetime) -> str:
    """ISO 8601 in UTC with milliseconds and ``Z``, as the GS1 examples write it."""
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _device_uri(device_id: str) -> str:
    return DEVICE_URN_PREFIX + quote(device_id, safe="")


def _finish(event: dict[str, Any]) -> dict[str, Any]:
    """Add the deterministic eventID (a v5 UUID of the event's canonical JSON)."""
    event_id = uuid.uuid5(_EVENT_ID_NAMESPACE, canonical_json(event).decode("utf-8"))
    return {"eventID": f"urn:uuid:{event_id}", **event}


def _base(kind: str, at: datetime) -> dict[str, Any]:
    return {"type": kind, "eventTime": _ts(at), "eventTimeZoneOffset": "+00:00"}


def _packing_events(packing: Iterable[Membership]) -> list[dict[str, Any]]:
    added: dict[tuple[str, datetime], set[str]] = defaultdict(set)
    removed: dict[tuple[str, datetime], set[str]] = defaultdict(set)
    for m in packing:
        if m.start is not None:
            added[(m.parent, m.start)].add(m.child)
        if m.end is not None:
            removed[(m.parent, m.end)].add(m.child)
    events = []
    for action, step, groups in (("ADD", "packing", added), ("DELETE", "unpacking", removed)):
        for (parent, at), children in groups.items():
            events.append(
                _base("AggregationEvent", at)
                | {
                    "parentID": parent,
                    "childEPCs": sorted(children),
                    "action": action,
                    "bizStep": step,
                    "disposition": "in_progress",
                }
            )
    return events


def _custody_events(rides: Iterable[RideSpan]) -> list[dict[str, Any]]:
    shipped: dict[tuple[str, datetime], set[str]] = defaultdict(set)
    received: dict[tuple[str, datetime], set[str]] = defaultdict(set)
    for r in rides:
        if r.start is not None:
            shipped[(r.reference, r.start)].add(r.epc)
        if r.end is not None:
            received[(r.reference, r.end)].add(r.epc)
    events = []
    for step, disposition, groups in (
        ("shipping", "in_transit", shipped),
        ("receiving", "in_progress", received),
    ):
        for (reference, at), epcs in groups.items():
            events.append(
                _base("ObjectEvent", at)
                | {
                    "epcList": sorted(epcs),
                    "action": "OBSERVE",
                    "bizStep": step,
                    "disposition": disposition,
                    "bizTransactionList": [
                        {
                            "type": "bol",
                            "bizTransaction": SHIPMENT_URN_PREFIX + quote(reference, safe=""),
                        }
                    ],
                }
            )
    return events


def _stats(
    kind: str, uom: str, low: float | None, high: float | None, mean: float | None
) -> list[dict[str, Any]]:
    if low is None or high is None or mean is None:
        return []
    return [
        {
            "type": kind,
            "minValue": round(low, 3),
            "maxValue": round(high, 3),
            "meanValue": round(mean, 3),
            "uom": uom,
        }
    ]


def _sensor_event(bucket: Bucket, alarms: Sequence[AlarmSpan]) -> dict[str, Any]:
    device = _device_uri(bucket.device_id)
    reports = [
        *_stats("Temperature", "CEL", bucket.temp_min, bucket.temp_max, bucket.temp_mean),
        *_stats("RelativeHumidity", "P1", bucket.rh_min, bucket.rh_max, bucket.rh_mean),
    ]
    if bucket.lat is not None and bucket.lon is not None:
        reports += [
            {
                "type": "Angle",
                "value": round(value, 6),
                "component": component,
                "uom": "DD",
                "coordinateReferenceSystem": CRS84,
            }
            for component, value in (("latitude", bucket.lat), ("longitude", bucket.lon))
        ]
    elements: list[dict[str, Any]] = []
    if reports:
        elements.append(
            {
                "sensorMetadata": {
                    "startTime": _ts(bucket.first_ts),
                    "endTime": _ts(bucket.last_ts),
                    "deviceID": device,
                },
                "sensorReport": reports,
            }
        )
    for a in alarms:
        if a.device_id != bucket.device_id:
            continue
        if a.start > bucket.last_ts or (a.end is not None and a.end < bucket.first_ts):
            continue
        start = max(a.start, bucket.first_ts)
        end = bucket.last_ts if a.end is None else min(a.end, bucket.last_ts)
        elements.append(
            {
                "sensorMetadata": {
                    "startTime": _ts(start),
                    "endTime": _ts(end),
                    "deviceID": device,
                },
                "sensorReport": [
                    {
                        "type": "Temperature",
                        "exception": "ALARM_CONDITION",
                        "minValue": round(a.min_c, 3),
                        "maxValue": round(a.max_c, 3),
                        "uom": "CEL",
                    }
                ],
            }
        )
    return _base("ObjectEvent", bucket.last_ts) | {
        "epcList": sorted(bucket.epcs),
        "action": "OBSERVE",
        "bizStep": "sensor_reporting",
        "sensorElementList": elements,
    }


def _order(event: dict[str, Any]) -> tuple[str, int, bytes]:
    return (event["eventTime"], _TYPE_ORDER.get(event.get("bizStep", ""), 4), canonical_json(event))


def build_document(data: ExportData, *, now: datetime) -> dict[str, Any]:
    """The EPCIS 2.0 JSON-LD document for ``data`` (see the module doc); ``now`` is its
    creationDate."""
    events = [
        *_packing_events(data.packing),
        *_custody_events(data.rides),
        *(_sensor_event(b, data.alarms) for b in data.buckets if b.n > 0),
    ]
    events = [e for e in events if e.get("sensorElementList", True) != []]
    return {
        "@context": [EPCIS_CONTEXT],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": _ts(now),
        "epcisBody": {"eventList": [_finish(e) for e in sorted(events, key=_order)]},
    }


# --- gathering the data ------------------------------------------------------------------------


def _carried(rides: Sequence[RideSpan], first: datetime, last: datetime) -> tuple[str, ...]:
    """The logistic units in the shipment at any time between two readings."""
    return tuple(
        sorted(
            r.epc
            for r in rides
            if (r.start is None or r.start <= last) and (r.end is None or first < r.end)
        )
    )


def _buckets(
    rows: Sequence[dict[str, Any]],
    epcs_at: Callable[[str, datetime, datetime], tuple[str, ...]],
) -> list[Bucket]:
    return [
        Bucket(
            device_id=r["device_id"],
            first_ts=r["first_ts"],
            last_ts=r["last_ts"],
            n=int(r["n"]),
            temp_min=r["temp_min"],
            temp_max=r["temp_max"],
            temp_mean=None if r["temp_mean"] is None else float(r["temp_mean"]),
            rh_min=r["rh_min"],
            rh_max=r["rh_max"],
            rh_mean=None if r["rh_mean"] is None else float(r["rh_mean"]),
            lat=r["lat"],
            lon=r["lon"],
            epcs=epcs_at(r["device_id"], r["first_ts"], r["last_ts"]),
        )
        for r in rows
    ]


def gather_shipment(conn: Conn, key: str, *, bucket_s: int = DEFAULT_BUCKET_S) -> ExportData:
    """A shipment's packing, custody, logger intervals and excursions (by id or reference)."""
    shipment_id = find_shipment_id(conn=conn, key=key)
    shipment = epcis_export_q.get_shipment(conn=conn, shipment_id=shipment_id)
    rides = tuple(
        RideSpan(r["epc"], shipment["reference"], r["starts"], r["ends"])
        for r in epcis_export_q.shipment_rides(conn=conn, shipment_id=shipment_id)
    )
    packing = tuple(
        Membership(r["parent_epc"], r["child_epc"], r["starts"], r["ends"])
        for r in epcis_export_q.shipment_packing(conn=conn, shipment_id=shipment_id)
    )
    windows = [
        (r["device_id"], r["starts"], r["ends"])
        for r in epcis_export_q.shipment_windows(conn=conn, shipment_id=shipment_id)
    ]
    rows = epcis_export_q.window_buckets(conn=conn, windows=windows, bucket_s=bucket_s)
    alarms = tuple(
        AlarmSpan(
            int(r["id"]),
            r["device_id"],
            r["direction"],
            r["start_ts"],
            r["end_ts"],
            float(r["min_c"]),
            float(r["max_c"]),
        )
        for r in epcis_export_q.shipment_excursions(conn=conn, shipment_id=shipment_id)
    )
    buckets = _buckets(rows, lambda _device, first, last: _carried(rides, first, last))
    return ExportData(packing=packing, rides=rides, buckets=tuple(buckets), alarms=alarms)


def gather_unit(
    conn: Conn, text: str, *, today: date, bucket_s: int = DEFAULT_BUCKET_S
) -> ExportData:
    """One unit's packing path, the rides of its containers, and its inherited readings and
    excursions; NotFoundError for an unknown unit, IdentifierError for an unreadable one."""
    key, epc = find_unit(conn, text, today=today)
    if epc is None:
        raise NotFoundError(f"no unit {key.epc} on record")
    found = containment_q.containment(conn=conn, epcs=[epc])
    packing = tuple(
        Membership(r["parent_epc"], r["child_epc"], r["starts"], r["ends"])
        for r in epcis_export_q.unit_packing(conn=conn, epc=epc)
    )
    rides = tuple(
        RideSpan(r["node"], r["shipment_reference"], r["rode_from"], r["rode_to"])
        for r in found["rides"]
    )
    pieces = pieces_from_rows(found["pieces"])
    rows = epcis_export_q.window_buckets(
        conn=conn, windows=merge_windows(pieces), bucket_s=bucket_s
    )
    alarms = tuple(
        AlarmSpan(
            e.id,
            e.device_id,
            e.direction,
            e.exposed_from,
            e.exposed_to if e.end_ts is not None else None,
            e.min_c,
            e.max_c,
        )
        # Alarm conditions are exported whatever QA decided, so no lot is needed for clearance.
        for e in exposures(conn, epc, lot=None)
    )
    buckets = _buckets(rows, lambda _device, _first, _last: (epc,))
    return ExportData(packing=packing, rides=rides, buckets=tuple(buckets), alarms=alarms)
