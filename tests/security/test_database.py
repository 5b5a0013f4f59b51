"""The audit trail in the real database: what it records, what the app role may not do, and
what `audit verify` finds after a superuser edits a row behind the application's back."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import secrets
from collections.abc import Iterator, Mapping

import psycopg
import pytest
from psycopg import sql
from psycopg.rows import dict_row
from typer.testing import CliRunner

from db.queries import security as q
from launcher.cli import app
from launcher.localstack import PostgresCluster
from security import accounts
from security.audit import AuditContext, audit_context, stored_entries, verify_chain
from tests.fixtures.web import add_device, add_product

pytestmark = pytest.mark.integration

CTX = AuditContext("adam.admin", "admin", "10.1.2.3", "new logger for lane 4")


def _verify(dsn: str):  # -> ChainVerdict
    with (
        psycopg.connect(dsn, autocommit=True, row_factory=dict_row) as conn,
        contextlib.closing(stored_entries(conn)) as entries,
    ):
        return verify_chain(entries)


def test_changes_are_recorded_with_who_what_when_why_and_where(db_dsn: str) -> None:
    with psycopg.connect(db_dsn, autocommit=True, row_factory=dict_row) as conn:
        with audit_context(conn, CTX):
            add_device(conn, "LOG-9")
            conn.execute("UPDATE devices SET interval_s = 120 WHERE device_id = 'LOG-9'")
            conn.execute("UPDATE devices SET interval_s = 120 WHERE device_id = 'LOG-9'")  # no-op
        add_product(conn)  # without a context: the database role is recorded
        rows = conn.execute(
            "SELECT seq, actor, actor_role, action, entity, entity_id, before, after, reason,"
            " source, at FROM audit_log ORDER BY seq"
        ).fetchall()
        # the context was cleared: a later change is not attributed to the admin
        assert conn.execute("SELECT current_setting('coldchain.actor', true) AS a").fetchone() == {
            "a": ""
        }
    assert [(r["action"], r["entity"], r["entity_id"]) for r in rows] == [
        ("insert", "devices", "LOG-9"),
        ("update", "devices", "LOG-9"),
        ("insert", "products", rows[2]["entity_id"]),
    ]
    insert, update, product = rows
    assert (insert["actor"], insert["actor_role"], insert["reason"], insert["source"]) == (
        "adam.admin",
        "admin",
        "new logger for lane 4",
        # what was claimed, then what the database saw: no credential, so only a claim
        "10.1.2.3 [db:coldchain@127.0.0.1, actor not verified]",
    )
    assert insert["before"] is None and insert["after"]["interval_s"] == 60
    assert (update["before"]["interval_s"], update["after"]["interval_s"]) == (60, 120)
    assert product["actor"] == "db:coldchain" and product["actor_role"] is None
    assert product["source"].endswith(" [db:coldchain@127.0.0.1]")
    assert [r["seq"] for r in rows] == [1, 2, 3]
    assert rows[0]["at"] <= rows[1]["at"] <= rows[2]["at"]
    assert _verify(db_dsn).ok


def test_secrets_never_enter_the_trail(db_dsn: str) -> None:
    with psycopg.connect(db_dsn, autocommit=True, row_factory=dict_row) as conn:
        row = accounts.create_user(
            conn,
            username="ana.ruiz",
            full_name="Ana Ruiz",
            role="operator",
            password="correct-horse-battery-staple",
            min_length=12,
            ctx=CTX,
        )
        stored = conn.execute(
            "SELECT password_hash FROM app_users WHERE user_id = %s", (row["user_id"],)
        ).fetchone()
        entry = conn.execute("SELECT after FROM audit_log WHERE entity = 'app_users'").fetchone()
    assert stored is not None and entry is not None
    after = entry["after"]
    assert after["username"] == "ana.ruiz"
    assert after["password_hash"].startswith("redacted:")
    assert stored["password_hash"][:20] not in str(after)


#: What the services' role may not do to the trail and the signed records.
UNPROTECTING_STATEMENTS = [
    "UPDATE audit_log SET actor = 'mallory'",
    "DELETE FROM audit_log",
    "TRUNCATE audit_log",
    "ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only",
    "DROP TRIGGER audit_log_append_only ON audit_log",
    "DROP TABLE audit_log",
    "ALTER TABLE devices DISABLE TRIGGER devices_audit",
    "SET session_replication_role = replica",
    "UPDATE dispositions SET reason = 'x'",
    "DELETE FROM report_snapshots",
    "GRANT UPDATE ON audit_log TO coldchain; UPDATE audit_log SET actor = 'm'",
    # Entries come from the database only, their actor from what the session proved (0008).
    "INSERT INTO audit_log (actor, action, entity, at, seq, prev_hash, hash)"
    " VALUES ('forger', 'note', 'x', now(), 0, '', '')",
    # a principal of one's own making: the database's functions do not trust it
    "CREATE TEMP TABLE audit_principal (actor text, actor_role text, credential text,"
    " authenticated_at timestamptz); INSERT INTO audit_principal VALUES ('adam.admin', 'admin',"
    " 'token 1', now()); SELECT audit_authenticate(NULL)",
    "SELECT * FROM audit_actor('admin', 'admin', NULL)",
    "ALTER FUNCTION audit_row_change() SECURITY INVOKER",
    # Readings and excursions are evidence (0008).
    "UPDATE readings SET temp_c = 5",
    "DELETE FROM readings",
    "TRUNCATE readings",
    "UPDATE excursions SET max_c = 5",
    "DELETE FROM excursions",
    "TRUNCATE excursions",
    "ALTER TABLE excursions DISABLE TRIGGER excursions_one_way",
]


@pytest.mark.parametrize("statement", UNPROTECTING_STATEMENTS)
def test_the_app_role_cannot_change_or_unprotect_the_trail(db_dsn: str, statement: str) -> None:
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        add_device(conn, "LOG-9")  # one entry to aim at
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(statement)
        (n,) = conn.execute("SELECT count(*) FROM audit_log").fetchone() or (0,)
    assert n == 1


def test_the_owner_cannot_edit_it_either_without_disabling_the_trigger(owner_dsn: str) -> None:
    with psycopg.connect(owner_dsn, autocommit=True) as conn:
        add_device(conn, "LOG-9")
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
            conn.execute("UPDATE audit_log SET actor = 'mallory'")
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
            conn.execute("DELETE FROM audit_log")


def test_a_temporary_table_cannot_capture_the_entries(db_dsn: str) -> None:
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        conn.execute(
            "CREATE TEMP TABLE audit_log (LIKE public.audit_log INCLUDING DEFAULTS)"
        )  # an attempt to shadow the real table for this session
        add_device(conn, "LOG-9")
        (shadowed,) = conn.execute("SELECT count(*) FROM pg_temp.audit_log").fetchone() or (0,)
        (real,) = conn.execute("SELECT count(*) FROM public.audit_log").fetchone() or (0,)
    assert (shadowed, real) == (0, 1)


def test_appended_entries_are_numbered_and_linked_by_the_database(db_dsn: str) -> None:
    """The services add non-row entries (logins…) only through ``audit_append``: numbers, time
    and hashes are the chain trigger's, and the actor named is recorded as a claim."""
    with psycopg.connect(db_dsn, autocommit=True, row_factory=dict_row) as conn:
        add_device(conn, "LOG-9")
        appended = q.append_audit(
            conn=conn, actor="forger", actor_role="admin", action="note", entity="x",
            entity_id=None, source="10.9.9.9",
        )  # fmt: skip
        row = conn.execute(
            "SELECT seq, at, prev_hash, hash, actor, source FROM audit_log WHERE action = 'note'"
        ).fetchone()
    assert row is not None and appended["seq"] == row["seq"] == 2
    assert row["at"].year > 2000 and len(row["hash"]) == 64
    assert (row["actor"], row["source"]) == (
        "forger",
        "10.9.9.9 [db:coldchain@127.0.0.1, actor not verified]",
    )
    assert _verify(db_dsn).ok


