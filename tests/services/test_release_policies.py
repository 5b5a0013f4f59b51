"""QA's auto-release policies through the services on the real database: signed and revoked
by a QA person only, one active per scope, and the automatic release of a conforming shipment
(an exception stays with QA), recorded as a disposition naming the policy, on the timeline and
in the audit trail as the policy's."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from coldchain.errors import (
    AuthenticationError,
    InvalidRecordError,
    PermissionDeniedError,
    PolicyConflictError,
)
from coldchain.settings import Settings
from coldchain.telemetry import Reading
from db.types import Conn
from reports.service import verify_signature
from security.ratelimit import LoginLimiter
from security.roles import Role
from services import bookings, lifecycle, release_policies
from services.caller import Caller
from services.reports import ReportSettings
from tests.fixtures.auth import PASSWORD
from tests.fixtures.web import add_device, add_product, ingest
from tests.services.conftest import audit_rows

pytestmark = pytest.mark.integration


def _limiter() -> LoginLimiter:
    return LoginLimiter(max_failures=50, window_s=60)


def _ship(
    conn: Conn, db_dsn: str, op: Caller, reference: str, gtin: str, logger: str, temps: list[float]
) -> int:
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=len(temps))
    row, _ = bookings.create(
        conn,
        op,
        new=bookings.NewShipment(
            reference=reference,
            origin="Basel",
            destination="Milan",
            items=(bookings.Item(gtin, "L1", 10),),
        ),
        now=start - timedelta(minutes=5),
    )
    shipment_id = int(row["shipment_id"])
    bookings.attach(conn, op, shipment_id=shipment_id, device_id=logger, now=start)
    lifecycle.start(conn, op, shipment_id=shipment_id, now=start)
    ingest(db_dsn, [Reading(logger, start + timedelta(minutes=i), t) for i, t in enumerate(temps)])
    return shipment_id


def test_a_conforming_shipment_is_released_under_the_policy_and_an_exception_is_not(
    conn: Conn, db_dsn: str, caller: Callable[[Role], Caller], settings: Settings
) -> None:
    qa, op = caller("qa"), caller("operator")
    gtin = add_product(conn, name="Vaccine", body="0950600013435")
    conn.execute("UPDATE products SET stability_budget_s = 600 WHERE gtin = %s", (gtin,))
    add_device(conn, "LOG-A")
    add_device(conn, "LOG-B")
    policy, created = release_policies.create(
        conn,
        qa,
        scope=release_policies.Scope(gtin=gtin),
        reason="validated lane study QS-12",
        password=PASSWORD,
        limiter=_limiter(),
        now=datetime.now(UTC),
    )
    assert created and policy["active"] and policy["signer_username"] == qa.actor
    assert [e["event"] for e in policy["events"]] == ["created"]

    cfg = ReportSettings.from_settings(settings)
    clean = _ship(conn, db_dsn, op, "SHP-OK", gtin, "LOG-A", [5.0] * 60)
    hot = _ship(conn, db_dsn, op, "SHP-HOT", gtin, "LOG-B", [5.0] * 20 + [12.0] * 20 + [5.0] * 20)
    now = datetime.now(UTC)
    (ok,) = lifecycle.arrive(conn, op, shipment_id=clean, now=now, gap_factor=2.0, release=cfg)
    (bad,) = lifecycle.arrive(conn, op, shipment_id=hot, now=now, gap_factor=2.0, release=cfg)
    assert (ok["verdict"], bad["verdict"]) == ("conforming", "exception")

    assert bookings.get(conn, shipment_id=clean)["status"] == "released"
    assert bookings.get(conn, shipment_id=hot)["status"] == "under_review"
    assert [e["reference"] for e in lifecycle.qa_queue(conn)] == ["SHP-HOT"]

    pid = int(policy["policy_id"])
    (disp,) = conn.execute("SELECT * FROM dispositions WHERE shipment_id = %s", (clean,)).fetchall()
    assert (disp["decision"], disp["policy_id"], disp["signer_username"]) == (
        "release", pid, qa.actor
    )  # fmt: skip
    assert f"release policy {pid}" in disp["meaning"] and "no person signed" in disp["meaning"]
    assert verify_signature(disp, "SHP-OK", {"policy_id": pid,
                                              "signature_hash": policy["signature_hash"]})  # fmt: skip
    assert not verify_signature(disp, "SHP-OK")  # the policy is part of what it attests
    snap = conn.execute(
        "SELECT created_by FROM report_snapshots WHERE snapshot_id = %s", (disp["snapshot_id"],)
    ).fetchone()
    assert snap is not None and snap["created_by"] == f"policy:{pid}"

    last = lifecycle.timeline(conn, shipment_id=clean)[-1]
    assert (last["event"], last["to_state"], last["actor"]) == (
        "release",
        "released",
        f"policy:{pid}",
    )
    (entry,) = [
        r for r in audit_rows(conn, "dispositions") if r["entity_id"] == str(disp["disposition_id"])
    ]
    assert entry["actor"] == f"policy:{pid}" and "actor not verified" in entry["source"]
    assert release_policies.get(conn, policy_id=pid)["releases"] == 1


def test_only_qa_signs_with_their_password_one_policy_per_scope_and_revocation(
    conn: Conn, db_dsn: str, caller: Callable[[Role], Caller], settings: Settings
) -> None:
    qa = caller("qa")
    gtin = add_product(conn, name="Insulin", body="0950600013442")
    scope = release_policies.Scope(gtin=gtin)

    def sign(who: Caller, reason: str = "stable product", password: str = PASSWORD) -> tuple:
        return release_policies.create(conn, who, scope=scope, reason=reason, password=password,
                                       limiter=_limiter(), now=datetime.now(UTC))  # fmt: skip

    for role in ("viewer", "operator", "admin"):
        with pytest.raises(PermissionDeniedError, match=r"policies\.sign"):
            sign(caller(role))
    with pytest.raises(AuthenticationError):
        sign(qa, password="not my password")
    with pytest.raises(InvalidRecordError, match=r"^reason"):
        sign(qa, reason="   ")
    with pytest.raises(InvalidRecordError, match=r"^gtin"):
        release_policies.create(conn, qa, scope=release_policies.Scope(gtin="09506000134999"),
                                reason="x", password=PASSWORD, limiter=_limiter(),
                                now=datetime.now(UTC))  # fmt: skip

    first, created = sign(qa)
    again, created_again = sign(qa)
    assert (created, created_again) == (True, False)
    assert again["policy_id"] == first["policy_id"]
    with pytest.raises(PolicyConflictError, match="revoke it first"):
        sign(qa, reason="another reason")

    pid = int(first["policy_id"])
    revoked = release_policies.revoke(conn, qa, policy_id=pid, reason="study expired",
                                      password=PASSWORD, limiter=_limiter(),
                                      now=datetime.now(UTC), expected_version=1)  # fmt: skip
    assert (revoked["active"], revoked["version"], revoked["revoke_reason"]) == (
        False, 2, "study expired"
    )  # fmt: skip
    assert [e["event"] for e in revoked["events"]] == ["created", "revoked"]
    with pytest.raises(PolicyConflictError, match="already revoked"):
        release_policies.revoke(conn, qa, policy_id=pid, reason="again", password=PASSWORD,
                                limiter=_limiter(), now=datetime.now(UTC))  # fmt: skip
    actions = [(r["action"], r["actor"]) for r in audit_rows(conn, "release_policies")]
    assert actions == [("insert", qa.actor), ("update", qa.actor)]

    # A signed policy is never edited nor deleted, even by hand.
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("UPDATE release_policies SET reason = 'edited' WHERE policy_id = %s", (pid,))
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("DELETE FROM release_policies WHERE policy_id = %s", (pid,))

    # Revoked: a conforming shipment waits for a person.
    add_device(conn, "LOG-C")
    shipment = _ship(conn, db_dsn, caller("operator"), "SHP-AFTER", gtin, "LOG-C", [5.0] * 30)
    lifecycle.arrive(conn, caller("operator"), shipment_id=shipment, now=datetime.now(UTC),
                     gap_factor=2.0, release=ReportSettings.from_settings(settings))  # fmt: skip
    assert bookings.get(conn, shipment_id=shipment)["status"] == "under_review"
