"""The change log's cursors pass over no commit, whatever the order of commits (coldchain.changes).

Against the real database: a writer that drew the lower change id and commits last (the
ingester's two writers do that), its change taken and its pair judged; two writers committing
and rolling back at random while rounds run, every committed change taken exactly once; the
upgrade of a database whose cursors are mid-way, nothing lost or repeated. The position rule
itself is tested with numbers.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool
from yoyo import get_backend, read_migrations

import alerts.rounds
from alerts.rounds import RulesEngine
from coldchain.changes import Position, first_after, next_position
from coldchain.settings import Settings
from coldchain.telemetry import Reading
from db.migrate import MIGRATIONS_DIR
from db.queries import automation as automation_q
from db.queries import partitions as pq
from launcher.localstack import PostgresCluster
from services import automation
from tests.alerts.test_rules_service import current_excursions
from tests.fixtures.data import seed_shipment
from tests.fixtures.engines import changes_behind
from tests.fixtures.services import APP_PASSWORD, APP_USER, OWNER_PASSWORD, OWNER_USER
from tests.fixtures.web import ingest, ingest_in

T0 = datetime(2026, 11, 20, 3, 0, tzinfo=UTC)
MIGRATION = "0022_change_log_horizon"


def flat(device: str, minutes: range, temp_c: float) -> list[Reading]:
    return [Reading(device, T0 + timedelta(minutes=m), temp_c) for m in minutes]


# --------------------------------------------------------------------------------------------
# The rule, with numbers
# --------------------------------------------------------------------------------------------


def test_a_full_read_stops_at_its_last_row_and_a_short_one_at_the_horizon() -> None:
    taken = [Position(5, 9), Position(7, 3), Position(7, 4)]
    assert next_position(taken, limit=3, horizon=12) == Position(7, 4)
    assert next_position(taken, limit=4, horizon=12) == Position(12, 0)
    assert next_position([], limit=4, horizon=12) == Position(12, 0)


def test_a_partition_counts_only_the_changes_after_its_cursor() -> None:
    taken = [Position(5, 9), Position(7, 3), Position(7, 4)]
    assert first_after(taken, Position(0, 0)) == 0
    assert first_after(taken, Position(5, 9)) == 1
    assert first_after(taken, Position(7, 3)) == 2
    assert first_after(taken, Position(6, 0)) == 1
    assert first_after(taken, Position(9, 0)) == 3


# --------------------------------------------------------------------------------------------
# A commit out of id order
# --------------------------------------------------------------------------------------------


@pytest.fixture
async def pool(db_dsn: str) -> AsyncIterator[AsyncConnectionPool]:
    async with AsyncConnectionPool(db_dsn, open=False, min_size=1, max_size=4) as p:
        await p.wait()
        yield p


async def test_a_change_committed_after_a_later_one_is_taken_and_its_pair_judged(
    pool: AsyncConnectionPool, settings: Settings, db_dsn: str
) -> None:
    seed_shipment(db_dsn, reference="SLOW", device_id="LOG-SLOW", start=T0)
    seed_shipment(db_dsn, reference="FAST", device_id="LOG-FAST", start=T0)
    rules = RulesEngine(pool, settings, clock=lambda: T0 + timedelta(hours=2))
    await rules.setup()
    hot = flat("LOG-SLOW", range(60), 12.0)  # an hour above 8 °C: one excursion
    # The day's chunk of readings exists before (a writer creating it would hold up the other).
    ingest(db_dsn, flat("LOG-FAST", range(-5, 0), 5.0))
    assert await rules.process_changes() == 1

    with psycopg.connect(db_dsn) as slow:
        ingest_in(slow, hot)  # draws the lower change id and stays open
        ingest(db_dsn, flat("LOG-FAST", range(60), 5.0))  # draws the next one, commits first
        assert scalar(db_dsn, "SELECT count(*) FROM reading_changes") == 2
        first = await rules.process_changes()
        slow.commit()
    second = await rules.process_changes()

    assert first + second == 2  # each writer's change, once
    assert changes_behind(db_dsn) == 0
    found = current_excursions(db_dsn, "LOG-SLOW")
    assert len(found) == 1 and found[0][1] == hot[0].ts  # it starts at the first hot reading
    # It is the in-order answer: every change judged again from the start changes nothing.
    scalar(db_dsn, "UPDATE engine_cursor SET last_xid = '0', last_change_id = 0 RETURNING 1")
    assert await rules.process_changes() == 3
    assert current_excursions(db_dsn, "LOG-SLOW") == found


def scalar(dsn: str, query: str, *args: object) -> Any:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(query, args).fetchone()
    return None if row is None else row[0]
