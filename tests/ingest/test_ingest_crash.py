"""Nothing acknowledged is lost: SIGKILL loops, graceful stop, two redundant ingesters.

The ingester runs as a real process (`coldchain ingest`) against the fixtures' Mosquitto and
TimescaleDB, and is killed the hard way while a publisher keeps sending.
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiomqtt
import psycopg
import pytest

from coldchain.settings import Settings
from coldchain.telemetry import Reading, batch_payload, reading_payload, telemetry_topic

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 1, tzinfo=UTC)
DEVICES = [f"LOG-{i:03d}" for i in range(5)]


def _env(settings: Settings, client_id: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COLDCHAIN_")}
    env.update(
        COLDCHAIN_DB__HOST=settings.db.host,
        COLDCHAIN_DB__PORT=str(settings.db.port),
        COLDCHAIN_DB__NAME=settings.db.name,
        COLDCHAIN_DB__USER=settings.db.user,
        COLDCHAIN_DB__PASSWORD=settings.db.password.get_secret_value(),
        COLDCHAIN_MQTT__PORT=str(settings.mqtt.port),
        COLDCHAIN_MQTT__TOPIC_ROOT=settings.mqtt.topic_root,
        COLDCHAIN_MQTT__CLIENT_ID=client_id,
        COLDCHAIN_INGEST__BATCH_MAX_READINGS="200",
        COLDCHAIN_LOG_LEVEL="INFO",
    )
    return env


class Proc:
    """A `coldchain ingest` process whose log goes to a file (a pipe could fill and block it)."""

    def __init__(self, settings: Settings, client_id: str, log: Path) -> None:
        self.log = log
        self._out = log.open("wb")
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "launcher.cli", "ingest"],
            env=_env(settings, client_id),
            stdout=self._out,
            stderr=subprocess.STDOUT,
        )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    async def ready(self, within: float = 20.0) -> None:
        """Wait until it has subscribed (its signal handlers are in place by then)."""
        deadline = asyncio.get_running_loop().time() + within
        while "ingester subscribed" not in self.output():
            assert self.popen.poll() is None, self.output()
            assert asyncio.get_running_loop().time() < deadline, self.output()
            await asyncio.sleep(0.05)

    def alive(self) -> bool:
        return self.popen.poll() is None

    def terminate(self, within: float = 20.0) -> int:
        self.popen.send_signal(signal.SIGTERM)
        return self.popen.wait(within)

    def kill(self) -> None:
        self.popen.send_signal(signal.SIGKILL)
        self.popen.wait()

    def close(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
        self.popen.wait()
        self._out.close()


@contextmanager
def ingester(settings: Settings, client_id: str = "ingest-a") -> Iterator[Proc]:
    with tempfile.NamedTemporaryFile(prefix=f"{client_id}-", suffix=".log", delete=False) as f:
        log = Path(f.name)
    proc = Proc(settings, client_id, log)
    try:
        yield proc
    finally:
        proc.close()
        log.unlink(missing_ok=True)


def _seed_devices(dsn: str) -> None:
    with psycopg.connect(dsn) as conn:
        for d in DEVICES:
            conn.execute("INSERT INTO devices (device_id, interval_s) VALUES (%s, 60)", (d,))


def _count(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT count(*) FROM readings").fetchone()
    return int(row[0]) if row else 0


def _readings(n: int) -> list[Reading]:
    return [
        Reading(
            DEVICES[i % len(DEVICES)], T0 + timedelta(minutes=i // len(DEVICES)), 5.0 + (i % 7) / 10
        )
        for i in range(n)
    ]


async def _publish(settings: Settings, readings: list[Reading], *, batch: int = 1) -> None:
    root = settings.mqtt.topic_root
    client = aiomqtt.Client("127.0.0.1", settings.mqtt.port, identifier=f"pub-{id(readings)}")
    client.pending_calls_threshold = 1000  # we pipeline on purpose
    async with client as pub:
        sem = asyncio.Semaphore(200)

        async def one(topic: str, payload: bytes) -> None:
            async with sem:
                await pub.publish(topic, payload, qos=1)

        if batch == 1:
            jobs = [one(telemetry_topic(root, r.device_id), reading_payload(r)) for r in readings]
        else:
            jobs = []
            for d in DEVICES:
                mine = [r for r in readings if r.device_id == d]
                for i in range(0, len(mine), batch):
                    jobs.append(
                        one(telemetry_topic(root, d), batch_payload(d, mine[i : i + batch]))
                    )
        await asyncio.gather(*jobs)


async def _wait_rows(dsn: str, n: int, within: float) -> int:
    """Poll the database (the only witness that counts) until n rows or the time is up."""
    for _ in range(int(within / 0.2)):
        if (got := _count(dsn)) >= n:
            return got
        await asyncio.sleep(0.2)
    return _count(dsn)


async def test_sigkill_loop_loses_nothing_and_duplicates_nothing(
    settings: Settings, db_dsn: str
) -> None:
    _seed_devices(db_dsn)
    total = 6000
    readings = _readings(total)
    # Create the persistent session and its subscription first, so the broker queues for it.
    with ingester(settings) as proc:
        await proc.ready()
        proc.kill()
    rng = random.Random(7)
    publisher = asyncio.create_task(_publish(settings, readings))
    kills = 0
    progress: list[int] = []
    while (not publisher.done() or kills < 8) and kills < 40:
        with ingester(settings) as proc:
            # Kill it while it works: once rows start moving, at a random moment.
            before = _count(db_dsn)
            if before < total:
                await _wait_rows(db_dsn, before + 1, 15)
            await asyncio.sleep(rng.uniform(0.0, 0.4))
            assert proc.alive(), proc.output()
            proc.kill()
            kills += 1
            progress.append(_count(db_dsn))
    await publisher
    stored_mid_way = progress[len(progress) // 2]
    with ingester(settings) as proc:
        await proc.ready()
        got = await _wait_rows(db_dsn, total, 60)
        assert proc.terminate() == 0, proc.output()
    assert kills >= 8
    assert 0 < stored_mid_way <= total
    assert got == total
    with psycopg.connect(db_dsn) as conn:
        row = conn.execute("SELECT count(DISTINCT (device_id, ts)) FROM readings").fetchone()
    assert row is not None and row[0] == total


async def test_graceful_stop_commits_what_it_holds(settings: Settings, db_dsn: str) -> None:
    _seed_devices(db_dsn)
    readings = _readings(3000)
    with ingester(settings) as proc:
        await proc.ready()
        await _publish(settings, readings, batch=60)
        assert proc.terminate() == 0, proc.output()
        assert "ingester stopped" in proc.output()
    # Whatever it had not taken yet stays queued at the broker for the next run.
    with ingester(settings) as proc:
        await proc.ready()
        assert await _wait_rows(db_dsn, len(readings), 30) == len(readings)
        assert proc.terminate() == 0, proc.output()


async def test_two_ingesters_each_receive_everything_and_store_each_reading_once(
    settings: Settings, db_dsn: str
) -> None:
    """Several ingesters are redundancy, not partitioning: each has its own session and plain
    subscription (docs/INGEST_PERFORMANCE.md), and the primary key stores a reading once."""
    _seed_devices(db_dsn)
    readings = _readings(4000)
    with ingester(settings, "ingest-a") as a, ingester(settings, "ingest-b") as b:
        await a.ready()
        await b.ready()
        await _publish(settings, readings)
        assert await _wait_rows(db_dsn, len(readings), 30) == len(readings)
        assert a.terminate() == 0, a.output()
        assert b.terminate() == 0, b.output()
        # Each received every message; between them they stored each reading once.
        assert _received(a.output()) == _received(b.output()) == len(readings)
        assert _took(a.output()) + _took(b.output()) == len(readings)
    with psycopg.connect(db_dsn) as conn:
        row = conn.execute(
            "SELECT count(DISTINCT (device_id, ts)), count(*) FROM readings"
        ).fetchone()
    assert row == (len(readings), len(readings))


def _received(log: str) -> int:
    """How many messages an ingester reported receiving, from its closing log line."""
    m = re.search(r"ingester stopped: (\d+) messages", log)
    assert m is not None, log
    return int(m.group(1))


def _took(log: str) -> int:
    """How many new readings an ingester reported storing, from its closing log line."""
    m = re.search(r"ingester stopped: \d+ messages, (\d+) new readings", log)
    assert m is not None, log
    return int(m.group(1))
