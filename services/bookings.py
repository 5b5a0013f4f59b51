"""Booking a shipment: create it (idempotently), update it (with the version read), its external
references, the product lots on board, serialised units by scan, and its loggers.

Idempotent creation, for an ERP or WMS that retries: a create is recognised as a repeat by its
``Idempotency-Key`` (when given), else by the shipment's own reference, else by any of its
external references (unique per organisation: one organisation per installation today). The
repeat of the *same* request (same SHA-256 of its canonical JSON, :func:`request_hash`) returns
the first shipment and ``created=False``; another request under the same key or reference is a
:class:`~coldchain.errors.RecordConflictError` naming it.

Loggers: an assignment is a time range (``device_assignments``, 0001): attaching opens one from
now, detaching closes it, so a swap keeps both loggers' histories in the shipment. A logger
already in another shipment from now on is refused (409). A logger whose calibration is due
before today (UTC) is refused unless ``override_reason`` is given; the override is then the
audit entry's why and a ``calibration_override`` entry on the timeline (EU GDP 9.3).

A retired product, lane, carrier or logger cannot be used for a new booking.

Planned legs (``shipment_legs``, 0001; what makes a plan valid: :mod:`services.booking_legs`)
are stored with the booking; an update that sends ``legs`` replaces the whole plan (audited row
by row: 0006's triggers on ``shipment_legs``), and any other update is checked against the legs
it keeps. The CSV import books shipments without legs.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Final, Literal, get_args

import psycopg

from coldchain.canonical import canonical_json
from coldchain.errors import (
    CalibrationExpiredError,
    IdentifierError,
    InvalidRecordError,
    NotFoundError,
    RecordConflictError,
    ShipmentStateError,
    VersionConflictError,
)
from coldchain.gs1 import normalize_gtin
from db.queries import bookings as q
from db.queries import lifecycle as lifecycle_q
from db.queries import shipments as shipment_q
from db.types import Conn, Row
from services.booking_legs import Leg, check_lane_mode, leg_of, legs_doc, legs_rows, validate_legs
from services.caller import Caller, acting
from services.lifecycle import MANAGE

ReferenceKind = Literal["purchase_order", "sales_order", "customer", "other"]
REFERENCE_KINDS: Final[tuple[ReferenceKind, ...]] = get_args(ReferenceKind)
#: States in which a logger may be attached (readings after arrival count until detached).
ATTACHABLE: Final[frozenset[str]] = frozenset({"planned", "in_transit", "arrived", "under_review"})
#: States in which the booking (plans, lane, carrier) may still change.
EDITABLE: Final[frozenset[str]] = frozenset({"planned", "in_transit"})


@dataclass(frozen=True, slots=True)
class Item:
    """A product lot on board: GTIN-14, lot (GS1 AI 10, 1–20 characters), quantity > 0."""

    gtin: str
    lot: str
    quantity: int


@dataclass(frozen=True, slots=True)
class NewShipment:
    """What a booking says. ``origin``/``destination`` come from the lane when one is given."""

    reference: str
    origin: str | None = None
    destination: str | None = None
    product_gtin: str | None = None
    lane_id: int | None = None
    carrier_id: int | None = None
    carrier: str | None = None
    planned_departure: datetime | None = None
    planned_arrival: datetime | None = None
    references: tuple[tuple[str, str], ...] = ()
    items: tuple[Item, ...] = field(default=())
    legs: tuple[Leg, ...] = field(default=())


def request_hash(new: NewShipment) -> str:
    """SHA-256 of the booking's canonical JSON: what makes two creates "the same request"."""
    doc = asdict(new)
    doc["references"] = sorted([list(r) for r in new.references])
    doc["items"] = sorted([[i.gtin, i.lot, i.quantity] for i in new.items])
    for key in ("planned_departure", "planned_arrival"):
        if doc[key] is not None:
            doc[key] = doc[key].isoformat()
    # Legs in order (their order is their seq). A booking without legs hashes as it did before
    # legs were bookable, so a retry of a create stored then still matches it.
    del doc["legs"]
    if new.legs:
        doc["legs"] = legs_doc(new.legs)
    return hashlib.sha256(canonical_json(doc)).hexdigest()


