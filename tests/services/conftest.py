"""Callers and a connection for the service tests, against this test's real database."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from psycopg.rows import dict_row

from db.types import Conn
from security.accounts import principal_for_secret
from security.roles import Role
from services.caller import Caller
from tests.fixtures.auth import Person


@pytest.fixture
def conn(db_dsn: str) -> Iterator[Conn]:
    """A connection as the services get one (dict rows, autocommit like the web pool's)."""
    with psycopg.connect(
        db_dsn, row_factory=dict_row, autocommit=True, options="-c TimeZone=UTC"
    ) as c:
        yield c


@pytest.fixture
def callers(conn: Conn, people: dict[Role, Person]) -> dict[Role, Caller]:
    """One caller per role, authenticated from their live token as the API does."""
    out: dict[Role, Caller] = {}
    for role, person in people.items():
        principal = principal_for_secret(conn, person.token)
        assert principal is not None
        out[role] = Caller.of(principal, "203.0.113.7")
    return out