def test_verify_names_the_entry_a_superuser_edited(db_dsn: str, superuser_dsn: str) -> None:
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        for i in range(5):
            add_device(conn, f"LOG-{i}")
    assert _verify(db_dsn).ok
    # Behind the application's back: a superuser switches the protection off and edits entry 3.
    with psycopg.connect(superuser_dsn, autocommit=True) as su:
        su.execute("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only")
        su.execute(
            "UPDATE audit_log SET after = jsonb_set(after, '{interval_s}', '5') WHERE seq = 3"
        )
        su.execute("ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only")
    verdict = _verify(db_dsn)
    assert not verdict.ok and verdict.broken_seq == 3
    assert "edited" in (verdict.problem or "")


def test_verify_names_the_entry_after_a_deleted_one(db_dsn: str, superuser_dsn: str) -> None:
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        for i in range(4):
            add_device(conn, f"LOG-{i}")
    with psycopg.connect(superuser_dsn, autocommit=True) as su:
        su.execute("SET session_replication_role = replica")  # the other way to silence triggers
        su.execute("DELETE FROM audit_log WHERE seq = 2")
    verdict = _verify(db_dsn)
    assert not verdict.ok and verdict.broken_seq == 3 and "missing" in (verdict.problem or "")


# --- `coldchain db migrate --ensure-app-role`: the services' role where `coldchain up` is not ---


