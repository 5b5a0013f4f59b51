"""Our own multi-leg track-and-trace scenario, written as EPCIS events plus the rows the other
stages would write (products, loggers, shipments, readings, recorded excursions).

Two pallets ride in two shipments, each watched by its own logger::

    pallet A (SSCC) in SHP-1, logger L1         pallet B (SSCC) in SHP-2, logger L2
      S1, S2                                      S3
                   --- at TM, S1 moves from pallet A to pallet B ---
      S2                                          S3, S1

    T0 - 2 h  commissioning of S1..S6 (ILMD lot and expiry)
    T0 - 1 h  packing: S1, S2 into A; S3 into B
    T0        shipping: A in SHP-1, B in SHP-2
    TM        unpacking S1 from A, packing S1 into B
    T0 + 8 h  receiving: A from SHP-1, B from SHP-2

Loggers read every 5 minutes. Excursions: L1 at T0+1h (30 min, 12 °C: S1 and S2 exposed),
L2 at T0+2h (S3 only: S1 was not on B yet) and L2 at T0+6h (S3 and S1).
S4 is commissioned and never shipped (the "ok" unit), S5 is expired, S6's lot is recalled.
Identifiers are written in every form on purpose: EPC URIs, Digital Links, element strings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg

from coldchain.gs1 import GTIN, SGTIN, SSCC, check_digit
from coldchain.telemetry import Reading
from tests.fixtures.web import add_device, add_excursion, add_product, add_shipment, assign, ingest

T0 = datetime(2025, 3, 3, 6, 0, tzinfo=UTC)
TM = T0 + timedelta(hours=4)
T_END = T0 + timedelta(hours=8)
STEP = timedelta(minutes=5)
CP_LENGTH = 7
LOT = "LOT-A"
EXPIRY = date(2030, 12, 31)


def sscc(n: int) -> SSCC:
    """A valid SSCC: extension 3, company prefix 9506000, serial reference n."""
    body = f"3{'9506000'}{n:09d}"
    return SSCC(body + str(check_digit(body)))


@dataclass
class Scenario:
    """Ids and identifiers of the seeded scenario."""

    gtin: str
    shipments: dict[str, int] = field(default_factory=dict)
    excursions: dict[str, int] = field(default_factory=dict)
    readings: dict[str, list[Reading]] = field(default_factory=dict)

    def sgtin(self, serial: str) -> SGTIN:
        """The SGTIN of one of the scenario's items."""
        return SGTIN(GTIN(self.gtin), serial)

    def epc(self, serial: str) -> str:
        """The canonical EPC URI of an item."""
        return self.sgtin(serial).epc_uri(CP_LENGTH)

    @property
    def pallet_a(self) -> str:
        """Pallet A's EPC URI."""
        return sscc(1).epc_uri(CP_LENGTH)

    @property
    def pallet_b(self) -> str:
        """Pallet B's EPC URI."""
        return sscc(2).epc_uri(CP_LENGTH)


