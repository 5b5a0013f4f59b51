"""A web-process connection to the test's migrated database, and callers of every role."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from psycopg.rows import DictRow, dict_row

from db.types import Conn
from security.accounts import principal_for_secret
from security.roles import Role
from services.caller import Caller
from tests.fixtures.auth import Person

#: Where the callers call from (the audit trail records it).
SOURCE = "203.0.113.7"


@pytest.fixture
def conn(db_dsn: str) -> Iterator[Conn]:
    """A connection as the web pool opens them (autocommit, dict rows, UTC)."""
    with psycopg.Connection[DictRow].connect(
        db_dsn, autocommit=True, row_factory=dict_row, options="-c TimeZone=UTC"
    ) as c:
        yield c


@pytest.fixture
def caller(conn: Conn, people: dict[Role, Person]) -> Callable[[Role], Caller]:
    """The person of ``role``, authenticated by their token as the API does it."""

    def of(role: Role) -> Caller:
        principal = principal_for_secret(conn, people[role].token, kinds=("api",))
        assert principal is not None
        return Caller.of(principal, SOURCE)

    return of


@pytest.fixture
def callers(caller: Callable[[Role], Caller], people: dict[Role, Person]) -> dict[Role, Caller]:
    """One caller per role, authenticated from their live token as the API does."""
    return {role: caller(role) for role in people}


def audit_rows(conn: Conn, entity: str) -> list[dict[str, Any]]:
    """The audit entries of one table, oldest first."""
    return conn.execute(
        "SELECT actor, actor_role, action, entity_id, before, after, reason, source"
        " FROM audit_log WHERE entity = %s ORDER BY seq",
        (entity,),
    ).fetchall()
