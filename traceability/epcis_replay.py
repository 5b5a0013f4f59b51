"""Replay stored packing and custody events into membership intervals (pure, no I/O).

The second half of an import (:mod:`traceability.epcis_import`, whose docstring says what the
events mean): packing (AggregationEvent ADD/DELETE) gives child → parent intervals, custody
(bizStep ``shipping``/``receiving``) gives unit → shipment intervals. The intervals are replayed
from *all* stored events of the units concerned, so events may arrive in any order and in any
number of documents and the result is the same.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Literal

__all__ = [
    "ACTION_ORDER",
    "CustodyEvent",
    "Interval",
    "PackingEvent",
    "custody_intervals",
    "packing_intervals",
]

ACTION_ORDER: Final = {"DELETE": 0, "ADD": 1}  # at one instant: unpack, then pack (a re-pack)


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
        seq.sort(key=lambda e: (e.at, ACTION_ORDER[e.action], e.event_key))
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
