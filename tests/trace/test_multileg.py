"""Our multi-leg scenario, imported as EPCIS: passports inherit exactly the right readings,
recall finds exactly the exposed units, lot impact counts them (real TimescaleDB)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from psycopg.rows import dict_row

from db.types import Conn
from tests.trace.scenario import (
    LOT,
    T0,
    T_END,
    TM,
    Scenario,
    document,
    event,
    scenario_document,
    seed_rows,
)
from traceability import lookup
from traceability.epcis_import import import_document

pytestmark = pytest.mark.integration

NOW = datetime(2025, 3, 10, tzinfo=UTC)


@pytest.fixture
def conn(db_dsn: str) -> Iterator[Conn]:
    with psycopg.connect(db_dsn, autocommit=True, row_factory=dict_row) as c:
        yield c


@pytest.fixture
def seeded(db_dsn: str, conn: Conn) -> Scenario:
    s = seed_rows(db_dsn)
    result = import_document(conn, scenario_document(s), source="test", today=NOW.date())
    assert result.n_new == 11 and result.n_known == 0
    return s


def _expected(
    s: Scenario, device: str, start: datetime, end: datetime
) -> set[tuple[str, datetime]]:
    return {(r.device_id, r.ts) for r in s.readings[device] if start <= r.ts < end}


def test_a_unit_moved_between_pallets_inherits_each_containers_readings(
    seeded: Scenario, conn: Conn
) -> None:
    s = seeded
    p = lookup.load_passport(
        conn, s.sgtin("S1").digital_link, today=NOW.date(), now=NOW, gap_factor=2
    )
    got = {(r.device_id, r.ts) for r in p.readings}
    assert got == _expected(s, "L1", T0, TM) | _expected(s, "L2", TM, T_END)
    assert [
        (pc.device_id, pc.shipment_reference, pc.container, pc.start, pc.end) for pc in p.pieces
    ] == [
        ("L1", "SHP-1", s.pallet_a, T0, TM),
        ("L2", "SHP-2", s.pallet_b, TM, T_END),
    ]
    # custody: which SSCC rode in which shipment and legs, and when
    custody = [(r.container, r.shipment_reference, r.start, r.end) for r in p.rides]
    assert custody == [(s.pallet_a, "SHP-1", T0, TM), (s.pallet_b, "SHP-2", TM, T_END)]
    assert [leg["seq"] for leg in p.rides[0].legs] == [1, 2]
    assert [(c.container, c.start, c.end) for c in p.path] == [
        (s.pallet_a, T0 - timedelta(hours=1), TM),
        (s.pallet_b, TM, None),
    ]
    assert p.unit.lot == LOT and p.unit.commissioned_at == T0 - timedelta(hours=2)

    # Figures from the unit's own series with its product's 2-8 °C range.
    excursions = [(e.direction, e.start, e.end) for _, e in p.figures.excursions]
    assert excursions == [
        ("high", T0 + timedelta(hours=1), T0 + timedelta(hours=1, minutes=30)),
        ("high", T0 + timedelta(hours=6), T0 + timedelta(hours=6, minutes=30)),
    ]
    usage = p.figures.worst_usage
    assert usage is not None and usage.time_out == timedelta(hours=1)
    assert usage.time_gap == timedelta(0) and usage.status == "ok"
    assert usage.share_used == pytest.approx(1 / 72)
    mkt = p.figures.worst_mkt
    assert mkt is not None and 4.0 < mkt.mkt_c < 8.5
    assert [e.id for e in p.recorded_excursions] == [s.excursions["L1@1h"], s.excursions["L2@6h"]]

    # Its neighbours: S2 stayed on A, S3 on B all along.
    s2 = lookup.load_passport(conn, s.epc("S2"), today=NOW.date(), now=NOW, gap_factor=2)
    assert {(r.device_id, r.ts) for r in s2.readings} == _expected(s, "L1", T0, T_END)
    s3 = lookup.load_passport(conn, s.epc("S3"), today=NOW.date(), now=NOW, gap_factor=2)
    assert {(r.device_id, r.ts) for r in s3.readings} == _expected(s, "L2", T0, T_END)
    assert len(s3.figures.excursions) == 2
    # A pallet's own passport: judged by the product its shipment carries.
    pallet = lookup.load_passport(conn, s.pallet_b, today=NOW.date(), now=NOW, gap_factor=2)
    assert {(r.device_id, r.ts) for r in pallet.readings} == _expected(s, "L2", T0, T_END)
    assert pallet.product is not None and pallet.product.gtin == s.gtin


def test_recall_lists_exactly_the_units_exposed_to_an_excursion(
    seeded: Scenario, conn: Conn
) -> None:
    s = seeded

    def exposed(key: str) -> set[str]:
        return {u["epc"] for u in lookup.recall(conn, s.excursions[key])["units"]}

    assert exposed("L1@1h") == {s.pallet_a, s.epc("S1"), s.epc("S2")}
    assert exposed("L2@2h") == {s.pallet_b, s.epc("S3")}
    assert exposed("L2@6h") == {s.pallet_b, s.epc("S3"), s.epc("S1")}
    lots = lookup.recall(conn, s.excursions["L2@6h"])["lots"]
    assert lots == [{"gtin": s.gtin, "lot": LOT, "expiry": lots[0]["expiry"], "units": 2}]

    impact = lookup.lot_impact(conn, s.gtin, LOT)
    assert impact["units"] == 4
    assert [(e["id"], e["units_exposed"]) for e in impact["excursions"]] == [
        (s.excursions["L1@1h"], 2),
        (s.excursions["L2@2h"], 1),
        (s.excursions["L2@6h"], 2),
    ]
    # An item shipped on its own (no case, no pallet) from T0 + 5 h in SHP-2 counts too.
    alone = event(
        "ObjectEvent",
        T0 + timedelta(hours=5),
        epcList=[s.sgtin("S4").digital_link],
        action="OBSERVE",
        bizStep="shipping",
        bizTransactionList=[{"type": "bol", "bizTransaction": "urn:coldchain:shipment:SHP-2"}],
    )
    import_document(conn, document([alone]), source="test", today=NOW.date())
    assert s.epc("S4") in exposed("L2@6h") and s.epc("S4") not in exposed("L2@2h")
    impact = lookup.lot_impact(conn, s.gtin, LOT)
    assert [e["units_exposed"] for e in impact["excursions"]] == [2, 1, 3]

    # Recall and passport agree: every unit recall names has the excursion in its passport.
    for key in s.excursions:
        for u in lookup.recall(conn, s.excursions[key])["units"]:
            p = lookup.load_passport(conn, u["epc"], today=NOW.date(), now=NOW, gap_factor=2)
            assert s.excursions[key] in {e.id for e in p.recorded_excursions}


def test_an_identifier_written_with_another_prefix_split_finds_the_same_unit(
    seeded: Scenario, conn: Conn
) -> None:
    s = seeded
    other_split = s.sgtin("S1").epc_uri(9)  # a 9-digit company prefix: same GTIN + serial
    assert other_split != s.epc("S1")
    _, epc = lookup.find_unit(conn, other_split, today=NOW.date())
    assert epc == s.epc("S1")
    scanned = f"]d201{s.gtin}17301231\x1d21S1"
    assert lookup.find_unit(conn, scanned, today=NOW.date())[1] == s.epc("S1")
    assert lookup.find_unit(conn, f"(01){s.gtin}(21)S1", today=NOW.date())[1] == s.epc("S1")
