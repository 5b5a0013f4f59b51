"""A connection to this test's migrated database and callers of every role, for the services.

A caller here is what the API or the dashboard builds (:meth:`services.caller.Caller.of`): a
person of the role with a live token, which the database checks when they change something, so
the audit trail names them as verified.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from security.accounts import principal_for_secret
from security.roles import Role
from services.caller import Caller
from tests.fixtures.auth import Person

SOURCE = "10.9.8.7"


@pytest.fixture
def conn(db_dsn: str) -> Iterator[psycopg.Connection[Any]]:
    """An autocommit, dict-row connection in UTC, as the web pool and the CLI lend them."""
    with psycopg.connect(
        db_dsn, autocommit=True, row_factory=dict_row, options="-c TimeZone=UTC"
    ) as c:
        yield c


@pytest.fixture
def caller(conn: psycopg.Connection[Any], people: dict[Role, Person]) -> Callable[[Role], Caller]:
    """``caller(role)``: the person of that role, authenticated by their token, from SOURCE."""

    def make(role: Role) -> Caller:
        principal = principal_for_secret(conn, people[role].token)
        assert principal is not None
        return Caller.of(principal, SOURCE)

    return make


def audit_rows(conn: psycopg.Connection[Any], entity: str) -> list[dict[str, Any]]:
    """The audit entries of one table, oldest first."""
    return conn.execute(
        "SELECT actor, actor_role, action, entity_id, before, after, reason, source"
        " FROM audit_log WHERE entity = %s ORDER BY seq",
        (entity,),
    ).fetchall()