def _gtin(value: str, field_name: str) -> str:
    try:
        return normalize_gtin(value.strip())
    except IdentifierError:
        raise InvalidRecordError(
            field_name, f"{value!r} is not a GTIN (14 digits, check digit)"
        ) from None


def _reference(kind: str, value: str, where: str) -> tuple[str, str]:
    """An external reference, checked and trimmed; ``where`` prefixes the field named."""
    if kind not in REFERENCE_KINDS:
        raise InvalidRecordError(f"{where}.kind", f"one of {', '.join(REFERENCE_KINDS)}")
    if not value.strip() or len(value.strip()) > 200:
        raise InvalidRecordError(f"{where}.value", "must be 1–200 characters")
    return kind, value.strip()


def _item(item: Item, where: str) -> Item:
    """A product lot on board, checked (GTIN check digit, lot length, quantity > 0)."""
    gtin = _gtin(item.gtin, f"{where}.gtin")
    lot = item.lot.strip()
    if not 1 <= len(lot) <= 20:
        raise InvalidRecordError(f"{where}.lot", "must be 1–20 characters (GS1 AI 10)")
    if isinstance(item.quantity, bool) or not isinstance(item.quantity, int):
        raise InvalidRecordError(f"{where}.quantity", "must be a whole number")
    if item.quantity <= 0:
        raise InvalidRecordError(f"{where}.quantity", "must be above 0")
    return Item(gtin, lot, item.quantity)


def validate(new: NewShipment) -> NewShipment:
    """The booking with its values normalised, or InvalidRecordError naming the first bad field
    (pure: what needs the database is checked by :func:`create`)."""
    reference = new.reference.strip()
    if not 1 <= len(reference) <= 100:
        raise InvalidRecordError("reference", "must be 1–100 characters")
    if new.lane_id is None:
        for name in ("origin", "destination"):
            value = getattr(new, name)
            if value is None or not value.strip():
                raise InvalidRecordError(name, "required when no lane_id is given")
    if (
        new.planned_departure is not None
        and new.planned_arrival is not None
        and new.planned_arrival <= new.planned_departure
    ):
        raise InvalidRecordError("planned_arrival", "must be after planned_departure")
    for name in ("planned_departure", "planned_arrival"):
        value = getattr(new, name)
        if value is not None and value.tzinfo is None:
            raise InvalidRecordError(name, "needs a time zone (ISO 8601 with offset or Z)")
    refs = [_reference(k, v, f"references[{i}]") for i, (k, v) in enumerate(new.references)]
    if len(set(refs)) != len(refs):
        raise InvalidRecordError("references", "the same reference is given twice")
    items = [_item(item, f"items[{i}]") for i, item in enumerate(new.items)]
    if len({(i.gtin, i.lot) for i in items}) != len(items):
        raise InvalidRecordError("items", "the same GTIN and lot are given twice")
    legs = validate_legs(new.legs, departure=new.planned_departure, arrival=new.planned_arrival)
    product = new.product_gtin
    if product is not None:
        product = _gtin(product, "product_gtin")
    elif items:
        product = items[0].gtin  # the fleet shows one product per shipment
    return NewShipment(
        reference=reference,
        origin=None if new.origin is None else new.origin.strip(),
        destination=None if new.destination is None else new.destination.strip(),
        product_gtin=product,
        lane_id=new.lane_id,
        carrier_id=new.carrier_id,
        carrier=None if new.carrier is None else new.carrier.strip() or None,
        planned_departure=new.planned_departure,
        planned_arrival=new.planned_arrival,
        references=tuple(refs),
        items=tuple(items),
        legs=legs,
    )


