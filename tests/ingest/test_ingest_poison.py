"""Issue 11: one message must not stop, drop or slow the fleet's data.

Each test sends the attack through the real Mosquitto to a real ingester writing to the real
TimescaleDB, followed by good readings, and shows those are stored within seconds, the attack
is one dead letter with its reason, and every message is acknowledged. Where the parser now
refuses what the database used to, a CHECK constraint added behind the app's back (as the
superuser) makes the database itself refuse a message that passes the parser: that is the path
any gap left in the parser would take.
"""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import signal
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from bench._common import publish_all
from coldchain.settings import Settings
from coldchain.telemetry import Reading, reading_payload, status_topic, telemetry_topic
from db.migrate import migrate
from ingest.sink import MAX_REASONS, REASONS_BYTES, TimescaleSink
from launcher.localstack import PostgresCluster, free_port
from tests.fixtures.services import APP_PASSWORD, APP_USER, OWNER_PASSWORD, OWNER_USER
from tests.ingest.test_ingest_crash import DEVICES, Proc, _seed_devices, ingester
from tests.ingest.test_ingest_resilience import _running, _until

pytestmark = pytest.mark.integration

DEVICE = DEVICES[0]


def _good(n: int, start: datetime) -> list[Reading]:
    return [Reading(DEVICE, start + timedelta(minutes=i), 4.0) for i in range(n)]


def _messages(root: str, readings: list[Reading]) -> list[tuple[str, bytes]]:
    return [(telemetry_topic(root, r.device_id), reading_payload(r)) for r in readings]


def _rows(dsn: str, query: str, *args: object) -> list[tuple]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(query, args).fetchall()


def _one(dsn: str, query: str, *args: object) -> Any:
    return _rows(dsn, query, *args)[0][0]


async def _publish(port: int, messages: list[tuple[str, bytes]]) -> None:
    """QoS 1; returns once the broker acknowledged every message."""
    await asyncio.to_thread(publish_all, port, messages)


async def _send_and_settle(
    settings: Settings, db_dsn: str, attack: list[tuple[str, bytes]], *, within: float = 10.0
) -> tuple[list[Reading], float]:
    """Good readings, the attack, more good readings; seconds until all good ones are stored
    and every message is acknowledged (the ingester holds none unacknowledged)."""
    root = settings.mqtt.topic_root
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)
    before, after = _good(100, t0), _good(100, t0 + timedelta(hours=3))
    async with AsyncConnectionPool(db_dsn, min_size=1, max_size=2, open=False) as pool:
        await pool.wait()
        async with _running(settings, TimescaleSink(pool)) as ing:
            started = time.monotonic()
            await _publish(
                settings.mqtt.port, _messages(root, before) + attack + _messages(root, after)
            )
            total = len(before) + len(after)
            await _until(
                lambda: (
                    _one(db_dsn, "SELECT count(*) FROM readings") == total and ing._unacked == 0
                ),
                within=within,
                what="the good readings stored and every message acknowledged",
            )
            took = time.monotonic() - started
            assert ing.connected.is_set()
    return before + after, took


async def test_a_message_the_database_refuses_is_dead_lettered_alone(
    settings: Settings, db_dsn: str, superuser_dsn: str
) -> None:
    """A reading and a status that pass the parser but that the database refuses (before: the
    batch was retried forever, and everything behind it waited)."""
    _seed_devices(db_dsn)
    with psycopg.connect(superuser_dsn, autocommit=True) as conn:
        conn.execute("ALTER TABLE readings ADD CONSTRAINT poison CHECK (temp_c <> 66.6)")
        conn.execute("ALTER TABLE device_state ADD CONSTRAINT poison CHECK (firmware <> 'bad')")
    root = settings.mqtt.topic_root
    ts = datetime.now(UTC).replace(microsecond=0) - timedelta(days=2)
    reading = reading_payload(Reading(DEVICE, ts, 66.6))
    status = json.dumps({"online": True, "firmware": "bad"}).encode()
    attack = [(telemetry_topic(root, DEVICE), reading), (status_topic(root, DEVICE), status)]
    _, took = await _send_and_settle(settings, db_dsn, attack)
    dead = _rows(
        db_dsn, "SELECT topic, device_id, reason, payload, refused FROM dead_letters ORDER BY id"
    )
    assert sorted((d[0], d[1], bytes(d[3]), d[4]) for d in dead) == sorted(
        [(t, DEVICE, p, 1) for t, p in attack]
    )
    assert all("the database refused this message: CheckViolation" in d[2] for d in dead)
    assert _one(db_dsn, "SELECT count(*) FROM readings WHERE temp_c = 66.6") == 0
    assert took < 10


