"""QA clearance of excursions from signed dispositions, against the real database: a unit
exposed to an excursion is "exposed" until QA signs a release of its shipment (or its lot) on a
report that held that excursion row; a quarantine does not clear it, nor does a release signed
before late data superseded the row QA saw. Also: migration 0007 moves off the interim
``excursion_reviews`` table with every row's removal in the audit trail."""

from __future__ import annotations

import contextlib
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from psycopg.rows import dict_row
from yoyo import get_backend, read_migrations

from db.migrate import MIGRATIONS_DIR, migrate
from launcher.localstack import PostgresCluster
from security.audit import stored_entries, verify_chain
from tests.fixtures.auth import PASSWORD, Person
from tests.fixtures.services import APP_PASSWORD, APP_USER, OWNER_PASSWORD, OWNER_USER
from tests.fixtures.web import add_excursion
from tests.trace.scenario import LOT, T0, Scenario

pytestmark = pytest.mark.integration


def sign(
    client: TestClient, qa: Person, shipment: str, decision: str, *, lot: str | None = None
) -> dict[str, Any]:
    """Sign ``decision`` on the shipment's report as of now, as QA does through the API."""
    as_of = (datetime.now(UTC) + timedelta(seconds=1)).replace(microsecond=0).isoformat()
    report = client.get(
        f"/api/v1/shipments/{shipment}/report.json", params={"as_of": as_of}, headers=qa.headers
    )
    assert report.status_code == 200, report.text
    body = {
        "decision": decision,
        "reason": f"{decision}: reviewed the excursions and the stability data",
        "as_of": as_of,
        "report_hash": report.json()["content_hash"],
        "password": PASSWORD,
        **({"lot": lot} if lot else {}),
    }
    r = client.post(f"/api/v1/shipments/{shipment}/dispositions", json=body, headers=qa.headers)
    assert r.status_code == 201, r.text
    signed: dict[str, Any] = r.json()
    signed["as_of"] = as_of
    return signed


def verify(client: TestClient, s: Scenario, serial: str) -> dict[str, Any]:
    r = client.get("/api/v1/units/verify", params={"id": s.epc(serial)})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def test_exposed_until_qa_signs_a_release_of_its_shipment(
    seeded: Scenario, client: TestClient, people: dict[str, Person]
) -> None:
    s, qa = seeded, people["qa"]
    l1 = s.excursions["L1@1h"]  # S2 rode pallet A in SHP-1 throughout: exposed to L1@1h only
    v = verify(client, s, "S2")
    assert v["status"] == "exposed"
    assert [e["id"] for e in v["uncleared_excursions"]] == [l1]
    assert v["reasons"][0].endswith("QA: not reviewed")

    quarantine = sign(client, qa, "SHP-1", "quarantine")
    v = verify(client, s, "S2")
    assert v["status"] == "exposed"  # a quarantine clears nothing
    (e,) = v["uncleared_excursions"]
    assert (e["review_disposition"], e["disposition_id"], e["reviewed_by"]) == (
        "quarantine",
        quarantine["id"],
        "quinn.qa",
    )
    assert e["review_covers"] and not e["cleared"] and e["qa_state"] == "quarantine"
    assert (
        f"QA: quarantine (disposition {quarantine['id']}, whole shipment, by quinn.qa on "
        in (v["reasons"][0])
    )

    release = sign(client, qa, "SHP-1", "release")
    assert release["supersedes"] == quarantine["id"]
    v = verify(client, s, "S2")
    assert (v["status"], v["sellable"], v["uncleared_excursions"]) == ("ok", True, [])
    assert [(e["id"], e["disposition_id"]) for e in v["cleared_excursions"]] == [
        (l1, release["id"])
    ]
    # The passport and the lot's impact read the same clearance.
    passport = client.get(
        "/api/v1/units/passport", params={"id": s.epc("S2"), "include_readings": "false"}
    ).json()
    assert [(e["id"], e["cleared"], e["qa_state"]) for e in passport["recorded_excursions"]] == [
        (l1, True, "released")
    ]
    lot = client.get("/api/v1/units/lot-excursions", params={"gtin": s.gtin, "lot": LOT}).json()
    assert {e["id"]: e["cleared"] for e in lot["excursions"]} == {
        l1: True,  # SHP-1 released
        s.excursions["L2@2h"]: False,  # SHP-2 not reviewed
        s.excursions["L2@6h"]: False,
    }


