"""services.trace against the real database: the recall and EPCIS changes check the caller's
permission, are audited as theirs, and a refused caller changes nothing; the reads answer what
the stages compute."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from coldchain.errors import IdentifierError, NotFoundError, PermissionDeniedError
from coldchain.settings import Settings
from db.types import Conn
from security.roles import Role
from services import shipments, trace
from services.caller import Caller
from tests.trace.scenario import LOT, Scenario, scenario_document, seed_rows

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC)
REASON = "Sub-potent: stability failure at 12 months"


@pytest.fixture
def seeded(db_dsn: str, conn: Conn, callers: dict[Role, Caller]) -> Scenario:
    """The scenario's rows, and its EPCIS document imported through the service by an admin."""
    s = seed_rows(db_dsn)
    document = json.dumps(scenario_document(s))
    result = trace.import_epcis(
        conn, callers["admin"], document=document, source="scenario.jsonld", today=NOW.date()
    )
    assert result.n_new == result.n_events > 0
    return s


def _count(conn: Conn, sql: str) -> int:
    row = conn.execute(sql).fetchone()
    assert row is not None
    return int(row["n"])


def test_an_epcis_import_needs_admin_and_a_refused_one_stores_nothing(
    db_dsn: str, conn: Conn, callers: dict[Role, Caller]
) -> None:
    s = seed_rows(db_dsn)
    document = json.dumps(scenario_document(s))
    for role in ("viewer", "operator", "qa"):
        with pytest.raises(PermissionDeniedError, match="'admin' permission"):
            trace.import_epcis(
                conn, callers[role], document=document, source="x.json", today=NOW.date()
            )
    assert _count(conn, "SELECT count(*) AS n FROM epcis_events") == 0
    assert _count(conn, "SELECT count(*) AS n FROM units") == 0

    first = trace.import_epcis(
        conn, callers["admin"], document=document, source="x.json", today=NOW.date()
    )
    assert _count(conn, "SELECT count(*) AS n FROM epcis_events") == first.n_new > 0
    again = trace.import_epcis(
        conn, Caller.console(), document=document, source="x.json", today=NOW.date()
    )
    assert (again.n_new, again.n_known) == (0, first.n_new)  # importing again changes nothing


def test_qa_records_a_recall_audited_as_theirs_and_the_lot_verifies_as_recalled(
    seeded: Scenario, conn: Conn, callers: dict[Role, Caller]
) -> None:
    s = seeded
    qa = callers["qa"]
    assert trace.verify(conn, identifier=s.epc("S4"), today=NOW.date()).status == "ok"

    row = trace.record_recall(conn, qa, gtin=s.gtin, lot=LOT, reason=f"  {REASON}\n")
    assert (row["gtin"], row["lot"], row["reason"], row["recalled_by"]) == (
        s.gtin,
        LOT,
        REASON,
        qa.actor,
    )
    entries = conn.execute(
        "SELECT actor, actor_role, action, reason FROM audit_log WHERE entity = 'recalls'"
    ).fetchall()
    assert [tuple(e.values()) for e in entries] == [(qa.actor, "qa", "insert", f"recall: {REASON}")]

    verdict = trace.verify(conn, identifier=s.epc("S4"), today=NOW.date())
    assert verdict.status == "recalled" and not verdict.sellable
    listed = trace.list_recalls(conn, gtin=s.gtin, lot=LOT)
    assert [r["recall_id"] for r in listed] == [row["recall_id"]]


@pytest.mark.parametrize("role", ["viewer", "operator", "admin"])
def test_only_qa_records_a_recall_and_a_refusal_changes_nothing(
    seeded: Scenario, conn: Conn, callers: dict[Role, Caller], role: Role
) -> None:
    with pytest.raises(PermissionDeniedError, match="a person with the qa role"):
        trace.record_recall(conn, callers[role], gtin=seeded.gtin, lot=LOT, reason=REASON)
    with pytest.raises(PermissionDeniedError):
        trace.record_recall(conn, Caller.console(), gtin=seeded.gtin, lot=LOT, reason=REASON)
    assert trace.list_recalls(conn) == []
    assert _count(conn, "SELECT count(*) AS n FROM audit_log WHERE entity = 'recalls'") == 0
    assert trace.verify(conn, identifier=seeded.epc("S4"), today=NOW.date()).status == "ok"


def test_a_bad_recall_is_refused_naming_what_is_wrong_and_nothing_is_stored(
    seeded: Scenario, conn: Conn, callers: dict[Role, Caller]
) -> None:
    qa = callers["qa"]
    wrong_check_digit = seeded.gtin[:-1] + str((int(seeded.gtin[-1]) + 1) % 10)
    with pytest.raises(IdentifierError, match="check digit"):
        trace.record_recall(conn, qa, gtin=wrong_check_digit, lot=LOT, reason=REASON)
    with pytest.raises(ValueError, match=f"at most {trace.MAX_REASON_LENGTH}"):
        trace.record_recall(
            conn, qa, gtin=seeded.gtin, lot=LOT, reason="x" * (trace.MAX_REASON_LENGTH + 1)
        )
    with pytest.raises(ValueError, match="needs a reason"):
        trace.record_recall(conn, qa, gtin=seeded.gtin, lot=LOT, reason=" \n ")
    assert trace.list_recalls(conn) == []


def test_the_passport_judges_by_the_limits_the_shipment_chart_shows(
    seeded: Scenario, conn: Conn, settings: Settings
) -> None:
    """One unit, one shipment: the passport's range is the chart's band (both the engine's)."""
    rules = shipments.rule_sources(settings)
    p = trace.passport(conn, rules, identifier=seeded.epc("S1"), now=NOW, gap_factor=2)
    assert p.unit.epc == seeded.epc("S1")
    rides = {r.shipment_id for r in p.rides}
    assert rides, "S1 rode in the scenario's shipments"
    band = {shipments.limits(conn, rules, shipment_id=i, as_of=NOW) for i in rides}
    assert band, "every ride's shipment has limits in force"
    limits = p.figures.limits
    assert limits is not None
    assert {(b.low_c, b.high_c) for b in band if b is not None} >= {(limits.low_c, limits.high_c)}


def test_the_reads_answer_unknown_and_unreadable_units_clearly(
    seeded: Scenario, conn: Conn, settings: Settings
) -> None:
    rules = shipments.rule_sources(settings)
    unknown = seeded.sgtin("NOPE").epc_uri(7)
    assert trace.find_unit(conn, identifier=unknown, today=NOW.date())[1] is None
    with pytest.raises(NotFoundError, match="no unit"):
        trace.passport(conn, rules, identifier=unknown, now=NOW, gap_factor=2)
    with pytest.raises(IdentifierError):
        trace.export_unit(conn, identifier="not an identifier", now=NOW)
    assert trace.verify(conn, identifier="not an identifier", today=NOW.date()).status == "invalid"
    document = trace.export_shipment(conn, key=str(min(seeded.shipments.values())), now=NOW)
    assert document["type"] == "EPCISDocument" and document["epcisBody"]["eventList"]
