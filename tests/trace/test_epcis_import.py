"""EPCIS 2.0 import against the real database: GS1's official examples, our own scenario, a
broken document refused whole, idempotency; and the pure replay of packing and custody."""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from db.types import Conn
from tests.trace.scenario import T0, TM, document, event, scenario_document, seed_rows, sscc
from traceability.epcis_import import EPCISRejected, import_document, load_document
from traceability.epcis_parse import parse_document
from traceability.epcis_replay import (
    CustodyEvent,
    PackingEvent,
    custody_intervals,
    packing_intervals,
)
from traceability.epcis_schema import SCHEMA_PATH

#: GS1's own EPCIS 2.0 examples, carried in the repository (see its PROVENANCE.md).
REPO = Path(__file__).resolve().parents[2]
REFERENCE = REPO / "tests" / "data" / "epcis"
TODAY = date(2025, 3, 10)

# Every table an import may write, counted to prove "nothing changed".
TABLES = (
    "epcis_imports",
    "epcis_events",
    "epcis_event_epcs",
    "units",
    "aggregations",
    "shipment_units",
)


def official_documents() -> list[Path]:
    """Every file in the reference folder that is an EPCIS document (not the context)."""
    assert REFERENCE.is_dir(), f"the official EPCIS reference files are missing: {REFERENCE}"
    found = [
        p
        for p in sorted(REFERENCE.glob("*.json*"))
        if p.name != SCHEMA_PATH.name and json.loads(p.read_text()).get("type") == "EPCISDocument"
    ]
    assert len(found) == 6, found
    return found


@pytest.fixture
def conn(db_dsn: str) -> Iterator[Conn]:
    with psycopg.connect(db_dsn, autocommit=True, row_factory=dict_row) as c:
        yield c


