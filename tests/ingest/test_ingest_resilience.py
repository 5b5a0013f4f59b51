"""Nothing is lost when the broker or the database goes away, late data finds its shipment,
and a backlog does not grow the ingester's memory.

Real Mosquitto and TimescaleDB throughout. The broker tests run a private Mosquitto (the
session's broker is shared by every test and must not be killed) on a port of their own.
Every wait polls the database or the ingester's counters for a condition; no sleep decides
a result.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from psycopg_pool import AsyncConnectionPool

from bench._common import peak_rss_mb, publish_all
from coldchain.settings import Settings
from coldchain.telemetry import Reading, batch_payload, reading_payload, telemetry_topic
from ingest.service import Ingester
from ingest.sink import Batch, TimescaleSink
from launcher.localstack import MosquittoBroker, PostgresCluster, free_port
from tests.fixtures.data import seed_shipment
from tests.ingest.test_ingest_crash import DEVICES, _seed_devices, ingester

pytestmark = pytest.mark.integration


def _readings(n: int, start: datetime) -> list[Reading]:
    return [
        Reading(DEVICES[i % len(DEVICES)], start + timedelta(minutes=i // len(DEVICES)), 4.0)
        for i in range(n)
    ]


def _singles(root: str, readings: list[Reading]) -> list[tuple[str, bytes]]:
    return [(telemetry_topic(root, r.device_id), reading_payload(r)) for r in readings]


async def _publish(port: int, messages: list[tuple[str, bytes]]) -> None:
    """QoS 1, as fast as the broker acknowledges (the raw publisher of bench/, in a thread)."""
    await asyncio.to_thread(publish_all, port, messages)


def _count(dsn: str, query: str = "SELECT count(*) FROM readings") -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(query).fetchone()
    return int(row[0]) if row else 0


async def _until(condition: Callable[[], bool], within: float = 30.0, what: str = "") -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, f"not reached within {within:.0f} s: {what}"
        await asyncio.sleep(0.05)


def _with_broker(settings: Settings, port: int) -> Settings:
    return settings.model_copy(update={"mqtt": settings.mqtt.model_copy(update={"port": port})})


@contextlib.asynccontextmanager
async def _running(settings: Settings, sink: object) -> AsyncIterator[Ingester]:
    """An in-process ingester (its counters are what the tests watch), stopped gracefully."""
    ing = Ingester(settings, sink)  # type: ignore[arg-type]
    stop = asyncio.Event()
    task = asyncio.create_task(ing.run(stop))
    try:
        await asyncio.wait_for(ing.connected.wait(), 15)
        yield ing
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


class GatedSink:
    """The real sink behind a gate: batches wait until the test opens it."""

    def __init__(self, inner: TimescaleSink) -> None:
        self.inner = inner
        self.gate = asyncio.Event()

    async def write(self, batch: Batch) -> int:
        await self.gate.wait()
        return await self.inner.write(batch)

    async def known_devices(self) -> frozenset[str]:
        return await self.inner.known_devices()


class MeteredSink(GatedSink):
    """Lets ``allowance`` batches through, then holds the rest until the gate opens."""

    def __init__(self, inner: TimescaleSink, allowance: int) -> None:
        super().__init__(inner)
        self.allowance = allowance

    async def write(self, batch: Batch) -> int:
        if self.allowance > 0:
            self.allowance -= 1
            return await self.inner.write(batch)
        return await super().write(batch)


def _assert_each_once(dsn: str, expected: int) -> None:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "SELECT count(*), count(DISTINCT (device_id, ts)) FROM readings"
        ).fetchone()
    assert row == (expected, expected)


@pytest.mark.parametrize("how", ["kill", "restart"])
async def test_broker_going_away_mid_stream_loses_nothing(
    settings: Settings, db_dsn: str, tmp_path: Path, how: str
) -> None:
    """The broker dies (SIGKILL: it loses what it had not saved) or restarts (SIGTERM: it saves
    its sessions) while the ingester holds messages it has not committed; then more come."""
    _seed_devices(db_dsn)
    port = free_port()
    broker = MosquittoBroker(tmp_path / "mqtt", port)
    broker.start()
    s = _with_broker(settings, port)
    root = s.mqtt.topic_root
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(days=3)
    before, after = _readings(1500, t0), _readings(1500, t0 + timedelta(days=1))
    try:
        async with AsyncConnectionPool(db_dsn, min_size=1, max_size=2, open=False) as pool:
            await pool.wait()
            sink = GatedSink(TimescaleSink(pool))
            async with _running(s, sink) as ing:
                await _publish(port, _singles(root, before))
                # All of it is in the ingester's hands, none of it committed or acknowledged.
                await _until(lambda: ing.stats.messages >= len(before), what="messages held")
                assert _count(db_dsn) == 0
                if how == "kill":
                    broker.kill()
                else:
                    broker.stop()
                await _until(lambda: not ing.connected.is_set(), what="disconnection noticed")
                sink.gate.set()  # what it holds is committed, though no PUBACK can go out
                broker = MosquittoBroker(tmp_path / "mqtt", port)
                broker.start()
                await _until(ing.connected.is_set, within=60, what="reconnected")
                await _publish(port, _singles(root, after))
                total = len(before) + len(after)
                await _until(lambda: _count(db_dsn) >= total, what="every reading stored")
                if how == "restart":
                    # The restarted broker re-delivered what we held: the primary key kept
                    # those from being stored twice.
                    await _until(
                        lambda: ing.stats.readings_duplicate >= len(before),
                        what="re-deliveries seen",
                    )
    finally:
        broker.stop()
    _assert_each_once(db_dsn, len(before) + len(after))


async def test_the_ingester_holds_no_more_than_its_receive_maximum(
    settings: Settings, db_dsn: str
) -> None:
    """Mosquitto 2.0.11 sends past the receive maximum once a PUBACK went out; the ingester
    stops reading at the limit instead of buffering what the broker over-sends."""
    _seed_devices(db_dsn)
    s = settings.model_copy(
        update={
            "ingest": settings.ingest.model_copy(
                update={"receive_maximum": 50, "batch_max_readings": 1000}
            )
        }
    )
    readings = _readings(500, datetime.now(UTC).replace(microsecond=0) - timedelta(days=3))
    async with AsyncConnectionPool(db_dsn, min_size=1, max_size=2, open=False) as pool:
        await pool.wait()
        sink = MeteredSink(TimescaleSink(pool), allowance=1)
        async with _running(s, sink) as ing:
            assert ing._mqtt is not None
            client = ing._mqtt
            await _publish(s.mqtt.port, _singles(s.mqtt.topic_root, readings))
            # 50 held, committed and acknowledged (the one batch let through), then 50 more held
            # while the sink is shut: the reader is paused there, however much the broker sends.
            await _until(
                lambda: ing.stats.messages >= 100 and client._reader.paused,
                what="a full window held and reading paused",
            )
            assert ing.stats.messages == 100
            assert ing._unacked == 50
            sink.gate.set()
            await _until(lambda: ing.stats.readings_new >= len(readings), what="all stored")
    _assert_each_once(db_dsn, len(readings))


async def test_database_outage_loses_nothing(
    settings: Settings, db_dsn: str, db_name: str, pg_cluster: PostgresCluster
) -> None:
    """The database refuses connections and drops the ingester's; readings keep coming."""
    _seed_devices(db_dsn)
    root = settings.mqtt.topic_root
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(days=3)
    before, during = _readings(1000, t0), _readings(2000, t0 + timedelta(days=1))
    db = sql.Identifier(db_name)

    def outage(on: bool) -> None:
        with psycopg.connect(pg_cluster.superuser_dsn(), autocommit=True) as conn:
            conn.execute(
                sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS {}").format(
                    db, sql.Literal(not on)
                )
            )
            if on:
                conn.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                    (db_name,),
                )

    # A short pool timeout, so each retry of the ingester finds out quickly.
    async with AsyncConnectionPool(db_dsn, min_size=1, max_size=2, open=False, timeout=2.0) as pool:
        await pool.wait()
        async with _running(settings, TimescaleSink(pool)) as ing:
            await _publish(settings.mqtt.port, _singles(root, before))
            await _until(lambda: ing.stats.readings_new >= len(before), what="first part stored")
            outage(True)
            try:
                await _publish(settings.mqtt.port, _singles(root, during))
                await _until(lambda: ing.stats.commit_retries >= 2, what="commits failing")
            finally:
                outage(False)
            await _until(
                lambda: ing.stats.readings_new >= len(before) + len(during),
                within=90,
                what="everything stored after the outage",
            )
    _assert_each_once(db_dsn, len(before) + len(during))


