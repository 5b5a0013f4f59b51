"""The sink's two statements store the same thing: new readings go in as they come
(INSERT_BATCH), a batch holding a duplicate is merged instead (MERGE_BATCH), and either way the
readings, ``device_state``, the change log and the NOTIFY are what the merge alone gives."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg_pool import AsyncConnectionPool

from coldchain.telemetry import Reading
from ingest.sink import Batch, TimescaleSink
from tests.fixtures.services import OWNER_USER, TEMPLATE_DB, _dsn

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 1, tzinfo=UTC)
DEVICES = ["LOG-A", "LOG-B", "LOG-C"]


class MergeOnly(TimescaleSink):
    """The former sink: every batch merged."""

    async def write(self, batch: Batch) -> int:
        self._insert_first = False
        return await super().write(batch)


def _state(dsn: str) -> dict[str, Any]:
    with psycopg.connect(dsn) as conn:
        return {
            "readings": conn.execute(
                "SELECT device_id, ts, temp_c, rh, lat, lon, battery FROM readings ORDER BY 1, 2"
            ).fetchall(),
            "device_state": conn.execute(
                "SELECT device_id, ts, temp_c, rh, lat, lon, battery, online FROM device_state"
                " ORDER BY 1"
            ).fetchall(),
            "changes": conn.execute(
                "SELECT device_id, ts_min, ts_max, n_readings FROM reading_changes"
                " ORDER BY xid, device_id"  # a batch's rows: one transaction, any order
            ).fetchall(),
        }


@pytest.fixture
def merge_dsn(pg_cluster: Any, db_name: str) -> Iterator[str]:
    """A second fresh database, for the merge-only sink."""
    name = f"{db_name}_m"
    with psycopg.connect(pg_cluster.superuser_dsn(), autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {} OWNER {}").format(
                sql.Identifier(name), sql.Identifier(TEMPLATE_DB), sql.Identifier(OWNER_USER)
            )
        )
    yield _dsn(pg_cluster.port, name)
    with psycopg.connect(pg_cluster.superuser_dsn(), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def _batches(seed: int) -> list[list[Reading]]:
    """Uploads as loggers send them, some re-sent whole or in part, some with a repeat inside."""
    rng = random.Random(seed)
    sent: list[Reading] = []
    batches = []
    for _ in range(12):
        batch: list[Reading] = []
        for device in rng.sample(DEVICES, rng.randint(1, 3)):
            start = rng.randint(0, 300)
            for m in range(start, start + rng.randint(1, 30)):
                batch.append(
                    Reading(device, T0 + timedelta(minutes=m), rng.uniform(2, 9), None,
                            rng.choice([None, 52.0]), rng.choice([None, 4.9]), 0.5)
                )  # fmt: skip
        kind = rng.random()
        if kind < 0.25 and sent:
            batch += rng.sample(sent, min(len(sent), rng.randint(1, 5)))  # re-sent
        elif kind < 0.35 and batch:
            batch.append(batch[0])  # the same reading twice in one upload
        rng.shuffle(batch)
        sent += batch
        batches.append(batch)
    return batches


@pytest.mark.parametrize("seed", range(6))
async def test_the_insert_path_stores_what_the_merge_stores(
    db_dsn: str, merge_dsn: str, seed: int
) -> None:
    counts: dict[str, list[int]] = {}
    for name, dsn, cls in (("both", db_dsn, TimescaleSink), ("merge", merge_dsn, MergeOnly)):
        async with AsyncConnectionPool(dsn, open=False, min_size=1, max_size=1) as pool:
            await pool.wait()
            sink = cls(pool)
            counts[name] = [await sink.write(Batch.of(b)) for b in _batches(seed)]
            if name == "both":
                merged = sink.merged
    assert counts["both"] == counts["merge"]
    assert _state(db_dsn) == _state(merge_dsn)
    # Some batches took each path (else this compares the merge with itself).
    assert 0 < merged < len(counts["both"])


async def test_a_duplicate_falls_back_to_the_merge_and_the_sink_returns_to_inserting(
    db_dsn: str,
) -> None:
    def batch(minutes: range) -> Batch:
        return Batch.of([Reading("LOG-A", T0 + timedelta(minutes=m), 5.0) for m in minutes])

    async with AsyncConnectionPool(db_dsn, open=False, min_size=1, max_size=1) as pool:
        await pool.wait()
        sink = TimescaleSink(pool)
        assert await sink.write(batch(range(0, 10))) == 10
        assert sink.merged == 0
        assert await sink.write(batch(range(5, 15))) == 5  # 5 stored already
        assert sink.merged == 1
        assert await sink.write(batch(range(15, 20))) == 5  # merged: the last one had duplicates
        assert sink.merged == 2
        assert await sink.write(batch(range(20, 25))) == 5  # inserted again
        assert sink.merged == 2
    with psycopg.connect(db_dsn) as conn:
        assert conn.execute("SELECT count(*) FROM readings").fetchone() == (25,)
        assert conn.execute("SELECT ts FROM device_state").fetchone() == (
            T0 + timedelta(minutes=24),
        )


async def test_each_path_wakes_the_rules_engine(db_dsn: str) -> None:
    async with (
        await psycopg.AsyncConnection.connect(db_dsn, autocommit=True) as listener,
        AsyncConnectionPool(db_dsn, open=False, min_size=1, max_size=1) as pool,
    ):
        await listener.execute("LISTEN reading_changes")
        await pool.wait()
        sink = TimescaleSink(pool)
        for minutes, merged in ((range(0, 3), 0), (range(2, 5), 1)):
            rs = [Reading("LOG-A", T0 + timedelta(minutes=m), 5.0) for m in minutes]
            await sink.write(Batch.of(rs))
            assert sink.merged == merged
            note = await asyncio.wait_for(anext(aiter(listener.notifies())), 5)
            assert note.channel == "reading_changes"


async def test_two_writers_with_overlapping_batches_neither_deadlock_nor_lose(db_dsn: str) -> None:
    """Two sinks (as the ingester's two writers, or two ingesters) write overlapping uploads at
    once, one inserting and one merging: every reading is stored once, no deadlock is raised.
    Mixed-case device ids sort differently by code point than by a linguistic collation."""
    devices = ["LOG-a", "LOG-B", "LOG-c", "log-D", "LOG-e"]
    rng = random.Random(7)

    def upload(round_: int) -> list[Reading]:
        picked = rng.sample(devices, 4)
        rows = [
            Reading(d, T0 + timedelta(minutes=m), 5.0)
            for d in picked
            for m in range(round_ * 10, round_ * 10 + 15)  # 5 minutes overlap the next round
        ]
        rng.shuffle(rows)
        return rows

    async with (
        AsyncConnectionPool(db_dsn, open=False, min_size=1, max_size=1) as one,
        AsyncConnectionPool(db_dsn, open=False, min_size=1, max_size=1) as two,
    ):
        await one.wait()
        await two.wait()
        first, second = TimescaleSink(one), TimescaleSink(two)
        expected: set[tuple[str, datetime]] = set()
        for round_ in range(40):
            a, b = upload(round_), upload(round_)
            expected |= {(r.device_id, r.ts) for r in a + b}
            await asyncio.gather(first.write(Batch.of(a)), second.write(Batch.of(b)))
    with psycopg.connect(db_dsn) as conn:
        stored = conn.execute("SELECT device_id, ts FROM readings").fetchall()
        latest: dict[str, datetime] = dict(
            conn.execute("SELECT device_id, ts FROM device_state").fetchall()
        )
    assert sorted(stored) == sorted(expected)
    for device in {d for d, _ in expected}:
        assert latest[device] == max(t for d, t in expected if d == device)
