"""Verification of a scanned unit and counterfeit signals (pure).

:func:`impossible_travel` flags one serial seen at two places that cannot both be true: the
great-circle distance between consecutive sightings, divided by the time between them, is
faster than anything that carries goods (``max_speed_kmh``, 1000 km/h by default: an airliner's
ground speed with a tail wind). Sightings closer than ``tolerance_km`` (two read points of one
site, city-level coordinates) are never flagged, whatever the time between them. Only
consecutive sightings are compared: if A → C is impossible, then A → B or B → C is too (the
triangle inequality), so nothing is missed beyond the tolerance.

:func:`verdict` turns the facts about one unit into one status, the most severe that applies:

    invalid    the text is not an SGTIN or SSCC in any form we read
    unknown    well-formed, but no such unit is on record (never provisioned, never in an event)
    recalled   its product and lot are recalled
    suspect    counterfeit signals: never commissioned, seen before its commissioning,
               impossible travel, or the scanned lot/expiry differ from the record
    expired    past its expiry date (``today`` > expiry)
    exposed    inside a shipment during an excursion that QA has not released
    ok         none of the above

and lists every finding in ``reasons`` (so "recalled" does not hide "also expired").

QA releases an excursion with a signed disposition of its shipment (whole, or the unit's lot):
:attr:`traceability.passport.RecordedExcursion.cleared`. An exposed unit's reason says what QA
decided instead (not reviewed, quarantine, reject, return, or a release signed before this
version of the excursion was recorded) and which signed record says so.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Literal

from traceability.identifiers import UnitKey
from traceability.passport import RecordedExcursion

__all__ = [
    "DEFAULT_MAX_SPEED_KMH",
    "DEFAULT_TOLERANCE_KM",
    "Sighting",
    "Status",
    "TravelFlag",
    "Verification",
    "haversine_km",
    "impossible_travel",
    "verdict",
]

DEFAULT_MAX_SPEED_KMH = 1000.0
DEFAULT_TOLERANCE_KM = 25.0
EARTH_RADIUS_KM = 6371.0088  # mean radius (IUGG)

Status = Literal["invalid", "unknown", "recalled", "suspect", "expired", "exposed", "ok"]


@dataclass(frozen=True, slots=True)
class Sighting:
    """A unit named by an EPCIS event at a time and (maybe) a known position."""

    epc: str
    event_key: str
    at: datetime
    place: str | None
    lat: float | None
    lon: float | None
    biz_step: str | None = None

    @property
    def located(self) -> bool:
        """Whether the position is known."""
        return self.lat is not None and self.lon is not None


@dataclass(frozen=True, slots=True)
class TravelFlag:
    """Two consecutive sightings too far apart for the time between them."""

    epc: str
    first: Sighting
    second: Sighting
    distance_km: float
    hours: float
    speed_kmh: float  # math.inf when both sightings are at the same instant
    max_speed_kmh: float


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in km between two WGS 84 positions (spherical Earth)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))


def impossible_travel(
    sightings: Iterable[Sighting],
    *,
    max_speed_kmh: float = DEFAULT_MAX_SPEED_KMH,
    tolerance_km: float = DEFAULT_TOLERANCE_KM,
) -> list[TravelFlag]:
    """Consecutive located sightings of the same EPC that imply travelling faster than
    ``max_speed_kmh`` over more than ``tolerance_km`` (see the module doc), in time order."""
    if not max_speed_kmh > 0 or tolerance_km < 0:
        raise ValueError("max_speed_kmh must be positive and tolerance_km not negative")
    by_epc: dict[str, list[Sighting]] = {}
    for s in sightings:
        if s.located:
            by_epc.setdefault(s.epc, []).append(s)
    flags: list[TravelFlag] = []
    for epc, seen in by_epc.items():
        seen.sort(key=lambda s: (s.at, s.event_key))
        for a, b in itertools.pairwise(seen):
            assert a.lat is not None and a.lon is not None and b.lat is not None
            assert b.lon is not None
            distance = haversine_km(a.lat, a.lon, b.lat, b.lon)
            if distance <= tolerance_km:
                continue
            hours = (b.at - a.at).total_seconds() / 3600.0
            speed = math.inf if hours <= 0 else distance / hours
            if speed > max_speed_kmh:
                flags.append(TravelFlag(epc, a, b, distance, hours, speed, max_speed_kmh))
    return sorted(flags, key=lambda f: (f.second.at, f.epc))


@dataclass(frozen=True, slots=True)
class Verification:
    """What a scan tells: the status, every reason, and the facts behind them."""

    input: str
    status: Status
    reasons: tuple[str, ...]
    key: UnitKey | None = None
    epc: str | None = None
    kind: str | None = None
    gtin: str | None = None
    product_name: str | None = None
    lot: str | None = None
    expiry: date | None = None
    expired: bool | None = None
    commissioned_at: datetime | None = None
    recalls: tuple[Mapping[str, object], ...] = ()
    uncleared_excursions: tuple[RecordedExcursion, ...] = ()
    cleared_excursions: tuple[RecordedExcursion, ...] = ()
    travel: tuple[TravelFlag, ...] = ()
    flags: tuple[str, ...] = field(default=())

    @property
    def sellable(self) -> bool:
        """Only an ``ok`` unit may be dispensed or sold."""
        return self.status == "ok"


_SEVERITY: tuple[Status, ...] = ("recalled", "suspect", "expired", "exposed")


def _recall_reason(recall: Mapping[str, object]) -> str:
    scope = f"lot {recall['lot']}" if recall.get("lot") else "every lot"
    by = f" by {recall['recalled_by']}" if recall.get("recalled_by") else ""
    at = recall.get("recalled_at")
    on = f" on {at.astimezone(UTC):%Y-%m-%d}" if isinstance(at, datetime) else ""
    return f"recalled ({scope}){by}{on}: {recall.get('reason')}"


def _qa_reason(e: RecordedExcursion) -> str:
    """What QA decided about an excursion that is not cleared, and which record says so."""
    if e.disposition_id is None:
        return e.qa_state
    scope = f"lot {e.disposition_lot}" if e.disposition_lot else "whole shipment"
    at = e.reviewed_at
    signed = f" on {at.astimezone(UTC):%Y-%m-%d %H:%M} UTC" if at is not None else ""
    return f"{e.qa_state} (disposition {e.disposition_id}, {scope}, by {e.reviewed_by}{signed})"


def verdict(
    *,
    text: str,
    key: UnitKey | None,
    parse_error: str | None,
    unit: Mapping[str, object] | None,
    recalls: Sequence[Mapping[str, object]],
    excursions: Sequence[RecordedExcursion],
    sightings: Sequence[Sighting],
    today: date,
    max_speed_kmh: float = DEFAULT_MAX_SPEED_KMH,
    tolerance_km: float = DEFAULT_TOLERANCE_KM,
) -> Verification:
    """Judge one scanned identifier from the facts on record (see the module doc).

    ``unit`` is the stored unit (``epc, kind, gtin, lot, expiry, commissioned_at`` and
    ``product_name``) or None; ``excursions`` are the recorded excursions it was exposed to.
    """
    if key is None:
        return Verification(
            input=text, status="invalid", reasons=(parse_error or "not an identifier",)
        )
    if unit is None:
        return Verification(
            input=text,
            status="unknown",
            reasons=(f"no unit {key.epc} on record: never provisioned or seen in an event",),
            key=key,
        )
    found: dict[Status, list[str]] = {}
    flags: list[str] = []

    def add(status: Status, flag: str, reason: str) -> None:
        found.setdefault(status, []).append(reason)
        flags.append(flag)

    lot = unit.get("lot")
    expiry = unit.get("expiry")
    commissioned = unit.get("commissioned_at")
    for r in recalls:
        add("recalled", "recalled", _recall_reason(r))
    if commissioned is None:
        add("suspect", "never_commissioned", "never commissioned: no commissioning on record")
    else:
        assert isinstance(commissioned, datetime)
        early = [s for s in sightings if s.at < commissioned]
        if early:
            add(
                "suspect",
                "seen_before_commissioning",
                f"seen {len(early)} time(s) before its commissioning at {commissioned.isoformat()}",
            )
    travel = impossible_travel(sightings, max_speed_kmh=max_speed_kmh, tolerance_km=tolerance_km)
    for t in travel:
        add(
            "suspect",
            "impossible_travel",
            f"seen at {t.first.place or 'a position'} and {t.second.place or 'a position'} "
            f"{t.distance_km:.0f} km apart within {t.hours * 60:.0f} min",
        )
    if key.lot is not None and lot is not None and key.lot != lot:
        add("suspect", "lot_mismatch", f"scanned lot {key.lot!r}, on record {lot!r}")
    if key.expiry is not None and expiry is not None and key.expiry != expiry:
        add(
            "suspect",
            "expiry_mismatch",
            f"scanned expiry {key.expiry.isoformat()}, on record {expiry}",
        )
    # The printed expiry counts too: a unit with no expiry on record is judged by its label.
    effective_expiry = expiry if isinstance(expiry, date) else key.expiry
    expired = None if effective_expiry is None else today > effective_expiry
    if expired:
        assert effective_expiry is not None
        add("expired", "expired", f"expired on {effective_expiry.isoformat()}")
    uncleared = tuple(e for e in excursions if not e.cleared)
    cleared = tuple(e for e in excursions if e.cleared)
    for e in uncleared:
        add(
            "exposed",
            "excursion_not_cleared",
            f"exposed to excursion {e.id} ({e.direction}, max {e.max_c:.1f} °C, "
            f"{e.shipment_reference}, logger {e.device_id}); QA: {_qa_reason(e)}",
        )
    status: Status = next((s for s in _SEVERITY if s in found), "ok")
    reasons = tuple(r for s in _SEVERITY for r in found.get(s, []))
    return Verification(
        input=text,
        status=status,
        reasons=reasons or ("known, commissioned, not expired, not recalled, no open exposure",),
        key=key,
        epc=str(unit["epc"]),
        kind=str(unit["kind"]),
        gtin=None if unit.get("gtin") is None else str(unit["gtin"]),
        product_name=None if unit.get("product_name") is None else str(unit["product_name"]),
        lot=None if lot is None else str(lot),
        expiry=effective_expiry,
        expired=expired,
        commissioned_at=commissioned if isinstance(commissioned, datetime) else None,
        recalls=tuple(recalls),
        uncleared_excursions=uncleared,
        cleared_excursions=cleared,
        travel=tuple(travel),
        flags=tuple(dict.fromkeys(flags)),
    )