def _check_products(conn: Conn, new: NewShipment) -> None:
    """Every product of the booking is registered and not retired."""
    gtins = {i.gtin for i in new.items} | ({new.product_gtin} if new.product_gtin else set())
    known = q.products_by_gtin(conn=conn, gtins=sorted(gtins))
    for gtin in sorted(gtins):
        name = "product_gtin" if gtin == new.product_gtin else "items"
        if gtin not in known:
            raise InvalidRecordError(name, f"no product with GTIN {gtin}: register it first")
        if known[gtin]["retired_at"] is not None:
            raise InvalidRecordError(name, f"product {gtin} is retired: it cannot ship any more")


def check_master_data(conn: Conn, new: NewShipment) -> NewShipment:
    """Products, lane and carrier exist and are not retired; origin/destination/carrier filled
    from the lane and carrier."""
    _check_products(conn, new)
    origin, destination, carrier = new.origin, new.destination, new.carrier
    if new.lane_id is not None:
        lane = q.lane(conn=conn, lane_id=new.lane_id)
        if lane is None:
            raise InvalidRecordError("lane_id", f"no lane {new.lane_id}")
        retired = [
            what
            for what, col in (
                ("the lane", "retired_at"),
                ("its origin", "origin_retired_at"),
                ("its destination", "destination_retired_at"),
            )
            if lane[col] is not None
        ]
        if retired:
            raise InvalidRecordError(
                "lane_id", f"lane {lane['code']}: {' and '.join(retired)} retired"
            )
        origin, destination = lane["origin"], lane["destination"]
        check_lane_mode(new.legs, lane)
    if new.carrier_id is not None:
        row = q.carrier(conn=conn, carrier_id=new.carrier_id)
        if row is None:
            raise InvalidRecordError("carrier_id", f"no carrier {new.carrier_id}")
        if row["retired_at"] is not None:
            raise InvalidRecordError("carrier_id", f"carrier {row['name']!r} is retired")
        carrier = row["name"]
    return NewShipment(
        **{**_fields(new), "origin": origin, "destination": destination, "carrier": carrier}
    )


def _fields(new: NewShipment) -> dict[str, Any]:
    return {f: getattr(new, f) for f in NewShipment.__dataclass_fields__}


def _existing(conn: Conn, new: NewShipment, key: str | None, digest: str) -> Row | None:
    """The shipment a repeat of this create names, or None; RecordConflictError if it names one
    made by another request."""
    candidates: list[tuple[str, Row]] = []
    if key is not None:
        row = q.by_create_key(conn=conn, key=key)
        if row is not None:
            candidates.append((f"Idempotency-Key {key!r}", row))
    if not candidates:
        row = q.by_reference(conn=conn, reference=new.reference)
        if row is not None:
            candidates.append((f"reference {new.reference!r}", row))
    if not candidates:
        for row in q.by_external(conn=conn, refs=new.references):
            candidates.append((f"{row['matched_kind']} {row['matched_value']!r}", row))
    for what, row in candidates:
        if row["create_hash"] != digest:
            raise RecordConflictError(
                f"{what} already belongs to shipment {row['reference']} (id "
                f"{row['shipment_id']}), created by a different request: change the reference "
                "or send the same request to get that shipment back"
            )
    return candidates[0][1] if candidates else None


def create(
    conn: Conn,
    caller: Caller,
    *,
    new: NewShipment,
    now: datetime,
    idempotency_key: str | None = None,
) -> tuple[Row, bool]:
    """Book a shipment; ``(booking, created)``: created is False when this is a repeat of the
    create that made it (module docstring)."""
    caller.require(MANAGE)
    new = validate(new)
    if idempotency_key is not None and not 1 <= len(idempotency_key) <= 200:
        raise InvalidRecordError("Idempotency-Key", "must be 1–200 characters")
    digest = request_hash(new)
    for attempt in range(2):
        try:
            with acting(conn, caller, "shipment booked"), conn.transaction():
                found = _existing(conn, new, idempotency_key, digest)
                if found is not None:
                    return get(conn, shipment_id=int(found["shipment_id"])), False
                checked = check_master_data(conn, new)
                row = _insert(conn, caller, checked, key=idempotency_key, digest=digest, now=now)
            return get(conn, shipment_id=int(row["shipment_id"])), True
        except psycopg.errors.UniqueViolation:
            # A concurrent repeat inserted it first: the next pass finds it.
            if attempt:
                raise
    raise AssertionError("unreachable")