@pytest.fixture
def bare_database(pg_cluster: PostgresCluster) -> Iterator[tuple[str, str]]:
    """An empty database owned by the superuser, as the TimescaleDB image makes POSTGRES_DB,
    and a role name nobody uses yet; both dropped afterwards."""
    token = secrets.token_hex(3)
    name, role = f"t_compose_{token}", f"compose_app_{token}"
    with psycopg.connect(pg_cluster.superuser_dsn(), autocommit=True) as su:
        su.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield name, role
    with psycopg.connect(pg_cluster.superuser_dsn(), autocommit=True) as su:
        su.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        su.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


def _scram_matches(verifier: str, password: str) -> bool:
    """Whether PostgreSQL's SCRAM-SHA-256 verifier is that of ``password`` (RFC 5802): this
    cluster trusts loopback logins, so the password is checked here instead."""
    iterations_salt, keys = verifier.removeprefix("SCRAM-SHA-256$").split("$")
    iterations, salt = iterations_salt.split(":")
    stored_key = base64.b64decode(keys.split(":")[0])
    salted = hashlib.pbkdf2_hmac(
        "sha256", password.encode(), base64.b64decode(salt), int(iterations)
    )
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    return hmac.compare_digest(hashlib.sha256(client_key).digest(), stored_key)


def _migrate_ensuring_the_app_role(env: Mapping[str, str | None]) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["db", "migrate", "--ensure-app-role"], env=env)
    return result.exit_code, result.output


def test_migrate_ensure_app_role_makes_a_role_that_cannot_touch_the_trail(
    pg_cluster: PostgresCluster, bare_database: tuple[str, str]
) -> None:
    """What docker-compose.yml's migrate service does: the image's superuser migrates and
    creates the services' role; that role then cannot change or unprotect the trail."""
    name, role = bare_database
    env = {
        "COLDCHAIN_DB__PORT": str(pg_cluster.port),
        "COLDCHAIN_DB__NAME": name,
        "COLDCHAIN_DB__USER": role,
        "COLDCHAIN_DB__PASSWORD": "app-password-1",
        "COLDCHAIN_DB__OWNER_USER": "postgres",
        "COLDCHAIN_DB__OWNER_PASSWORD": "trusted-on-loopback",
        "COLDCHAIN_LOG_LEVEL": "WARNING",
    }
    code, out = _migrate_ensuring_the_app_role(env)
    assert code == 0, out
    assert f"role {role}: login, member of coldchain_app" in out
    assert "applied 0 migration(s)" not in out

    def stored_role() -> dict[str, object]:
        with psycopg.connect(pg_cluster.superuser_dsn(name), row_factory=dict_row) as su:
            row = su.execute(
                "SELECT rolsuper, rolcreaterole, rolcreatedb, rolcanlogin, rolpassword,"
                " pg_has_role(rolname, 'coldchain_app', 'MEMBER') AS member,"
                " (SELECT count(*) FROM pg_class WHERE relowner = r.oid) AS owns"
                " FROM pg_authid r WHERE rolname = %s",
                (role,),
            ).fetchone()
        assert row is not None
        return row

    row = stored_role()
    assert (row["rolsuper"], row["rolcreaterole"], row["rolcreatedb"]) == (False, False, False)
    assert (row["rolcanlogin"], row["member"], row["owns"]) == (True, True, 0)
    assert _scram_matches(str(row["rolpassword"]), "app-password-1")

    app_dsn = f"postgresql://{role}:app-password-1@127.0.0.1:{pg_cluster.port}/{name}"
    with psycopg.connect(app_dsn, autocommit=True) as conn:
        add_device(conn, "LOG-9")  # the services' work goes on, and is audited
        for statement in UNPROTECTING_STATEMENTS:
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)
        (n,) = conn.execute("SELECT count(*) FROM audit_log").fetchone() or (0,)
    assert n == 1
    assert _verify(app_dsn).ok

    # Run again with a new password (compose's migrate runs at every `up`): it is updated.
    code, out = _migrate_ensuring_the_app_role({**env, "COLDCHAIN_DB__PASSWORD": "app-password-2"})
    assert code == 0 and "applied 0 migration(s)" in out, out
    row = stored_role()
    assert _scram_matches(str(row["rolpassword"]), "app-password-2") and not row["rolsuper"]


def test_ensure_app_role_needs_a_separate_owner() -> None:
    for owner in (None, "coldchain"):  # None: unset
        code, out = _migrate_ensuring_the_app_role(
            {"COLDCHAIN_DB__USER": "coldchain", "COLDCHAIN_DB__OWNER_USER": owner}
        )
        assert code == 2 and "COLDCHAIN_DB__OWNER_USER" in out, out