async def test_a_nul_in_a_status_is_refused_at_the_boundary(
    settings: Settings, db_dsn: str
) -> None:
    """The issue's own attack: {"online":true,"firmware":"\\u0000"} stopped the whole fleet."""
    _seed_devices(db_dsn)
    root = settings.mqtt.topic_root
    payload = b'{"online":true,"firmware":"\\u0000"}'
    await _send_and_settle(settings, db_dsn, [(status_topic(root, DEVICE), payload)])
    ((reason, stored),) = _rows(db_dsn, "SELECT reason, payload FROM dead_letters")
    assert reason.startswith("firmware: String should match pattern")
    assert bytes(stored) == payload


async def test_6000_invalid_readings_are_one_dead_letter_of_about_the_payloads_size(
    settings: Settings, db_dsn: str, pg_cluster: PostgresCluster
) -> None:
    """Before: 6,000 rows each with the whole 256 KiB payload (about 1.6 GB in one statement)."""
    _seed_devices(db_dsn)
    root = settings.mqtt.topic_root
    bad = [{"ts": 1793491200000 + i * 60_000, "temp_c": "5.5"} for i in range(6000)]
    payload = json.dumps({"readings": bad}, separators=(",", ":")).encode()
    assert 200_000 < len(payload) <= settings.ingest.max_payload_bytes
    with psycopg.connect(pg_cluster.superuser_dsn(), autocommit=True) as conn:
        wal_before = conn.execute("SELECT pg_current_wal_insert_lsn()").fetchone()
    await _send_and_settle(settings, db_dsn, [(telemetry_topic(root, DEVICE), payload)])
    with psycopg.connect(pg_cluster.superuser_dsn(), autocommit=True) as conn:
        row = conn.execute(
            "SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), %s)", wal_before
        ).fetchone()
    assert row is not None
    wal = int(row[0])
    ((stored, refused, listed, reasons_bytes, reason, index),) = _rows(
        db_dsn,
        """SELECT payload, refused, jsonb_array_length(reasons), octet_length(reasons::text),
                  reason, batch_index FROM dead_letters""",
    )
    assert bytes(stored) == payload
    assert refused == 6000
    assert listed == MAX_REASONS
    assert reasons_bytes < REASONS_BYTES
    assert reason.startswith("6,000 of 6,000 readings refused (100 listed); reading 0: temp_c:")
    assert index == 0
    # Everything this test wrote (200 readings, their indexes, one dead letter) is a few times
    # the payload at most, not 6,000 copies of it.
    assert wal < 4 * len(payload), f"{wal:,} bytes of WAL for a {len(payload):,}-byte message"