def snapshot(conn: Conn) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table an import writes (ids and import times left out)."""
    out = {}
    for table in TABLES:
        rows = conn.execute(f"SELECT * FROM {table}").fetchall()
        out[table] = sorted(
            tuple(
                str(v) for k, v in r.items() if k not in ("import_id", "imported_at", "received_at")
            )
            for r in rows
        )
    return out


def test_reference_files_match_their_provenance() -> None:
    """The schema and the examples are byte for byte the files PROVENANCE.md describes."""
    recorded = {}
    for line in (REFERENCE / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split(maxsplit=1)
        recorded[name] = digest
    assert f"{SCHEMA_PATH.relative_to(REPO)}" in recorded
    carried = {f"{p.relative_to(REPO)}" for p in REFERENCE.iterdir()} - {
        "tests/data/epcis/PROVENANCE.md",
        "tests/data/epcis/SHA256SUMS",
    }
    assert carried | {f"{SCHEMA_PATH.relative_to(REPO)}"} == set(recorded)
    for name, digest in recorded.items():
        assert hashlib.sha256((REPO / name).read_bytes()).hexdigest() == digest, name


def test_every_official_example_imports_and_twice_changes_nothing(conn: Conn) -> None:
    new_total = 0
    for path in official_documents():
        doc = json.loads(path.read_text())
        result = import_document(conn, doc, source=path.name, today=TODAY)
        assert result.n_new == len(doc["epcisBody"]["eventList"]), path.name
        new_total += result.n_new
    before = snapshot(conn)
    assert len(before["epcis_events"]) == new_total == 6
    # The GRAI of SensorDataExample14 is kept in the event, not as a unit.
    untracked = conn.execute("SELECT count(*) AS n FROM units WHERE epc LIKE '%8003%'").fetchone()
    assert untracked is not None and untracked["n"] == 0
    # URN and Digital Link children are units; the SSCC parent too; none commissioned.
    kinds = conn.execute(
        "SELECT kind, count(*) AS n, count(commissioned_at) AS c FROM units GROUP BY kind"
        " ORDER BY kind"
    ).fetchall()
    assert [(k["kind"], k["n"], k["c"]) for k in kinds] == [("sgtin", 5, 0), ("sscc", 1, 0)]
    for path in official_documents():
        again = import_document(conn, json.loads(path.read_text()), source="again", today=TODAY)
        assert again.n_new == 0 and again.import_id is None
    assert snapshot(conn) == before


def test_our_scenario_imports_once_whatever_the_spelling(db_dsn: str, conn: Conn) -> None:
    s = seed_rows(db_dsn)
    doc = scenario_document(s)
    first = import_document(conn, doc, source="test", today=TODAY)
    assert first.n_new == 11 and first.units_created == 8  # 6 items, 2 pallets
    assert first.commissioned == 6
    before = snapshot(conn)
    assert len(before["aggregations"]) == 4 and len(before["shipment_units"]) == 2
    assert import_document(conn, doc, source="test", today=TODAY).n_new == 0
    # The same events in another order and another document: still nothing new.
    shuffled = copy.deepcopy(doc)
    shuffled["epcisBody"]["eventList"].reverse()
    shuffled["id"] = "urn:test:other"
    assert import_document(conn, shuffled, source="test", today=TODAY).n_new == 0
    assert snapshot(conn) == before


def test_a_broken_document_is_refused_whole_with_every_reason(db_dsn: str, conn: Conn) -> None:
    s = seed_rows(db_dsn)
    import_document(conn, scenario_document(s), source="test", today=TODAY)
    before = snapshot(conn)
    good = event(
        "ObjectEvent",
        T0,
        epcList=[s.epc("S4")],
        action="OBSERVE",
        bizStep="inspecting",
        readPoint={"id": "urn:epc:id:sgln:9506000.00001.0"},
    )
    bad_time = event("ObjectEvent", T0, epcList=[s.epc("S4")], action="OBSERVE")
    bad_time["eventTime"] = "yesterday"
    bad_sensor = event(
        "ObjectEvent",
        T0,
        epcList=[s.epc("S4")],
        action="OBSERVE",
        sensorElementList=[{"sensorReport": [{"type": "Temp", "value": 5.0, "uom": "CEL"}]}],
    )
    bad_check_digit = event(
        "ObjectEvent",
        T0,
        epcList=["https://id.gs1.org/01/09506000134353/21/X1"],  # check digit 3, not 2
        action="OBSERVE",
    )
    orphan_delete = event("AggregationEvent", TM, childEPCs=[s.epc("S2")], action="DELETE")
    broken = document([good, bad_time, bad_sensor])
    with pytest.raises(EPCISRejected) as refused:
        import_document(conn, broken, source="test", today=TODAY)
    paths = {p.path for p in refused.value.problems}
    assert "/epcisBody/eventList/1/eventTime" in paths
    assert "/epcisBody/eventList/2/sensorElementList/0/sensorReport/0/type" in paths
    assert snapshot(conn) == before

    # Schema-valid, but not what a unit or a packing event can be.
    with pytest.raises(EPCISRejected) as refused:
        import_document(
            conn, document([good, bad_check_digit, orphan_delete]), source="test", today=TODAY
        )
    messages = {p.path: p.message for p in refused.value.problems}
    assert "check digit" in messages["/epcisBody/eventList/1/epcList/0"]
    assert "parentID" in messages["/epcisBody/eventList/2/parentID"]
    assert snapshot(conn) == before

    # An eventID reused with another content is refused, also across imports.
    reused = dict(good, eventID="urn:uuid:6f1c7d1e-0000-4000-8000-000000000001")
    import_document(conn, document([reused]), source="test", today=TODAY)
    after_one = snapshot(conn)
    changed = dict(reused, bizStep="shipping")
    with pytest.raises(EPCISRejected, match="different content"):
        import_document(conn, document([changed]), source="test", today=TODAY)
    assert snapshot(conn) == after_one

    with pytest.raises(EPCISRejected, match="not JSON"):
        load_document(b"{not json")
    with pytest.raises(EPCISRejected, match="required property"):
        parse_document({"type": "EPCISDocument"}, today=TODAY)


def test_a_packing_conflict_with_provisioned_rows_refuses_the_document(
    db_dsn: str, conn: Conn
) -> None:
    s = seed_rows(db_dsn)
    import_document(conn, scenario_document(s), source="test", today=TODAY)
    # S4 was provisioned (not by an event) into a box X over [T0 - 3 h, T0 + 1 h).
    box = sscc(99).epc_uri(7)
    conn.execute(
        "INSERT INTO units (epc, kind, sscc) VALUES (%s, 'sscc', %s)", (box, sscc(99).value)
    )
    conn.execute(
        "INSERT INTO aggregations (parent_epc, child_epc, during) VALUES (%s, %s, tstzrange(%s, %s))",
        (box, s.epc("S4"), T0 - timedelta(hours=3), T0 + timedelta(hours=1)),
    )
    before = snapshot(conn)
    seen = event("ObjectEvent", T0, epcList=[s.epc("S4")], action="OBSERVE", bizStep="inspecting")
    # An ADD inside the provisioned interval ends it there: accepted.
    inside = event(
        "AggregationEvent", T0, parentID=s.pallet_b, childEPCs=[s.epc("S4")], action="ADD"
    )
    # An ADD before it would put S4 in two parents at once: the document is refused whole.
    earlier = event(
        "AggregationEvent",
        T0 - timedelta(hours=4),
        parentID=s.pallet_a,
        childEPCs=[s.epc("S4")],
        action="ADD",
    )
    with pytest.raises(EPCISRejected, match="packing conflicts"):
        import_document(conn, document([seen, earlier]), source="test", today=TODAY)
    assert snapshot(conn) == before
    import_document(conn, document([seen, inside]), source="test", today=TODAY)
    rows = conn.execute(
        "SELECT parent_epc, lower(during) AS a, upper(during) AS b FROM aggregations"
        " WHERE child_epc = %s ORDER BY lower(during)",
        (s.epc("S4"),),
    ).fetchall()
    assert [(r["parent_epc"], r["a"], r["b"]) for r in rows] == [
        (box, T0 - timedelta(hours=3), T0),
        (s.pallet_b, T0, None),
    ]


# --- the pure replay ---------------------------------------------------------------------------

A, B = "urn:epc:id:sscc:1.A", "urn:epc:id:sscc:1.B"
t = [datetime(2025, 1, 1, tzinfo=UTC) + timedelta(hours=h) for h in range(10)]


def test_packing_replay_moves_unpacks_and_ignores_inconsistent_deletes() -> None:
    events = [
        PackingEvent("c", A, "ADD", t[1], "e1"),
        PackingEvent("c", B, "DELETE", t[2], "e2"),  # names another parent: ignored
        PackingEvent("c", B, "ADD", t[3], "e3"),  # an ADD elsewhere moves the child
        PackingEvent("c", B, "DELETE", t[5], "e4"),
        PackingEvent("c", A, "ADD", t[5], "e5"),  # same instant: unpack first, then pack
        PackingEvent("d", A, "ADD", t[4], "e6"),
        PackingEvent("d", A, "DELETE", t[4], "e7"),  # DELETE first at one instant: no effect
        PackingEvent("d", B, "ADD", t[6], "e8"),  # moved at once: A ends at t6
        PackingEvent("d", A, "ADD", t[6], "e9"),  # and again (by event key): B is empty
    ]
    got = [(i.owner, i.member, i.start, i.end) for i in packing_intervals(reversed(events))]
    assert got == [
        (A, "c", t[1], t[3]),
        (B, "c", t[3], t[5]),
        (A, "c", t[5], None),
        (A, "d", t[4], t[6]),
        (A, "d", t[6], None),
    ]


def test_custody_replay_ships_and_receives_by_shipment() -> None:
    events = [
        CustodyEvent("p", "shipping", t[1], 1, "s1"),
        CustodyEvent("p", "receiving", t[2], 2, "r-other"),  # another shipment: ignored
        CustodyEvent("p", "receiving", t[3], None, "r1"),  # names none: ends the ride
        CustodyEvent("p", "shipping", t[4], 2, "s2"),
        CustodyEvent("p", "shipping", t[6], None, "s3"),  # shipped somewhere unknown
    ]
    got = [(i.owner, i.start, i.end) for i in custody_intervals(events)]
    assert got == [(1, t[1], t[3]), (2, t[4], t[6])]


def test_documents_that_are_not_epcis_documents_are_refused() -> None:
    single_event = event("ObjectEvent", T0, epcList=[], action="OBSERVE")
    single_event["@context"] = "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"
    with pytest.raises(EPCISRejected, match="only EPCISDocument"):
        parse_document(single_event, today=TODAY)
    with pytest.raises(EPCISRejected):
        parse_document([], today=TODAY)
