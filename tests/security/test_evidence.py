"""Readings and excursions are evidence, and only the database writes the audit trail (issue 11,
point 11). Every statement runs as the services' role against the real database: what an
attacker holding that role (a leaked password, an SQL injection) tries fails, and the
legitimate paths (ingest, the engine's supersede and link, audited changes by a proven caller)
still work."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from psycopg.rows import dict_row

from coldchain.telemetry import Reading
from security import accounts
from security.audit import AuditContext, audit_context, stored_entries, verify_chain
from tests.api.test_rules_api import WHY, client, scopes  # noqa: F401  # fixtures, registered here
from tests.fixtures.auth import Person, add_api_key, add_user, issue_token
from tests.fixtures.web import add_alert, add_device, add_excursion, add_shipment, ingest

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 20, 3, 0, tzinfo=UTC)
Refused = psycopg.errors.InsufficientPrivilege


@pytest.fixture
def conn(db_dsn: str) -> Iterator[psycopg.Connection[dict[str, Any]]]:
    """A connection as the services' role (what the ingester, engine and web app use)."""
    with psycopg.connect(db_dsn, autocommit=True, row_factory=dict_row) as c:
        yield c


def _count(conn: psycopg.Connection[Any], sql: str, *args: object) -> int:
    row = conn.execute(sql, args).fetchone()
    assert row is not None
    return int(next(iter(row.values())) if isinstance(row, dict) else row[0])


# --- readings -------------------------------------------------------------------------------


def test_readings_are_append_only_for_the_services_chunks_included(
    conn: psycopg.Connection[dict[str, Any]], db_dsn: str
) -> None:
    day = [Reading("LOG-1", T0 + timedelta(hours=h), 5.0) for h in range(0, 72, 6)]
    assert ingest(db_dsn, day) == 12  # the ingester's own statements, as the services' role
    assert ingest(db_dsn, day) == 0  # a re-sent batch is skipped, not an update
    chunks = [r["c"] for r in conn.execute("SELECT show_chunks('readings')::text AS c")]
    assert len(chunks) >= 3
    for statement in (
        "UPDATE readings SET temp_c = 2.0",
        "DELETE FROM readings WHERE device_id = 'LOG-1'",
        "TRUNCATE readings",
        *(f"UPDATE {c} SET temp_c = 2.0" for c in chunks),  # the chunk tables themselves
        *(f"DELETE FROM {c}" for c in chunks),
        *(f"TRUNCATE {c}" for c in chunks),
    ):
        with pytest.raises(Refused):
            conn.execute(statement)
    assert conn.execute("SELECT count(*) AS n, min(temp_c) AS t FROM readings").fetchone() == {
        "n": 12,
        "t": 5.0,
    }


# --- excursions -----------------------------------------------------------------------------


@pytest.fixture
def excursion(db_dsn: str) -> dict[str, int]:
    """An excursion and two alerts, written as the services' role (as the engine does)."""
    with psycopg.connect(db_dsn, autocommit=True) as c:
        add_device(c, "LOG-1")
        shipment = add_shipment(c, "SHP-EV", product=None)
        end = T0 + timedelta(hours=1)
        exc = add_excursion(c, shipment, "LOG-1", start=T0, end=end, last_out=T0)
        alerts = [add_alert(c, shipment, triggered_at=T0, rule_key=k) for k in ("a", "b")]
    return {"shipment": shipment, "excursion": exc, "alert": alerts[0], "other_alert": alerts[1]}