def _insert(
    conn: Conn, caller: Caller, new: NewShipment, *, key: str | None, digest: str, now: datetime
) -> Row:
    row = q.insert_shipment(
        conn=conn,
        values={
            "reference": new.reference,
            "product_gtin": new.product_gtin,
            "origin": new.origin,
            "destination": new.destination,
            "planned_departure": new.planned_departure,
            "planned_arrival": new.planned_arrival,
            "carrier": new.carrier,
            "lane_id": new.lane_id,
            "carrier_id": new.carrier_id,
            "create_key": key,
            "create_hash": digest,
        },
    )
    shipment_id = int(row["shipment_id"])
    q.add_references(conn=conn, shipment_id=shipment_id, refs=new.references)
    q.add_items(
        conn=conn, shipment_id=shipment_id, items=[(i.gtin, i.lot, i.quantity) for i in new.items]
    )
    q.replace_legs(conn=conn, shipment_id=shipment_id, legs=legs_rows(new.legs))
    lifecycle_q.add_event(
        conn=conn,
        shipment_id=shipment_id,
        at=now,
        event="create",
        actor=caller.actor,
        to_state="planned",
        data={"reference": new.reference},
    )
    return row


def resolve(conn: Conn, *, key: str) -> int:
    """The id of the shipment named by its id or reference; NotFoundError otherwise."""
    return shipment_q.find_shipment_id(conn=conn, key=key)


def get(conn: Conn, *, shipment_id: int) -> Row:
    """The booking: the shipment row with its version, references, items and assignments."""
    row = q.booking(conn=conn, shipment_id=shipment_id)
    if row is None:
        raise NotFoundError(f"shipment {shipment_id} not found")
    row = {k: v for k, v in row.items() if k not in ("create_key", "create_hash")}
    row["references"] = q.references(conn=conn, shipment_id=shipment_id)
    row["items"] = q.items(conn=conn, shipment_id=shipment_id)
    row["legs"] = q.legs(conn=conn, shipment_id=shipment_id)
    row["loggers"] = q.assignments(conn=conn, shipment_id=shipment_id)
    return row


def update(
    conn: Conn,
    caller: Caller,
    *,
    shipment_id: int,
    version: int,
    changes: dict[str, Any],
    reason: str | None = None,
    now: datetime,
) -> Row:
    """Change plans, lane, carrier or planned legs (``legs``: a sequence of :class:`Leg`, the
    whole new plan) of a shipment still at ``version`` (else :class:`VersionConflictError` with
    the current one); only while planned or in transit."""
    caller.require(MANAGE)
    changes = dict(changes)
    new_legs = changes.pop("legs", None)
    unknown = set(changes) - set(q.UPDATABLE)
    if unknown:
        raise InvalidRecordError(
            sorted(unknown)[0], f"cannot be changed; only {', '.join(q.UPDATABLE)}, legs"
        )
    with acting(conn, caller, reason), conn.transaction():
        current = q.booking(conn=conn, shipment_id=shipment_id, lock=True)
        if current is None:
            raise NotFoundError(f"shipment {shipment_id} not found")
        if current["version"] != version:
            raise VersionConflictError(
                f"shipment {shipment_id} is at version {current['version']}, not {version}: "
                "someone changed it since you read it; read it again and reapply your change",
            )
        if current["status"] not in EDITABLE:
            raise ShipmentStateError(
                f"shipment {shipment_id} is {current['status']}: its booking can change only "
                "while planned or in transit"
            )
        merged = {**{c: current[c] for c in q.UPDATABLE}, **changes}
        # Kept legs are checked again too: new planned times or a new lane must fit them.
        kept = q.legs(conn=conn, shipment_id=shipment_id) if new_legs is None else []
        legs = tuple(new_legs) if new_legs is not None else tuple(map(leg_of, kept))
        probe = NewShipment(
            reference=current["reference"],
            origin=current["origin"],
            destination=current["destination"],
            lane_id=merged["lane_id"],
            carrier_id=merged["carrier_id"],
            carrier=merged["carrier"],
            planned_departure=merged["planned_departure"],
            planned_arrival=merged["planned_arrival"],
            legs=legs,
        )
        checked = check_master_data(conn, validate(probe))
        if "carrier_id" in changes and changes["carrier_id"] is not None:
            changes = {**changes, "carrier": checked.carrier}
        row = q.update_shipment(
            conn=conn, shipment_id=shipment_id, version=version, changes=changes
        )
        assert row is not None  # locked and checked above
        data = {k: _jsonable(v) for k, v in changes.items()}
        if new_legs is not None:
            q.replace_legs(conn=conn, shipment_id=shipment_id, legs=legs_rows(checked.legs))
            data["legs"] = legs_doc(checked.legs)
        lifecycle_q.add_event(
            conn=conn,
            shipment_id=shipment_id,
            at=now,
            event="update",
            actor=caller.actor,
            reason=reason,
            data=data,
        )
    return get(conn, shipment_id=shipment_id)


