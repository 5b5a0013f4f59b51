"""Ingest throughput: our ingester against the broker's own rate and the COPY rate, same run.

Run: ``.venv/bin/python bench/ingest_throughput.py [--messages N] [--batched-readings N]``
(``make bench`` runs it). Everything runs on this machine at once, as in the issue: publisher,
Mosquitto, ingester and PostgreSQL. The machine is shared and noisy, so compare the ratios,
not the absolute figures.

Every run uses the same publisher (``bench._common.publish_all``: pre-encoded QoS 1 packets on
a bare socket, so that what is measured is the broker and what is behind it, not a Python MQTT
client) and the same clock: the ``received_at`` stamps the writers leave on the rows (see
``Watcher``). Live: all rows over the time from the first publish to the last write. Draining:
the rows written between the first write and the last, over that time, so that the start-up of
a process is not counted.

Measured, each on a fresh database:
1. broker alone: N QoS 1 messages from the publisher to a QoS 1 subscriber (best of 3);
2. binary COPY of N rows into the readings hypertable (with its indexes);
3. live: single-reading messages published while ``coldchain ingest`` runs;
4. draining: the same N messages queued at the broker first, then the ingester started;
5. 60-reading uploads, live and draining;
6. mq-bridge (if installed) draining the same single-reading backlog into the same table.

The peak resident memory (VmHWM) of each ingester process is printed with its rate.
"""

from __future__ import annotations

import argparse
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import (
    Counter,
    Stack,
    cpu_seconds,
    ingester_process,
    local_stack,
    peak_rss_mb,
    publish_all,
    seed_devices,
    wait_for_log,
)
from coldchain.settings import Settings
from coldchain.telemetry import Reading, batch_payload, reading_payload, telemetry_topic

T0 = datetime(2026, 11, 1, tzinfo=UTC)
DEVICES = [f"LOG-{i:05d}" for i in range(1000)]
Messages = list[tuple[str, bytes]]
#: Extra settings for the ingester processes (--batch-max-readings).
INGEST_ENV: dict[str, str] = {}