def test_the_engine_may_supersede_and_link_an_excursion_once(
    conn: psycopg.Connection[dict[str, Any]], excursion: dict[str, int]
) -> None:
    exc, alert = excursion["excursion"], excursion["alert"]
    # What the rules engine does (db/queries/rules.py SUPERSEDE_EXCURSION, LINK_EXCURSION).
    conn.execute("UPDATE excursions SET alert_id = %s WHERE excursion_id = %s", (alert, exc))
    conn.execute(
        "UPDATE excursions SET superseded_at = now(), superseded_reason = 'late data'"
        " WHERE excursion_id = %s",
        (exc,),
    )
    before = conn.execute("SELECT * FROM excursions WHERE excursion_id = %s", (exc,)).fetchone()
    for statement, why in (
        ("UPDATE excursions SET superseded_at = NULL", "set once"),
        ("UPDATE excursions SET superseded_at = now() + interval '1 day'", "set once"),
        ("UPDATE excursions SET superseded_reason = 'nothing happened'", "set once"),
        ("UPDATE excursions SET alert_id = NULL", "set once"),
        (f"UPDATE excursions SET alert_id = {excursion['other_alert']}", "set once"),
        ("UPDATE excursions SET max_c = 7.9", "permission denied"),  # column privilege
        ("DELETE FROM excursions", "permission denied"),
        ("TRUNCATE excursions", "permission denied"),
        ("DELETE FROM alerts", "set once"),  # its ON DELETE SET NULL would unlink the excursion
        # Its ON DELETE CASCADE would delete it; and since 0011 shipments are cancelled, never
        # deleted, so the services' role may not even try.
        ("DELETE FROM shipments", "permission denied"),
    ):
        with pytest.raises(Refused, match=why):
            conn.execute(statement)
    after = conn.execute("SELECT * FROM excursions WHERE excursion_id = %s", (exc,)).fetchone()
    assert after == before


def test_not_even_the_owner_may_edit_or_delete_an_excursion(
    conn: psycopg.Connection[dict[str, Any]], excursion: dict[str, int], owner_dsn: str
) -> None:
    with psycopg.connect(owner_dsn, autocommit=True) as owner:
        for statement, why in (
            ("UPDATE excursions SET max_c = 7.9", "only superseded_at"),
            ("UPDATE excursions SET degree_minutes = 0, alert_id = NULL", "only superseded_at"),
            ("DELETE FROM excursions", "append-only"),
            ("TRUNCATE excursions", "append-only"),
        ):
            with pytest.raises(Refused, match=why):
                owner.execute(statement)
    assert _count(conn, "SELECT count(*) FROM excursions WHERE max_c = 9.6") == 1


# --- the audit trail's actor ----------------------------------------------------------------


def _last_entry(conn: psycopg.Connection[dict[str, Any]]) -> dict[str, Any]:
    row = conn.execute(
        "SELECT actor, actor_role, action, entity, reason, source FROM audit_log"
        " ORDER BY seq DESC LIMIT 1"
    ).fetchone()
    assert row is not None
    return row


def test_a_proven_caller_is_the_actor_whatever_the_connection_claims(
    conn: psycopg.Connection[dict[str, Any]], db_dsn: str
) -> None:
    user_id = add_user(db_dsn, "olga.ops", "operator")
    secret = issue_token(db_dsn, user_id)
    principal = accounts.principal_for_secret(conn, secret)
    assert principal is not None
    token_id = _count(conn, "SELECT max(token_id) FROM auth_tokens")

    with audit_context(conn, principal.context("10.1.2.3", "new logger")):
        add_device(conn, "LOG-1")
    entry = _last_entry(conn)
    assert (entry["actor"], entry["actor_role"], entry["reason"]) == (
        "olga.ops",
        "operator",
        "new logger",
    )
    assert entry["source"] == f"10.1.2.3 [db:coldchain@127.0.0.1, verified by token {token_id}]"

    # Her token, someone else's name: the database records her, not the claim.
    forged = AuditContext("adam.admin", "admin", "10.1.2.3", "", credential=secret)
    with audit_context(conn, forged):
        add_device(conn, "LOG-2")
    assert (_last_entry(conn)["actor"], _last_entry(conn)["actor_role"]) == (
        "olga.ops",
        "operator",
    )

    # Cleared with the context: the next change on this (pooled) connection is not hers.
    add_device(conn, "LOG-3")
    assert _last_entry(conn)["actor"] == "db:coldchain"
    with contextlib.closing(stored_entries(conn)) as entries:
        assert verify_chain(entries).ok  # entries written by the database's functions chain