@pytest.mark.parametrize(
    ("attack", "reason"),
    [
        (b'{"ts": "2026-11-01T00:00:00Z", "temp_c": 1' + b"0" * 5000 + b"}", "too long"),
        (b'{"ts": -86400000, "temp_c": 4.0}', "timestamp 1969-12-31T00:00:00+00:00 is before"),
        (b'{"ts": "0001-01-01T00:00:00Z", "temp_c": 4.0}', "timestamp 0001-01-01T00:00:00+00:00"),
        (b'{"ts": "2026-11-01T00:00:00Z", "temp_c": "5.5"}', "temp_c: must be a JSON number"),
        (b'{"ts": "2026-11-01T00:00:00Z", "temp_c": true}', "temp_c: must be a JSON number"),
    ],
    ids=["5000-digit-integer", "negative-epoch", "year-0001", "text-number", "boolean-number"],
)
async def test_hostile_values_are_dead_lettered_and_the_fleet_goes_on(
    settings: Settings,
    db_dsn: str,
    attack: bytes,
    reason: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Before: the 5,000-digit integer dropped the MQTT connection on every re-delivery; the
    old times were stored (creating chunks for 1969 and year 1) and "5.5" was stored as 5.5."""
    _seed_devices(db_dsn)
    topic = telemetry_topic(settings.mqtt.topic_root, DEVICE)
    with caplog.at_level(logging.INFO, logger="ingest.service"):
        await _send_and_settle(settings, db_dsn, [(topic, attack)])
    ((stored_reason, stored),) = _rows(db_dsn, "SELECT reason, payload FROM dead_letters")
    assert reason in stored_reason
    assert bytes(stored) == attack
    assert _one(db_dsn, "SELECT count(*) FROM readings WHERE ts < '2000-01-01'") == 0
    assert _one(db_dsn, "SELECT count(*) FROM readings WHERE temp_c <> 4.0") == 0
    chunks = _one(
        db_dsn,
        "SELECT count(*) FROM timescaledb_information.chunks"
        " WHERE hypertable_name = 'readings' AND range_start < '2000-01-01'",
    )
    assert chunks == 0
    assert "MQTT connection lost" not in caplog.text


async def test_dead_letter_log_lines_are_bounded(
    settings: Settings, db_dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Before: a reason quoting 100 KB of attacker text made a 100 KB log line."""
    _seed_devices(db_dsn)
    root = settings.mqtt.topic_root
    long_ts = json.dumps({"ts": "x" * 100_000, "temp_c": 4.0}).encode()
    long_device = "L" * 30_000  # malformed (too long) device id in the topic
    attack = [
        (telemetry_topic(root, DEVICE), long_ts),
        (telemetry_topic(root, long_device), reading_payload(Reading(DEVICE, datetime.now(UTC)))),
    ]
    with caplog.at_level(logging.INFO, logger="ingest.service"):
        await _send_and_settle(settings, db_dsn, attack)
    lines = [r.getMessage() for r in caplog.records if "dead letter from" in r.getMessage()]
    assert len(lines) == 2
    assert all(len(line) < 600 for line in lines), [len(line) for line in lines]
    assert all("more characters)" in line for line in lines)
    reasons = [r[0] for r in _rows(db_dsn, "SELECT reason FROM dead_letters")]
    assert all(len(r) <= 600 for r in reasons)


# --- start-up and stop (`coldchain ingest`, a real process) ---------------------------------


def _cluster() -> PostgresCluster:
    """A PostgreSQL of this test's own, not started yet (in a folder the postgres account
    can reach, as tests/fixtures/services.py makes its own)."""
    root = Path(tempfile.mkdtemp(prefix="coldchain-late-pg-"))
    root.chmod(0o755)
    return PostgresCluster(root / "data", free_port(), extra_conf={"fsync": "off"})


async def _wait_log(proc: Proc, text: str, count: int = 1, within: float = 20.0) -> None:
    deadline = time.monotonic() + within
    while proc.output().count(text) < count:
        assert proc.alive(), proc.output()
        assert time.monotonic() < deadline, proc.output()
        await asyncio.sleep(0.1)


def _stop_timed(proc: Proc) -> tuple[int, float]:
    """SIGTERM; the exit code and how long it took to exit."""
    started = time.monotonic()
    proc.popen.send_signal(signal.SIGTERM)
    code = proc.popen.wait(10)
    return code, time.monotonic() - started


async def test_started_before_the_database_it_waits_then_ingests(settings: Settings) -> None:
    """Before: it exited with a traceback after 30 s of PoolTimeout."""
    pg = _cluster()
    s = settings.model_copy(
        update={"db": settings.db.model_copy(update={"port": pg.port, "name": "late"})}
    )
    try:
        with ingester(s) as proc:
            await _wait_log(proc, "waiting for the database", count=2)
            pg.start()
            pg.ensure_database(
                "late", OWNER_USER, OWNER_PASSWORD, app_user=APP_USER, app_password=APP_PASSWORD
            )
            migrate(f"postgresql://{OWNER_USER}:{OWNER_PASSWORD}@127.0.0.1:{pg.port}/late")
            dsn = f"postgresql://{APP_USER}:{APP_PASSWORD}@127.0.0.1:{pg.port}/late"
            _seed_devices(dsn)
            await proc.ready(within=30)
            readings = _good(50, datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1))
            await _publish(s.mqtt.port, _messages(s.mqtt.topic_root, readings))
            deadline = time.monotonic() + 20
            while _one(dsn, "SELECT count(*) FROM readings") < len(readings):
                assert time.monotonic() < deadline, proc.output()
                await asyncio.sleep(0.1)
            code, took = _stop_timed(proc)
            assert code == 0 and took < 4, (code, took, proc.output())
            assert "Traceback" not in proc.output()
    finally:
        pg.stop()
        shutil.rmtree(pg.data_dir.parent, ignore_errors=True)