def readings(n: int) -> list[Reading]:
    return [
        Reading(DEVICES[i % len(DEVICES)], T0 + timedelta(minutes=i // len(DEVICES)),
                5.0 + (i % 13) / 10, 45.0, 52.37, 4.89, 0.9)
        for i in range(n)
    ]  # fmt: skip


def single_messages(root: str, rs: list[Reading]) -> Messages:
    return [(telemetry_topic(root, r.device_id), reading_payload(r)) for r in rs]


def batch_messages(root: str, rs: list[Reading], size: int) -> Messages:
    by_device: dict[str, list[Reading]] = {}
    for r in rs:
        by_device.setdefault(r.device_id, []).append(r)
    out = []
    for d, mine in by_device.items():
        for i in range(0, len(mine), size):
            out.append((telemetry_topic(root, d), batch_payload(d, mine[i : i + size])))
    return out


@dataclass
class Result:
    rate: float
    peak_rss_mb: float | None = None
    cpu_us: float | None = None  # the ingester's CPU time per reading stored, in µs


class Watcher:
    """Waits for all rows, then takes the timing from the rows themselves.

    Both our ingester and mq-bridge stamp ``received_at`` with their transaction's start
    (``now()``), so the stored rows say when each batch was written, to the microsecond, without
    a watcher that polls ``count(*)`` at a high rate (on 600,000 rows that costs the database
    a good part of a core, and would slow down what it measures). The count is polled twice a
    second only to know when everything is in.
    """

    def __init__(self, dsn: str, total: int, timeout: float = 600.0) -> None:
        self._dsn, self._total, self._timeout = dsn, total, timeout
        self.stored = 0
        self._thread = threading.Thread(target=self._run, name="bench-watcher", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        deadline = time.monotonic() + self._timeout
        with psycopg.connect(self._dsn, autocommit=True) as conn:
            while time.monotonic() < deadline:
                row = conn.execute("SELECT count(*) FROM readings").fetchone()
                self.stored = int(row[0]) if row else 0
                if self.stored >= self._total:
                    return
                time.sleep(0.5)

    def wait(self) -> None:
        self._thread.join()
        if self.stored < self._total:
            raise TimeoutError(f"only {self.stored} of {self._total} rows stored")

    def _stamps(self) -> tuple[float, float, int]:
        """(first batch's start, last batch's start, rows in the last batch), epoch seconds."""
        with psycopg.connect(self._dsn) as conn:
            row = conn.execute(
                """SELECT extract(epoch FROM first), extract(epoch FROM last),
                          (SELECT count(*) FROM readings WHERE received_at = last)
                   FROM (SELECT min(received_at) AS first, max(received_at) AS last
                         FROM readings) AS t"""
            ).fetchone()
        assert row is not None
        return float(row[0]), float(row[1]), int(row[2])

    def rate_since(self, started_epoch: float) -> float:
        """Live: all rows over the time from the first publish to the last batch's write."""
        _, last, _ = self._stamps()
        return self._total / (last - started_epoch)

    def rate(self) -> float:
        """Draining: the rows written between the first batch's start and the last one's."""
        first, last, in_last = self._stamps()
        if last <= first:  # everything in one transaction: too short to measure
            return float("nan")
        return (self._total - in_last) / (last - first)


def broker_rate(stack: Stack, n: int) -> float:
    """The broker's own QoS 1 throughput, publisher to subscriber, best of three."""
    best = 0.0
    for _ in range(3):
        root = f"bench/broker-{time.time_ns()}"
        counter = Counter(stack.broker.port, f"{root}/#")
        msgs = single_messages(root, readings(n))
        started = time.perf_counter()
        publish_all(stack.broker.port, msgs)
        counter.wait(n, 120)
        best = max(best, n / (counter.last - started))
        counter.close()
    return best


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


def _fresh(stack: Stack) -> Settings:
    s = stack.new_database()
    seed_devices(s.db.dsn, DEVICES)
    return s


def _stop(proc: Any) -> float | None:
    rss = peak_rss_mb(proc.pid)
    proc.send_signal(signal.SIGTERM)
    proc.wait(60)
    return rss


def _cpu_per_reading(proc: Any, cpu_before: float | None, n: int) -> float | None:
    """The ingester's CPU µs per reading since ``cpu_before`` (taken once it had subscribed,
    so start-up and imports are not counted)."""
    now = cpu_seconds(proc.pid)
    if now is None or cpu_before is None:
        return None
    return (now - cpu_before) * 1e6 / n


def ingest_live(
    stack: Stack, msgs_of: Callable[[str], Messages], n_readings: int, logdir: Path, name: str
) -> Result:
    s = _fresh(stack)
    msgs = msgs_of(s.mqtt.topic_root)
    log = logdir / f"{name}.log"
    proc = ingester_process(s, log, **INGEST_ENV)
    try:
        wait_for_log(log, "ingester subscribed")
        watcher = Watcher(s.db.dsn, n_readings)
        cpu = cpu_seconds(proc.pid)
        started = time.time()  # compared with the database's clock: same machine
        publish_all(stack.broker.port, msgs)
        watcher.wait()
        used = _cpu_per_reading(proc, cpu, n_readings)
        return Result(watcher.rate_since(started), _stop(proc), used)
    finally:
        if proc.poll() is None:
            proc.kill()


def ingest_drain(
    stack: Stack, msgs_of: Callable[[str], Messages], n_readings: int, logdir: Path, name: str
) -> Result:
    s = _fresh(stack)
    msgs = msgs_of(s.mqtt.topic_root)
    log = logdir / f"{name}.log"
    proc = ingester_process(
        s, log, **INGEST_ENV
    )  # creates the persistent session and its subscription
    wait_for_log(log, "ingester subscribed")
    # The second process drains from its first moment, so its start-up (imports, connections)
    # is taken as this first one's: what it had used once it had subscribed.
    start_up = cpu_seconds(proc.pid)
    _stop(proc)
    publish_all(stack.broker.port, msgs)  # the backlog waits at the broker
    watcher = Watcher(s.db.dsn, n_readings)
    proc = ingester_process(s, log, **INGEST_ENV)
    try:
        cpu = start_up
        watcher.wait()
        used = _cpu_per_reading(proc, cpu, n_readings)
        return Result(watcher.rate(), _stop(proc), used)
    finally:
        if proc.poll() is None:
            proc.kill()


def mq_bridge_drain(stack: Stack, n: int) -> str:
    """mq-bridge (MQTT -> binary COPY) draining the same single-reading backlog; or why not."""
    try:
        import mq_bridge
    except ImportError:
        return "not installed (pip install mq-bridge to compare)"
    s = _fresh(stack)
    root = s.mqtt.topic_root
    route_config: dict[str, Any] = {
        "batch_size": 2000,
        "input": {
            "mqtt": {
                "url": f"tcp://127.0.0.1:{stack.broker.port}",
                "topic": f"$share/mqb/{root}/devices/+/telemetry",
                "client_id": f"mqb-{s.db.name}",
                "qos": 1,
                "clean_session": False,
                "session_expiry_interval": 3600,
                "max_inflight": 4000,
                "queue_capacity": 4000,
            }
        },
        "output": {
            "sqlx": {
                "url": f"postgres://coldchain:bench@127.0.0.1:{s.db.port}/{s.db.name}",
                "table": "readings",
                "bulk_copy": True,
                # COPY takes one token per column, no casts: PostgreSQL parses the ISO text.
                "insert_query": (
                    "INSERT INTO readings (device_id, ts, temp_c, rh, lat, lon, battery) VALUES "
                    "(${payload:device_id}, ${payload:ts}, ${payload:temp_c}, ${payload:rh}, "
                    "${payload:lat}, ${payload:lon}, ${payload:battery})"
                ),
            }
        },
    }
    try:
        # First connection: creates its persistent session, so the backlog queues for it.
        route = mq_bridge.Route.from_config(route_config, name="bench-session")
        route.start()
        time.sleep(1.0)
        route.stop()
        publish_all(stack.broker.port, single_messages(root, readings(n)))
        watcher = Watcher(s.db.dsn, n, timeout=300)
        route = mq_bridge.Route.from_config(route_config, name="bench-drain")
        route.start()
        try:
            watcher.wait()
        finally:
            route.stop()
    except Exception as exc:  # report why, do not hide the rest of the results
        return f"could not run here: {type(exc).__name__}: {exc}"
    return f"{watcher.rate():>10,.0f} readings/s"


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--messages", type=int, default=100_000, help="single-reading messages per run"
    )
    parser.add_argument(
        "--batched-readings", type=int, default=600_000, help="readings in 60-reading uploads"
    )
    parser.add_argument(
        "--batch-max-readings",
        type=int,
        default=None,
        help="COLDCHAIN_INGEST__BATCH_MAX_READINGS for the ingester (default: the settings')",
    )
    args = parser.parse_args()
    n, nb = args.messages, args.batched_readings
    batch = args.batch_max_readings or Settings(_env_file=None).ingest.batch_max_readings
    INGEST_ENV["COLDCHAIN_INGEST__BATCH_MAX_READINGS"] = str(batch)
    logdir = Path(tempfile.mkdtemp(prefix="bench-ingest-"))

    def singles(root: str) -> Messages:
        return single_messages(root, readings(n))

    def batches(root: str) -> Messages:
        return batch_messages(root, readings(nb), 60)

    with local_stack() as stack:
        broker = broker_rate(stack, n)
        copy = copy_rate(stack, max(n, 200_000))
        live = ingest_live(stack, singles, n, logdir, "live")
        drain = ingest_drain(stack, singles, n, logdir, "drain")
        batched = ingest_live(stack, batches, nb, logdir, "batched")
        batched_drain = ingest_drain(stack, batches, nb, logdir, "batched-drain")
        bridge = mq_bridge_drain(stack, n)

    def ours(label: str, r: Result, target: str, *, vs_broker: float | None) -> None:
        ratio = f"{r.rate / vs_broker:.2f} x broker, " if vs_broker else ""
        rss = f", peak RSS {r.peak_rss_mb:.0f} MB" if r.peak_rss_mb else ""
        rss += f", {r.cpu_us:.1f} CPU µs/reading" if r.cpu_us is not None else ""
        print(
            f"{label:<34}{r.rate:>10,.0f} readings/s   = {ratio}{r.rate / copy:.2f} x COPY"
            f"   (target {target}{rss})"
        )

    print(
        f"messages per run: {n:,} single-reading; {nb:,} readings in 60-reading uploads; "
        f"ingester batch_max_readings={batch}"
    )
    print(f"{'broker alone (QoS 1 pub -> sub)':<34}{broker:>10,.0f} msg/s")
    print(f"{'binary COPY into readings':<34}{copy:>10,.0f} rows/s")
    ours("ingest live, single readings", live, ">= 10,000/s", vs_broker=broker)
    ours("ingest draining a backlog", drain, ">= 12,000/s", vs_broker=broker)
    # A 60-reading upload is one message: the broker's message rate is no ceiling for these.
    ours("ingest live, 60-reading uploads", batched, ">= 80,000/s", vs_broker=None)
    ours("ingest draining 60-reading uploads", batched_drain, "none set", vs_broker=None)
    if bridge.lstrip()[:1].isdigit():
        rate = float(bridge.split()[0].replace(",", ""))
        print(
            f"{'mq-bridge draining the backlog':<34}{bridge}   = {rate / broker:.2f} x broker; "
            f"ours = {drain.rate / rate:.2f} x mq-bridge"
        )
        print(
            "  (mq-bridge copies rows as they come: no validation, no dead letters, no duplicate"
            " handling, no device_state/change log; ours does all four in the same transaction)"
        )
    else:
        print(f"{'mq-bridge':<34}{bridge}")
    print(f"ingester logs: {logdir}")


if __name__ == "__main__":
    main()