def _jsonable(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def add_reference(
    conn: Conn, caller: Caller, *, shipment_id: int, kind: str, value: str
) -> list[Row]:
    """Add an external reference; RecordConflictError if another shipment holds it."""
    caller.require(MANAGE)
    ref = _reference(kind, value, "reference")
    with acting(conn, caller, f"reference {ref[0]} {ref[1]} added"), conn.transaction():
        require_booking(conn, shipment_id)
        for row in q.by_external(conn=conn, refs=[ref]):
            if row["shipment_id"] == shipment_id:
                return q.references(conn=conn, shipment_id=shipment_id)
            raise RecordConflictError(f"{ref[0]} {ref[1]!r} belongs to shipment {row['reference']}")
        q.add_references(conn=conn, shipment_id=shipment_id, refs=[ref])
    return q.references(conn=conn, shipment_id=shipment_id)


def remove_reference(
    conn: Conn, caller: Caller, *, shipment_id: int, kind: str, value: str
) -> list[Row]:
    """Remove an external reference of the shipment."""
    caller.require(MANAGE)
    with acting(conn, caller, f"reference {kind} {value} removed"), conn.transaction():
        require_booking(conn, shipment_id)
        if not q.remove_reference(conn=conn, shipment_id=shipment_id, kind=kind, value=value):
            raise NotFoundError(f"shipment {shipment_id} has no {kind} reference {value!r}")
    return q.references(conn=conn, shipment_id=shipment_id)


def set_item(
    conn: Conn, caller: Caller, *, shipment_id: int, gtin: str, lot: str, quantity: int
) -> list[Row]:
    """Put a product lot on board (or change its quantity), while planned."""
    caller.require(MANAGE)
    item = _item(Item(gtin, lot, quantity), "item")
    with acting(conn, caller, f"{item.gtin} lot {item.lot}: {item.quantity}"), conn.transaction():
        current = require_booking(conn, shipment_id)
        if current["status"] != "planned":
            raise ShipmentStateError(f"shipment {shipment_id} is {current['status']}: items "
                                     "change only while planned")  # fmt: skip
        _check_products(conn, NewShipment(reference=current["reference"], items=(item,)))
        q.set_item(conn=conn, shipment_id=shipment_id, gtin=item.gtin, lot=item.lot,
                   quantity=item.quantity)  # fmt: skip
    return q.items(conn=conn, shipment_id=shipment_id)


def remove_item(conn: Conn, caller: Caller, *, shipment_id: int, gtin: str, lot: str) -> list[Row]:
    """Take a product lot off the shipment, while planned."""
    caller.require(MANAGE)
    with acting(conn, caller, f"{gtin} lot {lot} removed"), conn.transaction():
        current = require_booking(conn, shipment_id)
        if current["status"] != "planned":
            raise ShipmentStateError(f"shipment {shipment_id} is {current['status']}: items "
                                     "change only while planned")  # fmt: skip
        if not q.remove_item(conn=conn, shipment_id=shipment_id, gtin=gtin, lot=lot):
            raise NotFoundError(f"shipment {shipment_id} has no lot {lot!r} of {gtin}")
    return q.items(conn=conn, shipment_id=shipment_id)


def require_booking(conn: Conn, shipment_id: int) -> Row:
    """The shipment's booking row, locked until the transaction ends; NotFoundError."""
    row = q.booking(conn=conn, shipment_id=shipment_id, lock=True)
    if row is None:
        raise NotFoundError(f"shipment {shipment_id} not found")
    return row


def attach(
    conn: Conn,
    caller: Caller,
    *,
    shipment_id: int,
    device_id: str,
    now: datetime,
    override_reason: str | None = None,
) -> list[Row]:
    """Attach a logger from ``now`` (module docstring); the shipment's assignments after."""
    caller.require(MANAGE)
    override = (override_reason or "").strip() or None
    why = f"calibration override: {override}" if override else f"logger {device_id} attached"
    with acting(conn, caller, why), conn.transaction():
        current = require_booking(conn, shipment_id)
        if current["status"] not in ATTACHABLE:
            raise ShipmentStateError(
                f"shipment {shipment_id} is {current['status']}: loggers are attached while it "
                "is planned, in transit or awaiting review"
            )
        device = q.device_for_attach(conn=conn, device_id=device_id)
        if device is None:
            raise NotFoundError(f"logger {device_id!r} not found: register it first")
        if device["retired_at"] is not None:
            raise InvalidRecordError("device_id", f"logger {device_id} is retired")
        due = device["calibration_due"]
        expired = due is not None and due < now.date()
        if expired and override is None:
            raise CalibrationExpiredError(
                f"logger {device_id}: calibration (certificate {device['calibration_cert']}) was "
                f"due on {due.isoformat()}; recalibrate it, or attach it with an override_reason, "
                "which is recorded in the audit trail and on the shipment's timeline (EU GDP 9.3)"
            )
        busy = q.device_rides_in(conn=conn, device_id=device_id, at=now)
        if busy is not None:
            if busy["shipment_id"] == shipment_id:
                return q.assignments(conn=conn, shipment_id=shipment_id)
            raise RecordConflictError(
                f"logger {device_id} is in shipment {busy['reference']} (since "
                f"{busy['assigned_from'].isoformat()}): detach it there first"
            )
        try:
            q.attach(conn=conn, shipment_id=shipment_id, device_id=device_id, at=now)
        except psycopg.errors.ExclusionViolation:
            raise RecordConflictError(
                f"logger {device_id} was just attached to another shipment: detach it there first"
            ) from None
        data: dict[str, Any] = {"device_id": device_id}
        lifecycle_q.add_event(conn=conn, shipment_id=shipment_id, at=now,
                              event="logger_attached", actor=caller.actor, data=data)  # fmt: skip
        if expired:
            lifecycle_q.add_event(
                conn=conn,
                shipment_id=shipment_id,
                at=now,
                event="calibration_override",
                actor=caller.actor,
                reason=override,
                data={"device_id": device_id, "calibration_due": due.isoformat()},
            )
    return q.assignments(conn=conn, shipment_id=shipment_id)


def detach(
    conn: Conn,
    caller: Caller,
    *,
    shipment_id: int,
    device_id: str,
    now: datetime,
    reason: str | None = None,
) -> list[Row]:
    """Close the logger's open assignment at ``now``; its readings until then stay the shipment's."""
    caller.require(MANAGE)
    with acting(conn, caller, reason or f"logger {device_id} detached"), conn.transaction():
        require_booking(conn, shipment_id)
        row = q.detach(conn=conn, shipment_id=shipment_id, device_id=device_id, at=now)
        if row is None:
            raise NotFoundError(f"logger {device_id!r} is not attached to shipment {shipment_id}")
        lifecycle_q.add_event(conn=conn, shipment_id=shipment_id, at=now,
                              event="logger_detached", actor=caller.actor, reason=reason,
                              data={"device_id": device_id})  # fmt: skip
    return q.assignments(conn=conn, shipment_id=shipment_id)
