"""When a shipment starts and arrives on its own: the rules, as pure functions of its readings.

:mod:`services.automation` reads a shipment's readings (those of the loggers assigned to it,
within their assignments) and asks these functions; what they answer is a :class:`Trigger`: the
reading that decides, its time (the transition's time: the reading's, never the wall clock, so
data that comes in late gives the same answer as data that came in on time) and the reason
written to the audit trail and the timeline.

The rules (README "Shipments that start and arrive on their own"):

* **Start at the first reading after departure**: a ``planned`` shipment with a planned departure
  starts at its first reading taken at or after that departure.
* **Start on leaving the origin**: a ``planned`` shipment whose lane's origin has a geofence
  starts at its first position outside that geofence that follows a position inside it. A
  position outside with none inside before proves nothing (the logger may have been switched on
  at the packer's, miles from the origin), so "left" means: was in, is out.
* Whichever comes first (by the readings' time) starts it; on a tie, the departure rule names it.
* **Arrive on entering the destination**: an ``in_transit`` shipment whose lane's destination has
  a geofence arrives at its first position inside that geofence taken at or after its start.

Readings without a position count for the departure rule only; a position is a reading with
both latitude and longitude.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from coldchain.geo import Geofence, inside

Rule = Literal["departure", "left_origin", "entered_destination"]


@dataclass(frozen=True, slots=True)
class Fix:
    """A reading of one of the shipment's loggers: when, which logger, and where if known."""

    ts: datetime
    device_id: str
    lat: float | None = None
    lon: float | None = None

    @property
    def has_position(self) -> bool:
        return self.lat is not None and self.lon is not None


@dataclass(frozen=True, slots=True)
class Trigger:
    """The reading that moves the shipment, and why (the audit trail's and timeline's reason)."""

    rule: Rule
    at: datetime
    device_id: str
    reason: str


def _order(fix: Fix) -> tuple[datetime, str]:
    """Readings in time order; at the same time, by logger (so the input order never matters)."""
    return fix.ts, fix.device_id


def _fmt(ts: datetime) -> str:
    return ts.isoformat().replace("+00:00", "Z")


def first_after_departure(fixes: Iterable[Fix], departure: datetime) -> Trigger | None:
    """The first reading at or after the planned departure."""
    first = min((f for f in fixes if f.ts >= departure), key=_order, default=None)
    if first is None:
        return None
    return Trigger(
        "departure",
        first.ts,
        first.device_id,
        f"first reading after departure (planned {_fmt(departure)}) at {_fmt(first.ts)}"
        f" from logger {first.device_id}",
    )


def left_geofence(fixes: Iterable[Fix], fence: Geofence, site: str) -> Trigger | None:
    """The first position outside ``fence`` that follows one inside it (module docstring)."""
    was_inside = False
    for fix in sorted((f for f in fixes if f.has_position), key=_order):
        assert fix.lat is not None and fix.lon is not None
        if inside(fence, fix.lat, fix.lon):
            was_inside = True
        elif was_inside:
            return Trigger(
                "left_origin",
                fix.ts,
                fix.device_id,
                f"left origin geofence {site} ({fence.radius_m:g} m) at {_fmt(fix.ts)}"
                f" (logger {fix.device_id} at {fix.lat:.5f}, {fix.lon:.5f})",
            )
    return None


def entered_geofence(
    fixes: Iterable[Fix], fence: Geofence, site: str, *, since: datetime
) -> Trigger | None:
    """The first position inside ``fence`` at or after ``since`` (the shipment's start)."""
    for fix in sorted((f for f in fixes if f.has_position and f.ts >= since), key=_order):
        assert fix.lat is not None and fix.lon is not None
        if inside(fence, fix.lat, fix.lon):
            return Trigger(
                "entered_destination",
                fix.ts,
                fix.device_id,
                f"entered destination geofence {site} ({fence.radius_m:g} m) at {_fmt(fix.ts)}"
                f" (logger {fix.device_id} at {fix.lat:.5f}, {fix.lon:.5f})",
            )
    return None


def start_trigger(
    fixes: Iterable[Fix],
    *,
    departure: datetime | None,
    origin: Geofence | None,
    origin_site: str = "",
) -> Trigger | None:
    """What starts a planned shipment, if anything: the earlier of the two start rules."""
    fixes = list(fixes)
    found = [
        t
        for t in (
            first_after_departure(fixes, departure) if departure is not None else None,
            left_geofence(fixes, origin, origin_site) if origin is not None else None,
        )
        if t is not None
    ]
    return min(found, key=lambda t: t.at, default=None)  # min is stable: departure wins a tie


def arrive_trigger(
    fixes: Iterable[Fix], *, started_at: datetime, destination: Geofence | None, site: str = ""
) -> Trigger | None:
    """What makes an in-transit shipment arrive, if anything."""
    if destination is None:
        return None
    return entered_geofence(fixes, destination, site, since=started_at)