async def test_late_upload_lands_in_the_shipment_of_its_measurement_time(
    settings: Settings, db_dsn: str
) -> None:
    """One logger rides shipment A, then B. Its buffered readings from A arrive after it has
    moved to B: they belong to A, by the assignment interval at measurement time."""
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=2)
    a = seed_shipment(db_dsn, reference="SHP-A", device_id="LOG-1", start=start, hours=24)
    b = seed_shipment(
        db_dsn, reference="SHP-B", device_id="LOG-1", start=start + timedelta(hours=24), hours=24
    )
    root = settings.mqtt.topic_root
    topic = telemetry_topic(root, "LOG-1")
    on_b = [Reading("LOG-1", start + timedelta(hours=24, minutes=i), 5.0) for i in range(30)]
    late_for_a = [Reading("LOG-1", start + timedelta(hours=20, minutes=i), 6.0) for i in range(90)]
    async with AsyncConnectionPool(db_dsn, min_size=1, max_size=2, open=False) as pool:
        await pool.wait()
        async with _running(settings, TimescaleSink(pool)) as ing:
            await _publish(settings.mqtt.port, [(topic, reading_payload(r)) for r in on_b])
            await _until(lambda: ing.stats.readings_new >= len(on_b), what="live readings")
            # The logger's buffer from shipment A, uploaded late in 60-reading batches.
            uploads = [
                (topic, batch_payload("LOG-1", late_for_a[i : i + 60]))
                for i in range(0, len(late_for_a), 60)
            ]
            await _publish(settings.mqtt.port, uploads)
            await _until(
                lambda: ing.stats.readings_new >= len(on_b) + len(late_for_a), what="late upload"
            )
    with psycopg.connect(db_dsn) as conn:
        rows = conn.execute(
            """SELECT a.shipment_id, count(*), min(r.temp_c), max(r.temp_c)
               FROM readings r
               JOIN device_assignments a ON a.device_id = r.device_id AND a.during @> r.ts
               GROUP BY a.shipment_id ORDER BY a.shipment_id"""
        ).fetchall()
        unassigned = conn.execute(
            """SELECT count(*) FROM readings r WHERE NOT EXISTS (
                   SELECT 1 FROM device_assignments a
                   WHERE a.device_id = r.device_id AND a.during @> r.ts)"""
        ).fetchone()
    assert rows == [
        (a.shipment_id, len(late_for_a), 6.0, 6.0),
        (b.shipment_id, len(on_b), 5.0, 5.0),
    ]
    assert unassigned == (0,)


