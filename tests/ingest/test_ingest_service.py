"""The ingester against the real Mosquitto and TimescaleDB started by the fixtures."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import aiomqtt
import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from coldchain.settings import Settings
from coldchain.telemetry import Reading, batch_payload, reading_payload, telemetry_topic
from ingest.service import Ingester
from ingest.sink import TimescaleSink

pytestmark = pytest.mark.integration


def _add_devices(dsn: str, *ids: str) -> None:
    with psycopg.connect(dsn) as conn:
        for d in ids:
            conn.execute("INSERT INTO devices (device_id, interval_s) VALUES (%s, 60)", (d,))


async def _until(predicate, within: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not await predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.1)


async def _count(dsn: str, sql: str) -> int:
    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        row = await (await conn.execute(sql)).fetchone()
        return int(row[0]) if row else 0


async def test_readings_stored_once_and_garbage_dead_lettered(
    settings: Settings, db_dsn: str
) -> None:
    _add_devices(db_dsn, "LOG-1", "LOG-2")
    root = settings.mqtt.topic_root
    t0 = datetime(2026, 11, 20, 3, 0, tzinfo=UTC)
    readings = [Reading("LOG-1", t0 + timedelta(minutes=i), 4.0 + i * 0.1, 45.0) for i in range(30)]
    async with AsyncConnectionPool(db_dsn, open=False) as pool:
        await pool.wait()
        ingester = Ingester(settings, TimescaleSink(pool))
        stop = asyncio.Event()
        task = asyncio.create_task(ingester.run(stop))
        await asyncio.wait_for(ingester.connected.wait(), 10)
        async with aiomqtt.Client("127.0.0.1", settings.mqtt.port) as pub:
            for r in readings:
                await pub.publish(telemetry_topic(root, "LOG-1"), reading_payload(r), qos=1)
            # the same readings again, as a re-uploaded buffer: no duplicates
            await pub.publish(
                telemetry_topic(root, "LOG-1"), batch_payload("LOG-1", readings[:10]), qos=1
            )
            await pub.publish(telemetry_topic(root, "LOG-2"), b"{not json", qos=1)
            await pub.publish(
                telemetry_topic(root, "LOG-2"),
                json.dumps(
                    {
                        "readings": [
                            {"ts": "2026-11-20T03:00:00Z", "temp_c": 5},
                            {"ts": "2026-11-20T03:01:00Z", "temp_c": "hot"},
                        ]
                    }
                ).encode(),
                qos=1,
            )
            await pub.publish(telemetry_topic(root, "NOBODY"), reading_payload(readings[0]), qos=1)
        await _until(lambda: _ready(db_dsn))
        stop.set()
        await asyncio.wait_for(task, 10)
    assert await _count(db_dsn, "SELECT count(*) FROM readings WHERE device_id='LOG-1'") == 30
    assert await _count(db_dsn, "SELECT count(*) FROM readings WHERE device_id='LOG-2'") == 1
    reasons = await _reasons(db_dsn)
    assert any("not JSON" in r for r in reasons)
    assert any("temp_c" in r for r in reasons)
    assert any("unknown device 'NOBODY'" in r for r in reasons)
    assert ingester.stats.readings_duplicate == 10


async def _ready(dsn: str) -> bool:
    return (
        await _count(dsn, "SELECT count(*) FROM dead_letters") >= 3
        and await _count(dsn, "SELECT count(*) FROM readings") >= 31
    )


async def _reasons(dsn: str) -> list[str]:
    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        rows = await (await conn.execute("SELECT reason FROM dead_letters")).fetchall()
    return [r[0] for r in rows]


async def test_a_device_registered_while_running_is_let_in_and_forged_ids_are_cheap(
    settings: Settings, db_dsn: str
) -> None:
    """A logger registered after the ingester loaded its registry is stored, not dead-lettered;
    a flood of unknown device ids is dead-lettered without one registry query per message."""
    _add_devices(db_dsn, "EARLY")
    root = settings.mqtt.topic_root
    t0 = datetime(2026, 11, 20, 3, 0, tzinfo=UTC)
    async with AsyncConnectionPool(db_dsn, open=False) as pool:
        await pool.wait()
        sink = TimescaleSink(pool)
        loads = 0
        real_known = sink.known_devices

        async def counting_known() -> frozenset[str]:
            nonlocal loads
            loads += 1
            return await real_known()

        sink.known_devices = counting_known  # type: ignore[method-assign]
        ingester = Ingester(settings, sink)
        stop = asyncio.Event()
        task = asyncio.create_task(ingester.run(stop))
        await asyncio.wait_for(ingester.connected.wait(), 10)
        loads_at_start = loads
        async with aiomqtt.Client("127.0.0.1", settings.mqtt.port) as pub:
            for i in range(200):
                forged = Reading(f"FORGED-{i}", t0, 5.0, None)
                await pub.publish(telemetry_topic(root, forged.device_id), reading_payload(forged))
            _add_devices(db_dsn, "LATE")
            late = Reading("LATE", t0, 5.0, None)
            await pub.publish(telemetry_topic(root, "LATE"), reading_payload(late), qos=1)
        await _until(lambda: _count(db_dsn, "SELECT count(*) FROM readings WHERE device_id='LATE'"))
        await _until(lambda: _has(db_dsn, "SELECT count(*) >= 200 FROM dead_letters"))
        stop.set()
        await asyncio.wait_for(task, 10)
    reasons = await _reasons(db_dsn)
    assert sum("unknown device 'FORGED-" in r for r in reasons) == 200
    assert not any("LATE" in r for r in reasons)
    # 200 forged messages published in well under the reload interval's multiples
    assert loads - loads_at_start < 50, f"{loads - loads_at_start} registry loads"


async def _has(dsn: str, sql: str) -> bool:
    return bool(await _count(dsn, sql))