async def test_sigterm_while_waiting_for_the_database_stops_at_once(settings: Settings) -> None:
    s = settings.model_copy(update={"db": settings.db.model_copy(update={"port": free_port()})})
    with ingester(s) as proc:
        await _wait_log(proc, "waiting for the database")
        code, took = _stop_timed(proc)
        assert code == 0 and took < 3, (code, took, proc.output())
        assert "Traceback" not in proc.output()


async def test_sigterm_during_a_database_outage_stops_within_seconds_and_acks_nothing_uncommitted(
    settings: Settings, db_dsn: str, db_name: str, pg_cluster: PostgresCluster
) -> None:
    """Before: about 30 s (a pool timeout). Held messages stay unacknowledged: the next run
    stores them."""
    _seed_devices(db_dsn)
    readings = _good(300, datetime.now(UTC).replace(microsecond=0) - timedelta(days=1))
    root = settings.mqtt.topic_root
    su = pg_cluster.superuser_dsn()

    def outage(on: bool) -> None:
        with psycopg.connect(su, autocommit=True) as conn:
            conn.execute(f'ALTER DATABASE "{db_name}" WITH ALLOW_CONNECTIONS {not on}')
            if on:
                conn.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                    (db_name,),
                )

    with ingester(settings) as proc:
        await proc.ready()
        outage(True)
        try:
            await _publish(settings.mqtt.port, _messages(root, readings))
            await _wait_log(proc, "commit of", within=30)
            code, took = _stop_timed(proc)
            assert code == 0 and took < 4, (code, took, proc.output())
            assert "not acknowledged" in proc.output()
        finally:
            outage(False)
    with ingester(settings) as proc:
        await proc.ready()
        deadline = time.monotonic() + 30
        while _one(db_dsn, "SELECT count(*) FROM readings") < len(readings):
            assert time.monotonic() < deadline, proc.output()
            await asyncio.sleep(0.1)
        assert proc.terminate() == 0
    assert _one(db_dsn, "SELECT count(DISTINCT (device_id, ts)) FROM readings") == len(readings)


async def test_a_missing_grant_holds_the_readings_instead_of_dead_lettering_them(
    settings: Settings, db_dsn: str, superuser_dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A deployment fault (the services' role lost INSERT on readings) refuses every message
    alike. The batch is split down to one message, which is then held and retried, loudly: not
    the whole fleet dead-lettered one message at a time. Once the grant is back, all is stored."""
    _seed_devices(db_dsn)
    root = settings.mqtt.topic_root
    readings = _good(50, datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2))
    with psycopg.connect(superuser_dsn, autocommit=True) as conn:
        conn.execute("REVOKE INSERT ON readings FROM coldchain_app")
    async with AsyncConnectionPool(db_dsn, min_size=1, max_size=2, open=False) as pool:
        await pool.wait()
        with caplog.at_level(logging.WARNING, logger="ingest.service"):
            async with _running(settings, TimescaleSink(pool)) as ing:
                await _publish(settings.mqtt.port, _messages(root, readings))
                await _until(
                    lambda: any("not its data" in r.getMessage() for r in caplog.records),
                    within=15,
                    what="the refusal reported as a deployment fault",
                )
                assert _one(db_dsn, "SELECT count(*) FROM dead_letters") == 0
                assert _one(db_dsn, "SELECT count(*) FROM readings") == 0
                assert ing._unacked > 0  # held, not acknowledged
                with psycopg.connect(superuser_dsn, autocommit=True) as conn:
                    conn.execute("GRANT INSERT ON readings TO coldchain_app")
                await _until(
                    lambda: (
                        _one(db_dsn, "SELECT count(*) FROM readings") == len(readings)
                        and ing._unacked == 0
                    ),
                    within=20,
                    what="every reading stored once the grant is back",
                )
    assert _one(db_dsn, "SELECT count(*) FROM dead_letters") == 0
    faults = [r for r in caplog.records if "not its data" in r.getMessage()]
    assert faults and all(r.levelno == logging.ERROR for r in faults)
