"""Reading the New shipment form (pure, no Dash, no database): :func:`read_form` turns what was
typed into a :class:`Booking` and every mistake it can see into a message for its field;
:func:`slot_of` puts an error the service raised (a taken reference, a busy logger) next to the
field it names. :mod:`dashboard.pages.new_shipment` lays the form out and submits it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, Final

from coldchain.errors import (
    CalibrationExpiredError,
    ColdchainError,
    InvalidRecordError,
    RecordConflictError,
)
from services import bookings, units_on_board

#: Product lots the form offers (a booking with more lots comes by the API or a CSV import).
ITEM_ROWS: Final = 3
#: The external references the form asks for, by their kind.
REFERENCE_SLOTS: Final[tuple[str, ...]] = ("purchase_order", "sales_order", "customer")


@dataclass(frozen=True, slots=True)
class FormValues:
    """What the form holds, as the browser sends it (every value may be missing)."""

    reference: str | None = None
    purchase_order: str | None = None
    sales_order: str | None = None
    customer: str | None = None
    items: tuple[tuple[str | None, str | None, Any], ...] = ()
    lane_id: Any = None
    carrier_id: Any = None
    planned_departure: str | None = None
    planned_arrival: str | None = None
    loggers_typed: str | None = None
    loggers_picked: tuple[str, ...] = ()
    units: str | None = None
    override_reason: str | None = None


@dataclass(frozen=True, slots=True)
class Booking:
    """The form read: the booking, its loggers and scans; or the errors by slot."""

    new: bookings.NewShipment | None
    loggers: tuple[str, ...] = ()
    units: tuple[str, ...] = ()
    # Per booking reference index, the slot of that external reference.
    reference_slots: tuple[str, ...] = ()
    errors: dict[str, str] = field(default_factory=dict)


def field_text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def _when(value: str | None, slot: str, errors: dict[str, str]) -> datetime | None:
    """A date and time as typed (``2026-12-05 10:30``, ISO 8601), read as UTC without an offset."""
    text = field_text(value)
    if not text:
        return None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        errors[slot] = f"{text!r} is not a date and time (YYYY-MM-DD HH:MM, UTC)"
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed


def split_lines(text: str | None) -> list[str]:
    """The non-empty entries of a scan box: one per line (a scanner ends each with Enter);
    commas and spaces also separate logger serials."""
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


def read_form(values: FormValues, *, today: date) -> Booking:
    """Every field read and checked as far as it can be without the database (pure); all the
    mistakes found, each under its own field."""
    errors: dict[str, str] = {}
    reference = field_text(values.reference)
    if not reference:
        errors["reference"] = "Enter the shipment's reference."
    refs: list[tuple[str, str]] = []
    ref_slots: list[str] = []
    for slot in REFERENCE_SLOTS:
        value = field_text(getattr(values, slot))
        if value:
            refs.append((slot, value))
            ref_slots.append(slot)
    items: list[bookings.Item] = []
    for i, (gtin, lot, qty) in enumerate(values.items):
        slot = f"items[{i}]"
        gtin_text, lot_text = field_text(gtin), field_text(lot)
        if not gtin_text and not lot_text and qty in (None, ""):
            continue
        if not gtin_text:
            errors[slot] = "Choose the product of this lot."
        elif not lot_text:
            errors[slot] = "Enter the lot number."
        elif isinstance(qty, bool) or not isinstance(qty, int | float) or qty != int(qty):
            errors[slot] = "Enter the quantity, a whole number."
        elif qty <= 0:
            errors[slot] = "The quantity must be above 0."
        else:
            items.append(bookings.Item(gtin_text, lot_text, int(qty)))
    if not items and not any(s.startswith("items") for s in errors):
        errors["items[0]"] = "Choose at least one product and its lot."
    lane_id = values.lane_id
    if lane_id in (None, ""):
        errors["lane"] = "Choose the lane: its origin and destination are the shipment's."
    carrier_id = values.carrier_id if values.carrier_id not in (None, "") else None
    departure = _when(values.planned_departure, "planned_departure", errors)
    arrival = _when(values.planned_arrival, "planned_arrival", errors)
    serials: list[str] = []
    for serial in [*re.split(r"[\s,;]+", values.loggers_typed or ""), *values.loggers_picked]:
        if serial and serial not in serials:
            serials.append(serial)
    scans = split_lines(values.units)
    for n, scan in enumerate(scans, start=1):
        try:
            units_on_board.read_scan(scan, today=today)
        except InvalidRecordError as exc:
            errors["units"] = f"Line {n} ({scan!r}): {message_of(exc)}"
            break
    if errors:
        return Booking(None, errors=errors)
    new = bookings.NewShipment(
        reference=reference,
        lane_id=int(lane_id),
        carrier_id=None if carrier_id is None else int(carrier_id),
        planned_departure=departure,
        planned_arrival=arrival,
        references=tuple(refs),
        items=tuple(items),
    )
    return Booking(new, tuple(serials), tuple(scans), tuple(ref_slots))


def slot_of(error: ColdchainError, booking: Booking) -> str | None:
    """The form field a service's refusal names, or None (shown above the Book button)."""
    if isinstance(error, CalibrationExpiredError):
        return "loggers"
    if isinstance(error, InvalidRecordError):
        name = error.field
        head = name.split(".", 1)[0]
        found = re.fullmatch(r"references\[(\d+)\]", head)
        if found and int(found.group(1)) < len(booking.reference_slots):
            return booking.reference_slots[int(found.group(1))]
        found = re.fullmatch(r"items\[(\d+)\]", head)
        if found:
            return head if int(found.group(1)) < ITEM_ROWS else "items[0]"
        if head.startswith("loggers"):
            return "loggers"
        if head.startswith("units"):
            return "units"
        return {
            "reference": "reference",
            "references": "purchase_order",
            "items": "items[0]",
            "product_gtin": "items[0]",
            "lane_id": "lane",
            "origin": "lane",
            "destination": "lane",
            "carrier_id": "carrier",
            "planned_departure": "planned_departure",
            "planned_arrival": "planned_arrival",
        }.get(head)
    if isinstance(error, RecordConflictError):
        # "reference 'X' already belongs…" or "purchase_order 'X' already belongs…"
        word = str(error).split(" ", 1)[0]
        return word if word in ("reference", *REFERENCE_SLOTS) else "reference"
    return None


def message_of(error: ColdchainError) -> str:
    """The refusal as shown under its field (without the field name the service prefixes)."""
    if isinstance(error, InvalidRecordError):
        return str(error).removeprefix(f"{error.field}: ")
    return str(error)