def test_a_lot_release_and_the_later_signed_record_decide(
    seeded: Scenario, client: TestClient, people: dict[str, Person]
) -> None:
    s, qa = seeded, people["qa"]
    l1, l2 = s.excursions["L1@1h"], s.excursions["L2@6h"]  # S1: SHP-1, then SHP-2 from TM
    sign(client, qa, "SHP-1", "release")
    v = verify(client, s, "S1")
    assert v["status"] == "exposed"  # SHP-2's excursion is not reviewed
    assert [e["id"] for e in v["uncleared_excursions"]] == [l2]

    quarantine_all = sign(client, qa, "SHP-2", "quarantine")
    lot_release = sign(client, qa, "SHP-2", "release", lot=LOT)  # later: the lot is released
    assert lot_release["supersedes"] is None  # its own scope, its own chain
    v = verify(client, s, "S1")
    assert v["status"] == "ok", v["reasons"]
    cleared = {e["id"]: e for e in v["cleared_excursions"]}
    assert cleared[l2]["disposition_lot"] == LOT
    assert cleared[l2]["disposition_id"] == lot_release["id"]
    assert cleared[l1]["disposition_lot"] is None
    # Pallet B itself has no lot: only the whole-shipment quarantine applies to it.
    pallet = client.get("/api/v1/units/verify", params={"id": s.pallet_b}).json()
    assert "excursion_not_cleared" in pallet["flags"]  # (and suspect: never commissioned)
    assert {e["disposition_id"] for e in pallet["uncleared_excursions"]} == {quarantine_all["id"]}

    # A whole-shipment quarantine signed after the lot's release holds the lot again.
    again = sign(client, qa, "SHP-2", "quarantine")
    assert again["supersedes"] == quarantine_all["id"]
    v = verify(client, s, "S1")
    assert v["status"] == "exposed"
    (e,) = v["uncleared_excursions"]
    assert (e["id"], e["review_disposition"], e["disposition_id"]) == (
        l2,
        "quarantine",
        again["id"],
    )
    assert "QA: quarantine" in v["reasons"][0]


def test_a_release_signed_before_late_data_does_not_clear_the_new_row(
    seeded: Scenario, client: TestClient, people: dict[str, Person], db_dsn: str
) -> None:
    s, qa = seeded, people["qa"]
    old = s.excursions["L1@1h"]
    release = sign(client, qa, "SHP-1", "release")
    assert verify(client, s, "S2")["status"] == "ok"

    # Late readings arrive: the rules engine supersedes the row QA saw with a longer excursion
    # (a new row, created after the release was signed and after the report it was signed on).
    while datetime.now(UTC) <= datetime.fromisoformat(release["as_of"]):
        time.sleep(0.05)
    start = T0 + timedelta(hours=1)  # as before, but 50 minutes long now
    with psycopg.connect(db_dsn) as conn:
        conn.execute(
            "UPDATE excursions SET superseded_at = now(), superseded_reason = 'late data'"
            " WHERE excursion_id = %s",
            (old,),
        )
        new = add_excursion(
            conn,
            s.shipments["SHP-1"],
            "L1",
            start=start,
            end=start + timedelta(minutes=50),
            last_out=start + timedelta(minutes=45),
            max_c=12.4,
        )
    v = verify(client, s, "S2")
    assert v["status"] == "exposed"
    (e,) = v["uncleared_excursions"]
    assert (e["id"], e["review_disposition"], e["review_covers"], e["cleared"]) == (
        new,
        "release",
        False,
        False,
    )
    assert "released before this excursion was recorded; needs a new review" in v["reasons"][0]
    assert f"disposition {release['id']}" in v["reasons"][0]

    renewed = sign(client, qa, "SHP-1", "release")  # on a report that holds the new row
    assert renewed["supersedes"] == release["id"]
    v = verify(client, s, "S2")
    assert v["status"] == "ok"
    assert [(e["id"], e["disposition_id"]) for e in v["cleared_excursions"]] == [
        (new, renewed["id"])
    ]