def test_an_api_key_is_proven_too_and_a_dead_credential_is_refused(
    conn: psycopg.Connection[dict[str, Any]], db_dsn: str
) -> None:
    key = add_api_key(db_dsn, "erp-sync", "operator")
    principal = accounts.principal_for_secret(conn, key)
    assert principal is not None
    with audit_context(conn, principal.context(None)):
        add_device(conn, "LOG-1")
    entry = _last_entry(conn)
    assert (entry["actor"], entry["actor_role"]) == ("apikey:erp-sync", "operator")
    assert "verified by api key" in entry["source"]

    user_id = add_user(db_dsn, "rex.revoked", "admin")
    revoked = issue_token(db_dsn, user_id)
    conn.execute("UPDATE auth_tokens SET revoked_at = now() WHERE user_id = %s", (user_id,))
    n = _count(conn, "SELECT count(*) FROM audit_log")
    for credential in (revoked, "not-a-token", key + "x"):
        with (
            pytest.raises(psycopg.errors.InvalidAuthorizationSpecification),
            audit_context(conn, AuditContext("rex.revoked", "admin", credential=credential)),
        ):
            add_device(conn, "LOG-X")
    assert _count(conn, "SELECT count(*) FROM audit_log") == n
    assert _count(conn, "SELECT count(*) FROM devices WHERE device_id = 'LOG-X'") == 0


def test_a_proven_principal_stays_with_its_own_session(
    conn: psycopg.Connection[dict[str, Any]], db_dsn: str
) -> None:
    secret = issue_token(db_dsn, add_user(db_dsn, "olga.ops", "operator"))
    conn.execute("SELECT audit_authenticate(%s)", (secret,))  # and never cleared here
    with psycopg.connect(db_dsn, autocommit=True, row_factory=dict_row) as other:
        add_device(other, "LOG-9")
        assert _last_entry(other)["actor"] == "db:coldchain"
    add_device(conn, "LOG-1")
    assert _last_entry(conn)["actor"] == "olga.ops"


def test_a_principal_table_of_the_services_own_making_is_not_trusted(
    conn: psycopg.Connection[dict[str, Any]],
) -> None:
    conn.execute(
        "CREATE TEMP TABLE audit_principal (actor text, actor_role text, credential text,"
        " authenticated_at timestamptz)"
    )
    conn.execute("INSERT INTO audit_principal VALUES ('adam.admin', 'admin', 'token 1', now())")
    with (
        pytest.raises(Refused, match="not made by the database"),
        audit_context(conn, AuditContext("mallory", credential="whatever")),
    ):
        pass
    add_device(conn, "LOG-1")  # a change without presenting anything: the forged row is ignored
    entry = _last_entry(conn)
    assert (entry["actor"], entry["actor_role"]) == ("db:coldchain", None)


def test_a_token_minted_through_the_services_role_shows_in_the_trail(
    conn: psycopg.Connection[dict[str, Any]], db_dsn: str
) -> None:
    """What the database cannot stop: the services' role issues tokens (logins), so someone
    holding it can mint one for a person and then act as them. The minting is in the trail,
    with where it came from, and every entry made with it names the token."""
    admin = add_user(db_dsn, "adam.admin", "admin")
    issue_token(db_dsn, admin)  # a direct INSERT, as an attacker would
    entry = conn.execute(
        "SELECT actor, action, after->>'user_id' AS user_id, after->>'token_hash' AS hash, source"
        " FROM audit_log WHERE entity = 'auth_tokens'"
    ).fetchone()
    assert entry is not None
    assert (entry["actor"], entry["action"], entry["user_id"]) == (
        "db:coldchain",
        "insert",
        str(admin),
    )
    assert entry["hash"].startswith("redacted:")
    assert entry["source"].endswith("[db:coldchain@127.0.0.1]")


def test_an_audited_api_change_records_the_proven_caller(
    client: TestClient,  # noqa: F811
    db_dsn: str,
    scopes: dict[str, Any],  # noqa: F811
    people: dict[str, Person],
) -> None:
    r = client.put(
        f"/api/v1/shipments/{scopes['shipment']}/rules",
        params={"reason": WHY},
        json={"temperature": {"alarm_delay_min": 5}},
    )
    assert r.status_code == 200, r.text
    with psycopg.connect(db_dsn, row_factory=dict_row) as conn:
        entry = conn.execute(
            "SELECT actor, actor_role, reason, source FROM audit_log"
            " WHERE entity = 'rule_definitions'"
        ).fetchone()
        token_id = _count(
            conn, "SELECT token_id FROM auth_tokens WHERE user_id = %s", people["admin"].user_id
        )
    assert entry is not None
    assert (entry["actor"], entry["actor_role"], entry["reason"]) == (
        people["admin"].username,
        "admin",
        WHY,
    )
    assert entry["source"].endswith(f", verified by token {token_id}]")
