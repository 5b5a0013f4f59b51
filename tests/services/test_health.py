"""services.health: a real database answers; a database that is not there gives False quickly."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
from psycopg import Connection
from psycopg.rows import DictRow, dict_row
from psycopg_pool import ConnectionPool

from launcher.localstack import free_port
from services.health import database_answers

pytestmark = pytest.mark.integration


def _pool(dsn: str) -> ConnectionPool[Any]:
    return ConnectionPool(
        dsn,
        connection_class=Connection[DictRow],
        kwargs={"autocommit": True, "row_factory": dict_row},
        min_size=1,
        open=True,
        reconnect_timeout=5,
    )


def test_the_database_answers(db_dsn: str) -> None:
    with _pool(db_dsn) as pool:
        assert database_answers(pool, timeout_s=5) is True


def test_no_database_is_false_within_the_timeout(db_dsn: str) -> None:
    nowhere = re.sub(r":\d+/", f":{free_port()}/", db_dsn)
    assert nowhere != db_dsn
    with _pool(nowhere) as pool:
        started = time.monotonic()
        assert database_answers(pool, timeout_s=0.5) is False
        assert time.monotonic() - started < 3
