"""The simulated fleet's serialised units: SSCC numbering, pallets of cases of items, repacks.

Per shipment one pallet SSCC holds cases (SSCCs), each holding SGTIN items; the scenario's
``fleet.repacks`` then move cases between pallets mid-trip. Pure and deterministic: the same
fleet gets the same numbers on every run, so provisioning is idempotent by EPC.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta

from coldchain.errors import ConfigError
from coldchain.gs1 import GTIN, SGTIN, SSCC, check_digit
from simulator.scenario import RepackSpec

__all__ = ["Aggregation", "ShipmentUnit", "Unit", "UnitNumbering", "repack", "serialise"]


@dataclass(frozen=True, slots=True)
class Unit:
    """A serialised unit: an SSCC (pallet, case) or an SGTIN item."""

    epc: str
    kind: str  # "sscc" or "sgtin"
    gtin: str | None
    serial: str | None
    sscc: str | None
    lot: str | None
    expiry: date | None
    commissioned_at: datetime


@dataclass(frozen=True, slots=True)
class Aggregation:
    """A child packed into a parent from ``start`` on (``end`` None: still packed)."""

    parent_epc: str
    child_epc: str
    start: datetime
    end: datetime | None


@dataclass(frozen=True, slots=True)
class ShipmentUnit:
    """A logistic unit riding in a shipment over [start, end)."""

    shipment_reference: str
    epc: str
    start: datetime
    end: datetime


class UnitNumbering:
    """SSCC serial references: a tag from the fleet's id prefix, then a running number.

    The tag keeps two fleets with different id prefixes apart under one company prefix, and the
    same fleet gets the same numbers on every run (so provisioning is idempotent by EPC).
    """

    def __init__(self, id_prefix: str, company_prefix: str) -> None:
        self.id_prefix = id_prefix
        self.company_prefix = company_prefix
        free = 17 - len(company_prefix)  # extension digit + serial reference
        self.tag_digits = max(0, min(3, free - 6))
        self.counter_digits = free - self.tag_digits
        self.tag = zlib.crc32(id_prefix.encode()) % 10**self.tag_digits if self.tag_digits else 0
        self.next = 1

    def sscc(self) -> SSCC:
        if self.next >= 10**self.counter_digits:
            raise ConfigError(
                f"too many containers for company prefix {self.company_prefix}: "
                f"at most {10**self.counter_digits - 1} SSCCs"
            )
        body = f"{self.tag:0{self.tag_digits}d}" if self.tag_digits else ""
        body += f"{self.next:0{self.counter_digits}d}"
        self.next += 1
        # extension digit first, then company prefix, then the rest of the serial reference
        ext, rest = body[0], body[1:]
        digits17 = ext + self.company_prefix + rest
        return SSCC(digits17 + str(check_digit(digits17)))


def serialise(
    numbering: UnitNumbering,
    gtin_text: str,
    company_prefix: str,
    reference: str,
    lot: str,
    expiry: date,
    start: datetime,
    end: datetime,
    cases: int,
    items: int,
    unit_rows: list[Unit],
    aggregations: list[Aggregation],
    shipment_units: list[ShipmentUnit],
    s: int,
) -> None:
    """One pallet SSCC holding ``cases`` case SSCCs holding ``items`` SGTINs each."""
    cp_len = len(company_prefix)
    made = start - timedelta(days=30)
    packed = start - timedelta(hours=2)
    pallet = numbering.sscc()
    pallet_epc = pallet.epc_uri(len(numbering.company_prefix))
    unit_rows.append(Unit(pallet_epc, "sscc", None, None, pallet.value, None, None, packed))
    shipment_units.append(ShipmentUnit(reference, pallet_epc, start, end))
    gtin = GTIN(gtin_text)
    for c in range(cases):
        case = numbering.sscc()
        case_epc = case.epc_uri(len(numbering.company_prefix))
        unit_rows.append(Unit(case_epc, "sscc", None, None, case.value, None, None, packed))
        aggregations.append(Aggregation(pallet_epc, case_epc, packed, None))
        for i in range(items):
            serial = f"{numbering.id_prefix[:6]}{s + 1:06d}{c * items + i + 1:04d}"
            item_epc = SGTIN(gtin, serial).epc_uri(cp_len)
            unit_rows.append(Unit(item_epc, "sgtin", gtin_text, serial, None, lot, expiry, made))
            aggregations.append(Aggregation(case_epc, item_epc, packed, None))


def repack(
    aggregations: list[Aggregation],
    shipment_units: list[ShipmentUnit],
    references: Sequence[str],
    repacks: Sequence[RepackSpec],
    start: datetime,
    end: datetime,
) -> list[Aggregation]:
    """Move cases between pallets (scenario ``fleet.repacks``): the case leaves its pallet at
    ``start + at_min`` and joins the other shipment's pallet at that instant. A case is named by
    its position among the cases on the source pallet at that time. ``references`` are the
    shipments' references in scenario order."""
    out = list(aggregations)
    pallet_of = {su.shipment_reference: su.epc for su in shipment_units}
    for i, r in enumerate(sorted(repacks, key=lambda r: r.at_min)):
        at = start + timedelta(minutes=r.at_min)
        if not start < at < end:
            raise ConfigError(f"fleet.repacks[{i}].at_min falls outside the scenario's duration")
        source = pallet_of[references[r.from_shipment - 1]]
        target = pallet_of[references[r.to_shipment - 1]]
        on_source = [
            k
            for k, a in enumerate(out)
            if a.parent_epc == source and a.start <= at and (a.end is None or at < a.end)
        ]
        if r.case > len(on_source):
            raise ConfigError(
                f"fleet.repacks[{i}]: shipment {r.from_shipment}'s pallet holds "
                f"{len(on_source)} case(s) then, not {r.case}"
            )
        k = on_source[r.case - 1]
        moved = out[k]
        out[k] = replace(moved, end=at)
        out.append(Aggregation(target, moved.child_epc, at, None))
    return out
