"""Recalls through the product (POST/GET /api/v1/recalls) and what verification then says,
against the real database; the recall table is append-only for everyone."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from tests.fixtures.auth import Person
from tests.trace.scenario import LOT, Scenario

pytestmark = pytest.mark.integration

REASON = "Sub-potent: stability failure at 12 months"


def _verify(client: TestClient, s: Scenario, serial: str) -> dict[str, Any]:
    r = client.get("/api/v1/units/verify", params={"id": s.sgtin(serial).element_string})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def test_qa_records_a_recall_and_units_of_that_lot_verify_as_recalled(
    seeded: Scenario, client: TestClient, people: dict[str, Person], db_dsn: str
) -> None:
    s = seeded
    qa = people["qa"].headers
    # S4 (LOT-A) and S6 (LOT-R) are commissioned, never shipped, not expired: sellable.
    assert _verify(client, s, "S4")["status"] == "ok"
    assert _verify(client, s, "S6")["status"] == "ok"

    r = client.post(
        "/api/v1/recalls", json={"gtin": s.gtin, "lot": LOT, "reason": f"  {REASON}\n"}, headers=qa
    )
    assert r.status_code == 201, r.text
    recall = r.json()
    assert {k: v for k, v in recall.items() if k not in ("id", "recalled_at")} == {
        "gtin": s.gtin,
        "lot": LOT,
        "reason": REASON,
        "recalled_by": "quinn.qa",  # the authenticated person, not a typed name
        "product_name": "Vaxigrip 10 x 0.5 ml",
        "units_on_record": 4,  # S1..S4
    }

    recalled = _verify(client, s, "S4")
    assert recalled["status"] == "recalled" and not recalled["sellable"]
    assert recalled["reasons"][0].startswith(f"recalled (lot {LOT}) by quinn.qa on ")
    assert recalled["reasons"][0].endswith(REASON)
    assert [x["recall_id"] for x in recalled["recalls"]] == [recall["id"]]
    assert _verify(client, s, "S6")["status"] == "ok"  # another lot of the same product

    with psycopg.connect(db_dsn) as conn:
        entry = conn.execute(
            "SELECT actor, actor_role, action, reason, after ->> 'recalled_by'"
            " FROM audit_log WHERE entity = 'recalls'"
        ).fetchall()
    assert entry == [("quinn.qa", "qa", "insert", f"recall: {REASON}", "quinn.qa")]

    # Every lot of the GTIN, given as a GTIN-13 (stored as GTIN-14): S6 is recalled too.
    assert s.gtin.startswith("0")
    r = client.post(
        "/api/v1/recalls",
        json={"gtin": s.gtin[1:], "reason": "Counterfeits in the market"},
        headers=qa,
    )
    assert r.status_code == 201, r.text
    assert (r.json()["gtin"], r.json()["lot"], r.json()["units_on_record"]) == (s.gtin, None, 6)
    s6 = _verify(client, s, "S6")
    assert s6["status"] == "recalled" and "recalled (every lot)" in s6["reasons"][0]

    # Every role reads them, oldest first; a lot filter includes the GTIN's whole-product recalls.
    listed = client.get("/api/v1/recalls").json()
    assert [(x["lot"], x["reason"]) for x in listed] == [
        (LOT, REASON),
        (None, "Counterfeits in the market"),
    ]
    assert len(client.get("/api/v1/recalls", params={"gtin": s.gtin[1:]}).json()) == 2
    by_lot = client.get("/api/v1/recalls", params={"lot": "LOT-R"}).json()
    assert [x["lot"] for x in by_lot] == [None]
    other = client.get("/api/v1/recalls", params={"gtin": "00614141000012"}).json()
    assert other == []


def test_a_recall_is_qa_s_alone_and_is_validated(
    seeded: Scenario, client: TestClient, people: dict[str, Person]
) -> None:
    s = seeded
    body = {"gtin": s.gtin, "lot": LOT, "reason": REASON}
    for role in ("viewer", "operator", "admin"):
        r = client.post("/api/v1/recalls", json=body, headers=people[role].headers)
        assert r.status_code == 403, (role, r.text)
        assert "recalls.record" in r.json()["detail"]
    assert client.get("/api/v1/recalls").json() == []

    qa = people["qa"].headers
    wrong_digit = s.gtin[:-1] + str((int(s.gtin[-1]) + 1) % 10)
    for field, value, words in (
        ("gtin", wrong_digit, "check digit"),
        ("gtin", "0950600013435X", "only digits"),
        ("gtin", "123", "8, 12, 13 or 14 digits"),
        ("lot", "LOT A", "character set 82"),
        ("lot", "", "empty"),
        ("reason", "   ", "at least 1 character"),
    ):
        r = client.post("/api/v1/recalls", json=body | {field: value}, headers=qa)
        assert r.status_code == 422, (field, value, r.text)
        (problem,) = r.json()["detail"]
        assert problem["loc"] == ["body", field], problem
        assert words in problem["msg"], problem
    r = client.post("/api/v1/recalls", json=body | {"recalled_by": "someone else"}, headers=qa)
    assert r.status_code == 422  # the recorder is the caller, never a field
    bad = client.get("/api/v1/recalls", params={"gtin": wrong_digit})
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["query", "gtin"]
    assert client.get("/api/v1/recalls").json() == []  # nothing was stored


def test_recalls_are_never_edited_nor_deleted(
    seeded: Scenario, client: TestClient, people: dict[str, Person], db_dsn: str, owner_dsn: str
) -> None:
    r = client.post(
        "/api/v1/recalls",
        json={"gtin": seeded.gtin, "lot": LOT, "reason": REASON},
        headers=people["qa"].headers,
    )
    assert r.status_code == 201, r.text
    for statement in (
        "UPDATE recalls SET reason = 'typo'",
        "DELETE FROM recalls",
        "TRUNCATE recalls",
    ):
        with (
            psycopg.connect(db_dsn, autocommit=True) as conn,  # the services' role
            pytest.raises(psycopg.errors.InsufficientPrivilege),
        ):
            conn.execute(statement)
        with (
            psycopg.connect(owner_dsn, autocommit=True) as conn,  # even the schema owner
            pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"),
        ):
            conn.execute(statement)
    assert [x["reason"] for x in client.get("/api/v1/recalls").json()] == [REASON]