def _ts(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


def event(kind: str, at: datetime, **fields: Any) -> dict[str, Any]:
    """An EPCIS event with its time fields."""
    return {"type": kind, "eventTime": _ts(at), "eventTimeZoneOffset": "+00:00", **fields}


def document(events: list[dict[str, Any]], *, doc_id: str | None = None) -> dict[str, Any]:
    """An EPCIS 2.0 JSON-LD document around ``events``."""
    doc: dict[str, Any] = {
        "@context": ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": "2025-03-04T00:00:00.000Z",
        "epcisBody": {"eventList": events},
    }
    if doc_id is not None:
        doc["id"] = doc_id
    return doc


def _bt(reference: str) -> list[dict[str, str]]:
    return [{"type": "bol", "bizTransaction": f"urn:coldchain:shipment:{reference}"}]


def scenario_document(s: Scenario) -> dict[str, Any]:
    """Every event of the scenario, in one document (deliberately not in time order)."""
    dl = {n: s.sgtin(n).digital_link for n in ("S1", "S2", "S3")}
    commission = [
        event(
            "ObjectEvent",
            T0 - timedelta(hours=2),
            epcList=[s.epc(n) for n in ("S1", "S2", "S3", "S4")],
            action="ADD",
            bizStep="commissioning",
            disposition="active",
            ilmd={"cbvmda:lotNumber": LOT, "cbvmda:itemExpirationDate": EXPIRY.isoformat()},
        ),
        event(
            "ObjectEvent",
            T0 - timedelta(hours=2),
            epcList=[s.epc("S5")],
            action="ADD",
            bizStep="commissioning",
            ilmd={"cbvmda:lotNumber": "LOT-OLD", "cbvmda:itemExpirationDate": "2021-01-31"},
        ),
        event(
            "ObjectEvent",
            T0 - timedelta(hours=2),
            epcList=[s.epc("S6")],
            action="ADD",
            bizStep="commissioning",
            ilmd={"cbvmda:lotNumber": "LOT-R", "cbvmda:itemExpirationDate": "2030-06-30"},
        ),
    ]
    packing = [
        event(
            "AggregationEvent",
            T0 - timedelta(hours=1),
            parentID=s.pallet_a,
            childEPCs=[dl["S1"], dl["S2"]],  # Digital Link: matched by GTIN + serial
            action="ADD",
            bizStep="packing",
        ),
        event(
            "AggregationEvent",
            T0 - timedelta(hours=1),
            parentID=sscc(2).digital_link,
            childEPCs=[s.epc("S3")],
            action="ADD",
            bizStep="packing",
        ),
    ]
    shipping = [
        event(
            "ObjectEvent",
            T0,
            epcList=[s.pallet_a],
            action="OBSERVE",
            bizStep="shipping",
            disposition="in_transit",
            bizTransactionList=_bt("SHP-1"),
        ),
        event(
            "ObjectEvent",
            T0,
            epcList=[s.pallet_b],
            action="OBSERVE",
            bizStep="shipping",
            disposition="in_transit",
            bizTransactionList=_bt("SHP-2"),
        ),
    ]
    move = [
        event(
            "AggregationEvent",
            TM,
            parentID=s.pallet_a,
            childEPCs=[s.epc("S1")],
            action="DELETE",
            bizStep="unpacking",
        ),
        event(
            "AggregationEvent",
            TM,
            parentID=s.pallet_b,
            childEPCs=[dl["S1"]],
            action="ADD",
            bizStep="packing",
        ),
    ]
    receiving = [
        event(
            "ObjectEvent",
            T_END,
            epcList=[s.pallet_a],
            action="OBSERVE",
            bizStep="receiving",
            bizTransactionList=_bt("SHP-1"),
        ),
        event(
            "ObjectEvent",
            T_END,
            epcList=[s.pallet_b],
            action="OBSERVE",
            bizStep="receiving",
            bizTransactionList=_bt("SHP-2"),
        ),
    ]
    # Out of order on purpose: the importer replays by event time.
    return document([*receiving, *move, *shipping, *packing, *commission], doc_id="urn:test:multi")


def _series(device: str, base: float, hot: list[tuple[datetime, float]]) -> list[Reading]:
    readings = []
    t, i = T0 - timedelta(hours=1), 0
    while t < T0 + timedelta(hours=9):
        temp = base + (i % 50) * 0.01
        for start, value in hot:
            if start <= t < start + timedelta(minutes=30):
                temp = value
        readings.append(Reading(device, t, temp, rh=40.0 + (i % 7), lat=47.5, lon=7.6 + i * 1e-3))
        t, i = t + STEP, i + 1
    return readings


def seed_rows(dsn: str) -> Scenario:
    """Product, loggers, shipments, readings and recorded excursions (no units yet)."""
    with psycopg.connect(dsn) as conn:
        gtin = add_product(conn)
        conn.execute(
            "UPDATE products SET stability_budget_s = 72 * 3600, alarm_delay_s = 900,"
            " mkt_limit_c = 8 WHERE gtin = %s",
            (gtin,),
        )
        s = Scenario(gtin=gtin)
        for device in ("L1", "L2"):
            add_device(conn, device, interval_s=300)
        for ref, device in (("SHP-1", "L1"), ("SHP-2", "L2")):
            s.shipments[ref] = add_shipment(conn, ref, product=gtin, status="arrived")
            assign(conn, device, s.shipments[ref], T0 - timedelta(hours=1), T0 + timedelta(hours=9))
        conn.execute(
            "INSERT INTO shipment_legs (shipment_id, seq, mode, origin, destination,"
            " planned_departure, planned_arrival) VALUES"
            " (%(id)s, 1, 'road', 'Rotterdam', 'Cologne', %(t0)s, %(t3)s),"
            " (%(id)s, 2, 'road', 'Cologne', 'Basel', %(t3)s, %(t8)s)",
            {"id": s.shipments["SHP-1"], "t0": T0, "t3": T0 + timedelta(hours=3), "t8": T_END},
        )
        s.readings["L1"] = _series("L1", 4.0, [(T0 + timedelta(hours=1), 12.0)])
        s.readings["L2"] = _series(
            "L2", 6.0, [(T0 + timedelta(hours=2), 10.5), (T0 + timedelta(hours=6), 11.0)]
        )
        for key, ship, device, start in (
            ("L1@1h", "SHP-1", "L1", T0 + timedelta(hours=1)),
            ("L2@2h", "SHP-2", "L2", T0 + timedelta(hours=2)),
            ("L2@6h", "SHP-2", "L2", T0 + timedelta(hours=6)),
        ):
            s.excursions[key] = add_excursion(
                conn,
                s.shipments[ship],
                device,
                start=start,
                end=start + timedelta(minutes=30),
                last_out=start + timedelta(minutes=25),
            )
    for readings in s.readings.values():
        ingest(dsn, readings)
    return s