def test_migration_0007_moves_off_excursion_reviews_with_an_audited_trail(
    pg_cluster: PostgresCluster,
) -> None:
    """A database at 0006 with an interim review: 0007 deletes it under the audit trigger (the
    why recorded), drops the table, and makes recalls append-only; the chain still verifies."""
    name = f"t_migration_0007_{int(time.time() * 1000) % 10**8}"
    pg_cluster.ensure_database(
        name, OWNER_USER, OWNER_PASSWORD, app_user=APP_USER, app_password=APP_PASSWORD
    )
    owner = f"postgresql://{OWNER_USER}:{OWNER_PASSWORD}@127.0.0.1:{pg_cluster.port}/{name}"
    app = f"postgresql://{APP_USER}:{APP_PASSWORD}@127.0.0.1:{pg_cluster.port}/{name}"
    try:
        backend = get_backend(owner.replace("postgresql://", "postgresql+psycopg://", 1))
        try:
            migrations = read_migrations(str(MIGRATIONS_DIR))
            upto_0006 = migrations.__class__(
                [m for m in migrations if m.id < "0007"], migrations.post_apply
            )
            with backend.lock():
                backend.apply_migrations(backend.to_apply(upto_0006))
        finally:
            backend.connection.close()
        with psycopg.connect(app, autocommit=True) as conn:
            conn.execute(
                "INSERT INTO products (gtin, name) VALUES ('09506000134352', 'Vaccine');"
                "INSERT INTO shipments (reference, product_gtin, origin, destination)"
                " VALUES ('SHP-1', '09506000134352', 'Basel', 'Milan')"
            )
            conn.execute(
                "INSERT INTO excursions (shipment_id, device_id, direction, start_ts, last_out_ts,"
                " min_c, max_c, degree_minutes, n_readings, alarm, rule_key, thresholds)"
                " SELECT shipment_id, 'L1', 'high', now(), now(), 9, 9, 1, 1, true, 'temp', '{}'"
                " FROM shipments"
            )
            conn.execute(
                "INSERT INTO excursion_reviews (excursion_id, disposition, reviewed_by)"
                " SELECT excursion_id, 'release', 'QA Lead' FROM excursions"
            )
        assert migrate(owner)[0] == "0007_recalls_signed_clearance"  # and any later ones
        with psycopg.connect(app, autocommit=True, row_factory=dict_row) as conn:
            assert conn.execute("SELECT to_regclass('excursion_reviews') AS t").fetchone() == {
                "t": None
            }
            trail = conn.execute(
                "SELECT action, actor, reason, before ->> 'reviewed_by' AS who FROM audit_log"
                " WHERE entity = 'excursion_reviews' ORDER BY seq"
            ).fetchall()
            with contextlib.closing(stored_entries(conn)) as entries:
                assert verify_chain(entries).ok
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute("DELETE FROM recalls")
        assert [(t["action"], t["who"]) for t in trail] == [("insert", None), ("delete", "QA Lead")]
        assert trail[1]["actor"] == f"db:{OWNER_USER}"
        assert trail[1]["reason"] == (
            "migration 0007: QA clearance now comes from signed dispositions"
        )
    finally:
        with psycopg.connect(pg_cluster.superuser_dsn(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
