"""Reconnect churn logs no ERROR tracebacks (issue 11, point 18).

aiomqtt logs a SUBACK whose SUBSCRIBE call is no longer waiting as an ERROR with a ``KeyError``
traceback. The ingester meets that routinely: a persistent session's backlog arrives ahead of
the SUBACK, and a session that ends meanwhile (stop, restart) cancels the call while the socket
is still read until DISCONNECT. ``IngestClient`` notes it at DEBUG instead (ingest/mqtt.py).
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import aiomqtt
import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from coldchain.settings import Settings
from coldchain.telemetry import telemetry_topic
from ingest.mqtt import IngestClient
from ingest.service import Ingester
from ingest.sink import TimescaleSink
from launcher.localstack import MosquittoBroker, free_port
from tests.fixtures.web import add_device

pytestmark = pytest.mark.integration

DEVICES = [f"LOG-{i:02d}" for i in range(50)]
T0_MS = 1_780_000_000_000  # 2026-05-28, in epoch milliseconds


def _tracebacks(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        f"{r.name}: {r.getMessage()}"
        for r in caplog.records
        if r.levelno >= logging.ERROR or r.exc_info is not None
    ]


async def test_a_suback_after_its_subscribe_was_cancelled_is_no_error(
    broker: MosquittoBroker, topic_root: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    got: list[str] = []
    client = IngestClient(
        "127.0.0.1",
        broker.port,
        on_publish=lambda topic, *_: got.append(topic),
        identifier=f"churn-{topic_root[-8:]}",
        protocol=aiomqtt.ProtocolVersion.V5,
    )
    async with client:
        call = asyncio.create_task(client.subscribe(f"{topic_root}/#", qos=1))
        await asyncio.sleep(0)  # SUBSCRIBE is queued; its SUBACK cannot have been read yet
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        await asyncio.sleep(0.5)  # the SUBACK arrives for a call that no longer waits
    assert "no longer awaited" in caplog.text  # it did arrive, and was noted
    assert _tracebacks(caplog) == []


async def test_stopping_and_starting_the_ingester_on_a_backlog_logs_no_error(
    tmp_path: Path, settings: Settings, db_dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The churn of the issue: an ingester stopped again and again while it takes a backlog
    (a session can end before its SUBACK), then left to drain it; every message is stored."""
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        for d in DEVICES:
            add_device(conn, d)
    private = MosquittoBroker(tmp_path / "broker", free_port())
    private.start()
    n = 20_000
    try:
        live = settings.model_copy(
            update={"mqtt": settings.mqtt.model_copy(update={"port": private.port})}
        )
        async with AsyncConnectionPool(db_dsn, open=False, min_size=1, max_size=2) as pool:
            await pool.wait()
            sink = TimescaleSink(pool)
            await _run(live, sink, 1.0)  # the session and its subscription exist from here on
            await _publish(private.port, live.mqtt.topic_root, n)
            caplog.clear()
            caplog.set_level(logging.WARNING)
            for _ in range(6):
                await _run(live, sink, 0.15)
            for _ in range(60):
                await _run(live, sink, 1.0)
                if _stored(db_dsn) >= n:
                    break
    finally:
        private.stop()
    assert _stored(db_dsn) == n
    assert _tracebacks(caplog) == []


def _stored(db_dsn: str) -> int:
    with psycopg.connect(db_dsn) as conn:
        row = conn.execute("SELECT count(*) FROM readings").fetchone()
    return int(row[0]) if row else 0


async def _run(settings: Settings, sink: TimescaleSink, seconds: float) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(Ingester(settings, sink).run(stop))
    await asyncio.sleep(seconds)
    stop.set()
    await asyncio.wait_for(task, 30)


async def _publish(port: int, root: str, n: int) -> None:
    client = aiomqtt.Client("127.0.0.1", port, identifier=f"fleet-{root[-8:]}")
    client.pending_calls_threshold = n  # we pipeline on purpose
    async with client as pub:
        sem = asyncio.Semaphore(500)

        async def one(i: int) -> None:
            payload = f'{{"ts":{T0_MS + i * 1000},"temp_c":5.0}}'.encode()
            async with sem:
                await pub.publish(telemetry_topic(root, DEVICES[i % len(DEVICES)]), payload, qos=1)

        await asyncio.gather(*(one(i) for i in range(n)))
