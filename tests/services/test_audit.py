"""services.audit against the real database: QA and administrators read and verify the trail,
the others are refused; the verdict counts every stored entry."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg
import pytest

from coldchain.errors import PermissionDeniedError
from security.roles import Role
from services import accounts, audit
from services.caller import Caller
from tests.fixtures.auth import PEOPLE

pytestmark = pytest.mark.integration

CallerOf = Callable[[Role], Caller]


def _count(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute("SELECT count(*) AS n FROM audit_log").fetchone()
    assert row is not None
    return int(row["n"])


@pytest.mark.parametrize("role", ["qa", "admin"])
def test_qa_and_admins_read_and_verify_the_trail(
    conn: psycopg.Connection[Any], caller: CallerOf, role: Role
) -> None:
    accounts.create_api_key(conn, caller("admin"), name="wms", role="viewer", expires_at=None)
    reader = caller(role)
    rows, total = audit.list_entries(conn, reader, entity="api_keys")
    assert total == 1 and [(r["entity"], r["actor"]) for r in rows] == [
        ("api_keys", PEOPLE["admin"][0])
    ]
    everything, total = audit.list_entries(conn, reader, limit=2)
    assert total == _count(conn) and len(everything) == min(2, total)
    assert [r["seq"] for r in everything] == sorted((r["seq"] for r in everything), reverse=True)
    verdict = audit.verify(conn, reader)
    assert verdict.ok and verdict.entries == _count(conn)


@pytest.mark.parametrize("role", ["viewer", "operator"])
def test_the_other_roles_may_not_read_the_trail(
    conn: psycopg.Connection[Any], caller: CallerOf, role: Role
) -> None:
    with pytest.raises(PermissionDeniedError, match=r"'audit\.read' permission"):
        audit.list_entries(conn, caller(role))
    with pytest.raises(PermissionDeniedError):
        audit.verify(conn, caller(role))


def test_verify_names_the_entry_a_superuser_edited(
    conn: psycopg.Connection[Any], superuser_dsn: str
) -> None:
    accounts.create_api_key(conn, Caller.console(), name="wms", role="viewer", expires_at=None)
    with psycopg.connect(superuser_dsn, autocommit=True) as su:
        su.execute("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only")
        su.execute("UPDATE audit_log SET reason = 'nothing to see' WHERE entity = 'api_keys'")
        su.execute("ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only")
    verdict = audit.verify(conn, Caller.console())
    assert not verdict.ok and verdict.problem is not None and "edited" in verdict.problem
