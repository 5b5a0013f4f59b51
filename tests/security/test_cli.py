"""The security subcommands of `coldchain`, against the test database."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from typer.testing import CliRunner

from coldchain.settings import Settings
from launcher.cli import app
from security import passwords
from tests.fixtures.web import add_device

pytestmark = pytest.mark.integration


@pytest.fixture
def env(settings: Settings, tmp_path: Path) -> dict[str, str]:
    db = settings.db
    return {
        "COLDCHAIN_DB__PORT": str(db.port),
        "COLDCHAIN_DB__NAME": db.name,
        "COLDCHAIN_DB__USER": db.user,
        "COLDCHAIN_DB__PASSWORD": db.password.get_secret_value(),
        "COLDCHAIN_MQTT__TOPIC_ROOT": "acme/coldchain/v1",
        "COLDCHAIN_STACK__DATA_DIR": str(tmp_path / "stack"),
        "COLDCHAIN_LOG_LEVEL": "WARNING",
    }


def run(env: dict[str, str], *args: str, stdin: str | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), env=env, input=stdin)
    return result.exit_code, result.output


def test_users_add_list_and_revoke(env: dict[str, str], db_dsn: str) -> None:
    code, out = run(env, "users", "add", "root", "--role", "admin", "--name", "First Admin")
    assert code == 0, out
    assert "user root (admin, First Admin) created" in out
    password = out.split("password: ")[1].split()[0]
    assert len(password) == 23
    code, out = run(
        env, "users", "add", "qa1", "--role", "qa", "--name", "Q A", "--password-stdin",
        stdin="a-long-enough-passphrase\n",
    )  # fmt: skip
    assert code == 0 and "password:" not in out
    assert run(env, "users", "add", "qa1", "--role", "qa", "--name", "again")[0] == 1
    code, out = run(env, "users", "add", "xy", "--role", "king", "--name", "X")
    assert code == 1 and "role" in out
    code, out = run(env, "users", "list")
    assert "root" in out and "qa1" in out and "active" in out
    code, out = run(env, "users", "revoke", "qa1", "--reason", "left the company")
    assert code == 0
    with psycopg.connect(db_dsn) as conn:
        audit = conn.execute(
            "SELECT actor, reason, action FROM audit_log WHERE entity = 'app_users' ORDER BY seq"
        ).fetchall()
    assert audit[-1][1:] == ("left the company", "update") and audit[-1][0].startswith("cli:")
    assert run(env, "users", "revoke", "qa1")[0] == 1  # not active any more


def test_users_ack_pin_sets_and_clears_a_pin(env: dict[str, str], db_dsn: str) -> None:
    assert run(env, "users", "add", "ana", "--role", "operator", "--name", "Ana")[0] == 0
    code, out = run(env, "users", "ack-pin", "ana", stdin="482916\n")
    assert code == 0, out
    assert run(env, "users", "ack-pin", "ana", stdin="12\n")[0] == 1  # 6 to 12 digits
    assert run(env, "users", "ack-pin", "nobody", stdin="482916\n")[0] == 1
    with psycopg.connect(db_dsn) as conn:
        (stored,) = conn.execute(
            "SELECT ack_pin_hash FROM app_users WHERE username = 'ana'"
        ).fetchone() or (None,)
    assert stored is not None and passwords.verify_password(stored, "482916")
    assert run(env, "users", "ack-pin", "ana", "--clear")[0] == 0
    with psycopg.connect(db_dsn) as conn:
        assert conn.execute(
            "SELECT ack_pin_hash FROM app_users WHERE username = 'ana'"
        ).fetchone() == (None,)


def test_apikeys_create_and_revoke(env: dict[str, str]) -> None:
    code, out = run(env, "apikeys", "create", "wms", "--role", "viewer", "--days", "30")
    assert code == 0, out
    assert out.split("key: ")[1].startswith("cck_")
    assert run(env, "apikeys", "create", "wms")[0] == 1  # names are never reused
    assert run(env, "apikeys", "create", "signer", "--role", "qa")[0] == 1
    assert run(env, "apikeys", "revoke", "wms")[0] == 0
    assert run(env, "apikeys", "revoke", "wms")[0] == 1


def test_devices_provision_writes_the_broker_files(
    env: dict[str, str], db_dsn: str, tmp_path: Path
) -> None:
    with psycopg.connect(db_dsn) as conn:
        add_device(conn, "LOG-1")
    code, out = run(env, "devices", "provision", "--ingest-account")
    assert code == 0, out
    folder = tmp_path / "stack" / "mosquitto"
    assert "1 new password(s)" in out and "service account coldchain-ingest" in out
    assert "pattern write acme/coldchain/v1/devices/%u/telemetry" in (folder / "acl").read_text()
    assert (folder / "passwd").read_text().startswith("LOG-1:$7$")
    assert list(folder.glob("device-credentials-*.csv"))
    code, out = run(env, "devices", "provision")
    assert "0 new password(s)" in out


def test_audit_verify_exits_1_and_names_the_broken_entry(
    env: dict[str, str], db_dsn: str, superuser_dsn: str
) -> None:
    with psycopg.connect(db_dsn) as conn:
        for i in range(3):
            add_device(conn, f"LOG-{i}")
    code, out = run(env, "audit", "verify")
    assert code == 0 and "intact: 3 entries" in out
    with psycopg.connect(superuser_dsn, autocommit=True) as su:
        su.execute("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only")
        su.execute("UPDATE audit_log SET actor = 'someone else' WHERE seq = 2")
    code, out = run(env, "audit", "verify")
    assert code == 1 and "BROKEN at entry seq 2" in out and "edited" in out
