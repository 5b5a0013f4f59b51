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
import alerts.rows
from alerts.rounds import RulesEngine
from coldchain.changes import Position, first_after, next_position
from coldchain.settings import Settings
from coldchain.telemetry import Reading
from db.migrate import MIGRATIONS_DIR
from db.queries import automation as automation_q
from db.queries import partitions as pq
from db.queries import rules as rules_q
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


# --------------------------------------------------------------------------------------------
# Two writers at random, rounds in between
# --------------------------------------------------------------------------------------------


def writer(dsn: str, seed: int, n: int, committed: list[int]) -> None:
    """``n`` transactions of one change each, held open a random while, a fifth rolled back."""
    rng = random.Random(seed)
    with psycopg.connect(dsn) as conn:
        for k in range(n):
            row = conn.execute(
                "INSERT INTO reading_changes (device_id, ts_min, ts_max, n_readings) "
                "VALUES (%s, %s, %s, 1) RETURNING change_id",
                (f"W{seed}", T0 + timedelta(minutes=k), T0 + timedelta(minutes=k)),
            ).fetchone()
            assert row is not None
            time.sleep(rng.uniform(0, 0.02))
            if rng.random() < 0.2:
                conn.rollback()
            else:
                conn.commit()
                committed.append(int(row[0]))


@pytest.mark.parametrize("consumer", ["rules", "automation"])
@pytest.mark.parametrize("seed", [1, 2])
async def test_every_committed_change_is_taken_exactly_once(
    pool: AsyncConnectionPool,
    settings: Settings,
    db_dsn: str,
    monkeypatch: pytest.MonkeyPatch,
    consumer: str,
    seed: int,
) -> None:
    taken: list[int] = []
    # Small reads, so that both ways a position moves (to a row, to the horizon) are taken.
    if consumer == "rules":
        monkeypatch.setattr(alerts.rounds, "CHANGES_PER_ROUND", 3)
        real_fetch = alerts.rows.fetch

        async def recording(conn: Any, query: str, params: Any, record: type) -> list[Any]:
            rows: list[Any] = await real_fetch(conn, query, params, record)
            if query == rules_q.PENDING_CHANGES:
                taken.extend(r.change_id for r in rows)
            return rows

        monkeypatch.setattr(alerts.rounds, "fetch", recording)
        engine = RulesEngine(pool, settings)
        await engine.setup()
        round_: Callable[[], Any] = engine.process_changes
    else:
        monkeypatch.setattr(automation, "CHANGES_PER_ROUND", 3)
        real_pending = automation_q.pending_changes

        def pending(**kw: Any) -> list[Any]:
            rows = real_pending(**kw)
            taken.extend(int(r["change_id"]) for r in rows)
            return rows

        monkeypatch.setattr(automation_q, "pending_changes", pending)
        conn = psycopg.connect(db_dsn, autocommit=True, row_factory=dict_row)

        async def round_() -> int:
            now = datetime.now(UTC)
            return await asyncio.to_thread(automation.process_changes, conn, now=now, gap_factor=2)

    committed: list[int] = []
    writers = [
        threading.Thread(target=writer, args=(db_dsn, seed * 10 + w, 60, committed))
        for w in range(2)
    ]
    for t in writers:
        t.start()
    rng = random.Random(seed)
    while any(t.is_alive() for t in writers):
        await round_()
        await asyncio.sleep(rng.uniform(0, 0.01))
    for t in writers:
        t.join()
    await round_()

    if consumer == "automation":
        conn.close()

    assert len(committed) > 60  # enough of both writers' commits to mean something
    assert sorted(taken) == sorted(committed)  # each committed change, once; no rolled-back one
    prefix = "automation" if consumer == "automation" else "rules/"
    assert scalar(db_dsn, pq.CHANGES_BEHIND.replace("%(prefix)s", "%s"), prefix) == 0


# --------------------------------------------------------------------------------------------
# The upgrade
# --------------------------------------------------------------------------------------------


@pytest.fixture
def bare_db(pg_cluster: PostgresCluster) -> Iterator[str]:
    """A database of this test's own with no migration applied; its owner's DSN."""
    name = f"t_upgrade_{random.randrange(1 << 30)}"
    pg_cluster.ensure_database(
        name, OWNER_USER, OWNER_PASSWORD, app_user=APP_USER, app_password=APP_PASSWORD
    )
    yield f"postgresql://{OWNER_USER}:{OWNER_PASSWORD}@127.0.0.1:{pg_cluster.port}/{name}"
    with psycopg.connect(pg_cluster.superuser_dsn(), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def apply(dsn: str, which: Callable[[str], bool]) -> None:
    backend = get_backend(dsn.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with backend.lock():
            chosen = read_migrations(str(MIGRATIONS_DIR)).filter(lambda m: which(m.id))
            backend.apply_migrations(backend.to_apply(chosen))
    finally:
        backend.connection.close()


def after(conn: psycopg.Connection[Any], name: str) -> list[int]:
    """The change ids a consumer at cursor ``name`` takes now (below the horizon)."""
    cursor = automation_q.lock_cursor(conn=conn, name=name)
    rows = automation_q.pending_changes(
        conn=conn, after=cursor, horizon=automation_q.horizon(conn=conn), limit=1000
    )
    return [int(r["change_id"]) for r in rows]


def test_the_upgrade_keeps_every_cursor_where_it_was_and_loses_no_change(bare_db: str) -> None:
    apply(bare_db, lambda mid: mid < MIGRATION)
    with psycopg.connect(bare_db, autocommit=True) as conn:
        for k in range(10):
            conn.execute(
                "INSERT INTO reading_changes (device_id, ts_min, ts_max, n_readings) "
                "VALUES ('L', %s, %s, 1)",
                (T0 + timedelta(minutes=k), T0 + timedelta(minutes=k)),
            )
        ids = [r[0] for r in conn.execute("SELECT change_id FROM reading_changes ORDER BY 1")]
        positions = {"rules": ids[2], "rules/16/0": ids[4], "rules/16/1": ids[6],
                     "automation": ids[9]}  # fmt: skip
        for name, at in positions.items():
            conn.execute("INSERT INTO engine_cursor (name, last_change_id) VALUES (%s, %s)",
                         (name, at))  # fmt: skip
    # A writer whose transaction began before the upgrade and writes its change after it.
    with psycopg.connect(bare_db) as old:
        old.execute("INSERT INTO devices (device_id) VALUES ('OLD')")  # draws its xid now
        apply(bare_db, lambda mid: True)
        (late,) = old.execute(
            "INSERT INTO reading_changes (device_id, ts_min, ts_max, n_readings) "
            "VALUES ('OLD', now(), now(), 1) RETURNING change_id"
        ).fetchone() or (None,)
        old.commit()

    with psycopg.connect(bare_db, row_factory=dict_row) as conn:
        for name, at in positions.items():
            expected = [i for i in ids if i > at] + [late]
            assert after(conn, name) == expected, name
