"""A broker restart loses no acknowledged reading (issue 11, point 3).

The ingester's plain subscription lives in its persistent session, which Mosquitto 2.0 writes
to disk with the messages queued for it and restores at start (a ``$share`` subscription it
does not restore). Each test runs a private broker, so it can stop, start and kill it; the
ingester is the real one, against the real database.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiomqtt
import psycopg
import pytest

from coldchain.settings import Settings
from coldchain.telemetry import Reading, reading_payload, telemetry_topic
from ingest.service import Ingester
from ingest.sink import MemorySink
from launcher.localstack import AUTOSAVE_INTERVAL_S, MosquittoBroker, free_port
from tests.fixtures.web import add_device
from tests.security.test_mqtt import _ingesting

pytestmark = pytest.mark.integration

DEVICES = [f"LOG-{i:02d}" for i in range(10)]
T0 = datetime(2026, 11, 1, tzinfo=UTC)


def _readings(start: int, n: int) -> list[Reading]:
    return [
        Reading(DEVICES[i % len(DEVICES)], T0 + timedelta(minutes=i), 5.0)
        for i in range(start, start + n)
    ]


async def _publish(port: int, readings: list[Reading], root: str) -> None:
    """Publish at QoS 1; returns once the broker has PUBACKed every message."""
    client = aiomqtt.Client("127.0.0.1", port, identifier=f"fleet-{time.monotonic_ns()}")
    client.pending_calls_threshold = 1000  # we pipeline on purpose
    async with client as pub:
        sem = asyncio.Semaphore(100)

        async def one(r: Reading) -> None:
            async with sem:
                await pub.publish(telemetry_topic(root, r.device_id), reading_payload(r), qos=1)

        await asyncio.gather(*(one(r) for r in readings))


def _stored(db_dsn: str) -> int:
    with psycopg.connect(db_dsn) as conn:
        row = conn.execute("SELECT count(*) FROM readings").fetchone()
    return int(row[0]) if row else 0


async def _wait_stored(db_dsn: str, n: int, within: float) -> int:
    """Poll the database (the only witness that counts) until n rows or the time is up."""
    for _ in range(int(within / 0.2)):
        if _stored(db_dsn) >= n:
            break
        await asyncio.sleep(0.2)
    await asyncio.sleep(0.5)  # and nothing more than that arrives
    return _stored(db_dsn)


@pytest.fixture
def private_broker(tmp_path: Path) -> Iterator[MosquittoBroker]:
    broker = MosquittoBroker(tmp_path / "broker", free_port())
    broker.start()
    yield broker
    broker.stop()


async def _next_autosave(broker: MosquittoBroker) -> None:
    db_file = broker.data_dir / "persist" / "mosquitto.db"
    seen = db_file.stat().st_mtime_ns if db_file.exists() else 0
    deadline = time.monotonic() + AUTOSAVE_INTERVAL_S + 5
    while not db_file.exists() or db_file.stat().st_mtime_ns == seen:
        assert time.monotonic() < deadline, "the broker did not autosave"
        await asyncio.sleep(0.02)


def _on(broker: MosquittoBroker, settings: Settings) -> Settings:
    return settings.model_copy(
        update={"mqtt": settings.mqtt.model_copy(update={"port": broker.port})}
    )


@pytest.fixture
def registered(db_dsn: str) -> None:
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        for d in DEVICES:
            add_device(conn, d)


def test_the_ingester_subscribes_plainly_unless_a_shared_group_is_asked_for(
    settings: Settings, topic_root: str
) -> None:
    plain = Ingester(settings, MemorySink()).subscriptions()
    assert plain == [f"{topic_root}/devices/+/telemetry", f"{topic_root}/devices/+/status"]
    mqtt = settings.mqtt.model_copy(update={"shared_group": "g"})
    shared = Ingester(settings.model_copy(update={"mqtt": mqtt}), MemorySink()).subscriptions()
    assert shared == [f"$share/g/{t}" for t in plain]


@pytest.mark.usefixtures("registered")
async def test_a_clean_broker_restart_with_the_ingester_stopped_loses_nothing(
    private_broker: MosquittoBroker, settings: Settings, db_dsn: str, topic_root: str
) -> None:
    live = _on(private_broker, settings)
    async with _ingesting(live, db_dsn):
        pass  # the session and its subscription exist from here on
    before, after = _readings(0, 500), _readings(500, 500)
    await _publish(private_broker.port, before, topic_root)  # all PUBACKed
    private_broker.stop()  # SIGTERM: the broker saves its sessions and queues
    private_broker.start()
    await _publish(private_broker.port, after, topic_root)  # all PUBACKed after the restart
    assert _stored(db_dsn) == 0  # nothing was stored at PUBACK: the ingester is not running
    async with _ingesting(live, db_dsn):
        assert await _wait_stored(db_dsn, 1000, 30) == 1000


@pytest.mark.usefixtures("registered")
async def test_a_broker_crash_loses_at_most_the_autosave_window(
    private_broker: MosquittoBroker, settings: Settings, db_dsn: str, topic_root: str
) -> None:
    """SIGKILL with the ingester stopped: what the broker saved survives, the rest is lost.

    This pins down what docs/PROTOCOL.md says a PUBACK does and does not promise.
    """
    live = _on(private_broker, settings)
    async with _ingesting(live, db_dsn):
        pass
    saved, unsaved = _readings(0, 500), _readings(500, 500)
    await _publish(private_broker.port, saved, topic_root)
    # Right after an autosave has written them to disk, the next one is AUTOSAVE_INTERVAL_S away.
    await _next_autosave(private_broker)
    await _publish(private_broker.port, unsaved, topic_root)
    private_broker.kill()  # no save: what came after the last autosave is gone
    private_broker.start()
    async with _ingesting(live, db_dsn):
        stored = await _wait_stored(db_dsn, 500, 30)
    assert stored >= 500  # everything saved before the crash
    assert stored < 1000  # and the window is real: PUBACKed within it and not saved is lost