async def test_a_backlog_does_not_grow_the_ingesters_memory(
    settings: Settings, db_dsn: str
) -> None:
    """Draining 100,000 queued messages peaks at the same memory as draining 5,000: the receive
    maximum (400 here, twice the batch) bounds what the ingester holds, not the backlog."""
    _seed_devices(db_dsn)
    root = settings.mqtt.topic_root
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(days=30)
    with ingester(settings) as proc:  # creates the persistent session and its subscription
        await proc.ready()
        assert proc.terminate() == 0, proc.output()

    async def drain(readings: list[Reading]) -> float:
        await _publish(settings.mqtt.port, _singles(root, readings))
        target = _count(db_dsn) + len(readings)
        with ingester(settings) as proc:
            peak = 0.0
            deadline = time.monotonic() + 60
            while _count(db_dsn) < target:
                assert proc.alive() and time.monotonic() < deadline, proc.output()
                peak = max(peak, peak_rss_mb(proc.popen.pid) or 0.0)
                await asyncio.sleep(0.1)
            peak = max(peak, peak_rss_mb(proc.popen.pid) or 0.0)
            assert proc.terminate() == 0, proc.output()
        return peak

    small = await drain(_readings(5_000, t0))
    large = await drain(_readings(100_000, t0 + timedelta(days=1)))
    # Buffering the backlog would cost ~0.5 KB a message, ~45 MB here; bounded, it costs nothing.
    assert large - small < 15, f"peak RSS {small:.0f} MB for 5k, {large:.0f} MB for 100k"
    _assert_each_once(db_dsn, 105_000)
