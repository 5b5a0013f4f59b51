"""Rules engine latency: from a reading committed to its alert stored (and its webhook received).

Run: ``.venv/bin/python bench/rules_latency.py [--seconds 180]`` (``make bench`` runs it).
It starts a private PostgreSQL (``bench._common.local_stack``), ``coldchain rules`` as its own
process (as in production: woken by LISTEN/NOTIFY), and a webhook receiver in this process.

The demo load: six shipments, one logger each, one reading each per second (the demo fleet's
one-minute loggers at the simulator's default speed of 60), committed through the ingester's
own sink, one transaction a second. Time is compressed the same way for the rules: the loggers
are registered with a 1 s interval and the product has a 5 s alarm delay. Each logger runs a
20 s cycle (10 s at 5 °C, 10 s at 12 °C, phases staggered), so each cycle's 6th warm reading
is the one whose commit makes an alert. The benchmark acknowledges every alert as soon as it
sees it (through the API's own query function); the engine then resolves it when the excursion
is over, so the next cycle opens a new alert.

Measured per alert: from ``commit()`` of the triggering reading returning to the alert row being
visible to another connection (polled every 10 ms, so figures are up to 10 ms high), and to the
signed webhook of the "opened" event arriving at the receiver.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import PASSWORD, local_stack, wait_for_log
from coldchain.settings import Settings
from coldchain.telemetry import Reading
from db.queries import alerts as alert_q
from ingest.sink import Batch, TimescaleSink

GTIN = "09521234543213"
SHIPMENTS = 6
CYCLE_S = 20
WARM_FROM_S = 10
ALARM_DELAY_S = 5
POLL_S = 0.01


class Receiver:
    """Webhook receiver in a thread: when each "opened" notification arrived."""

    def __init__(self) -> None:
        self.opened: dict[int, float] = {}
        self.opened_count: dict[int, int] = {}  # a webhook received twice shows here
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                arrived = time.perf_counter()
                payload = json.loads(body)
                if payload["event"] == "opened":
                    alert_id = payload["alert"]["id"]
                    receiver.opened.setdefault(alert_id, arrived)
                    receiver.opened_count[alert_id] = receiver.opened_count.get(alert_id, 0) + 1
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


def seed(dsn: str, start: datetime, shipments: int = SHIPMENTS) -> dict[str, int]:
    """Product, loggers, shipments in transit; returns shipment id by device."""
    found = {}
    with psycopg.connect(dsn) as conn:
        conn.execute(
            """INSERT INTO products (gtin, name, temp_min_c, temp_max_c, freeze_limit_c,
                   alarm_delay_s) VALUES (%s, 'Demo vaccine', 2, 8, 0, %s)""",
            (GTIN, ALARM_DELAY_S),
        )
        for i in range(shipments):
            device = f"DEMO-LOG-{i + 1:06d}"
            conn.execute("INSERT INTO devices (device_id, interval_s) VALUES (%s, 1)", (device,))
            row = conn.execute(
                """INSERT INTO shipments (reference, product_gtin, origin, destination, status)
                   VALUES (%s, %s, 'Basel', 'Milan', 'in_transit') RETURNING shipment_id""",
                (f"DEMO-SHP-{i + 1:05d}", GTIN),
            ).fetchone()
            assert row is not None
            conn.execute(
                "INSERT INTO device_assignments (device_id, shipment_id, during) "
                "VALUES (%s, %s, tstzrange(%s, %s))",
                (device, row[0], start - timedelta(minutes=1), start + timedelta(days=1)),
            )
            found[device] = int(row[0])
    return found


def rules_process(
    settings: Settings, webhook: str, log: Path, extra_env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COLDCHAIN_")}
    env.update(
        COLDCHAIN_DB__PORT=str(settings.db.port),
        COLDCHAIN_DB__NAME=settings.db.name,
        COLDCHAIN_DB__PASSWORD=PASSWORD,
        # A late tick must not look like a data gap to 1 s loggers; clear 3 s after the warm end.
        COLDCHAIN_ALERTS__GAP_FACTOR="5",
        COLDCHAIN_ALERTS__CLEAR_DELAY_S="3",
        COLDCHAIN_ALERTS__WEBHOOK_URLS=json.dumps([webhook]),
        COLDCHAIN_ALERTS__WEBHOOK_SECRET="bench-secret",
        COLDCHAIN_LOG_LEVEL="INFO",
    )
    env.update(extra_env or {})
    return subprocess.Popen(
        [sys.executable, "-m", "launcher.cli", "rules"],
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )


def temperature(second: int, index: int) -> float:
    phase = (second + 3 * index) % CYCLE_S
    return 12.0 if phase >= WARM_FROM_S else 5.0


def is_trigger(second: int, index: int) -> bool:
    return (second + 3 * index) % CYCLE_S == WARM_FROM_S + ALARM_DELAY_S


async def drive(
    settings: Settings, shipments: dict[str, int], start: datetime, seconds: int
) -> dict[int, tuple[float, float]]:
    """Write the readings once a second; poll for alerts; return {alert: (commit, seen)}."""
    devices = list(shipments)
    committed: dict[tuple[int, datetime], float] = {}
    seen: dict[int, tuple[float, float]] = {}
    done = asyncio.Event()

    async def poll() -> None:
        # Every alert not yet acknowledged (not those after the last id seen: with several
        # engines, alert ids are not committed in order).
        with psycopg.connect(settings.db.dsn, row_factory=dict_row, autocommit=True) as conn:
            while not done.is_set():
                found = conn.execute(
                    "SELECT alert_id, shipment_id, triggered_at FROM alerts "
                    "WHERE state = 'open' AND rule_key = 'temp_high' ORDER BY alert_id"
                ).fetchall()
                now = time.perf_counter()
                for row in found:
                    key = (row["shipment_id"], row["triggered_at"])
                    if key in committed:
                        seen[row["alert_id"]] = (committed[key], now)
                    # A person acknowledges it; the engine resolves it once it is over.
                    alert_q.acknowledge_alert(
                        conn=conn, alert_id=row["alert_id"], by="bench", comment="seen"
                    )
                await asyncio.sleep(POLL_S)

    async with AsyncConnectionPool(settings.db.dsn, min_size=1, max_size=2, open=False) as pool:
        await pool.wait()
        sink = TimescaleSink(pool)
        poller = asyncio.create_task(poll())
        t0 = time.perf_counter()
        for k in range(seconds):
            await asyncio.sleep(max(t0 + k + 0.2 - time.perf_counter(), 0))
            ts = start + timedelta(seconds=k)
            batch = [Reading(d, ts, temperature(k, i), 45.0) for i, d in enumerate(devices)]
            await sink.write(Batch.of(batch))
            now = time.perf_counter()
            for i, d in enumerate(devices):
                if is_trigger(k, i):
                    committed[(shipments[d], ts)] = now
        await asyncio.sleep(2.0)
        done.set()
        await poller
    return seen


def report(name: str, values: list[float]) -> None:
    ms = np.array(values) * 1000
    print(
        f"{name}: n={len(ms)}  p50 {np.percentile(ms, 50):.0f} ms  "
        f"p95 {np.percentile(ms, 95):.0f} ms  max {ms.max():.0f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=180)
    args = parser.parse_args()
    receiver = Receiver()
    with local_stack() as stack, tempfile.TemporaryDirectory() as tmp:
        settings = stack.new_database()
        start = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=2)
        shipments = seed(settings.db.dsn, start)
        log = Path(tmp) / "rules.log"
        proc = rules_process(settings, receiver.url, log)
        try:
            wait_for_log(log, "rules engine running")
            delay = (start - datetime.now(UTC)).total_seconds()
            time.sleep(max(delay, 0))
            seen = asyncio.run(drive(settings, shipments, start, args.seconds))
            time.sleep(1.0)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
        receiver.close()
        problems = [
            line
            for line in log.read_text(errors="replace").splitlines()
            if " ERROR " in line or " WARNING " in line or line.startswith("Traceback")
        ]
        for line in problems[:10]:
            print(f"engine log: {line}")
        stored = [s - c for c, s in seen.values()]
        delivered = [receiver.opened[a] - c for a, (c, _s) in seen.items() if a in receiver.opened]
        print(f"demo load: {SHIPMENTS} loggers × 1 reading/s for {args.seconds} s "
              f"({SHIPMENTS * args.seconds:,} readings), {len(seen)} alerts")  # fmt: skip
        report("reading committed -> alert stored   ", stored)
        report("reading committed -> webhook received", delivered)
        p95 = float(np.percentile(np.array(stored), 95))
        print(f"target p95 < 2 s: {'met' if p95 < 2.0 else 'NOT met'} ({p95:.3f} s)")


if __name__ == "__main__":
    main()
