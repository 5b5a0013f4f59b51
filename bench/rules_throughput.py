"""Rules engine throughput: 1,000 shipments × 24 h of one-minute readings through the engine.

Run: ``.venv/bin/python bench/rules_throughput.py [--shipments 1000] [--hours 24]``
(``make bench`` runs it). It starts a private PostgreSQL (``bench._common.local_stack``).

What is measured
----------------
1. **Replay.** The readings of every logger are committed as the ingester would have committed
   hourly uploads (one ``reading_changes`` row per logger and hour, 24,000 of them), with the
   engine stopped; then one ``RulesEngine.process_changes()`` catches up, timed: every pair is
   evaluated over its whole day by every rule (excursions, stability budget, MKT over 24 h,
   humidity, battery, forecast), excursions and alerts are written, the cursor moves. Printed:
   readings evaluated per second.
2. **Steady state.** One more minute of readings for every logger, then one round, timed: each
   pair is re-judged from the checkpoint the replay took (``alerts.checkpoints``), which is the
   work the engine does every minute at this fleet size. How that round grows with the length
   of the trip, and late data, are ``bench/rules_incremental.py``'s.

The fleet: a 2–8 °C vaccine (15 min alarm delay, 72 h budget, MKT limit 8 °C, 20–80 %RH);
5 % of the shipments have a reefer failure (40 min at 12 °C), 1 % a freezing hour, 1 % a
humidity excursion and 1 % a dying battery; the rest is 5 °C with sensor noise.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import psycopg
from psycopg_pool import AsyncConnectionPool

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from alerts.rounds import RulesEngine
from bench._common import local_stack
from coldchain.settings import Settings

T0 = datetime(2026, 11, 1, tzinfo=UTC)
GTIN = "09521234543213"


def profiles(
    n_shipments: int, minutes: int, seed: int = 1
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Temperature, humidity and battery per (logger, minute)."""
    rng = np.random.default_rng(seed)
    temp = 5.0 + rng.normal(0.0, 0.3, (n_shipments, minutes))
    rh = 50.0 + rng.normal(0.0, 2.0, (n_shipments, minutes))
    battery = np.linspace(0.9, 0.8, minutes)[None, :].repeat(n_shipments, axis=0)
    starts = rng.integers(60, minutes - 120, n_shipments)
    for i in range(n_shipments):
        s = int(starts[i])
        if i % 20 == 0:  # a reefer failure
            temp[i, s : s + 40] = 12.0 + rng.normal(0.0, 0.3, 40)
        elif i % 100 == 1:  # frozen for an hour
            temp[i, s : s + 60] = -1.5
        elif i % 100 == 2:  # wet
            rh[i, s : s + 60] = 90.0
        elif i % 100 == 3:  # the battery dies
            battery[i, s:] = np.linspace(0.3, 0.05, minutes - s)
    return temp, rh, battery


def seed(dsn: str, n_shipments: int, hours: int) -> list[str]:
    devices = [f"LOG-{i:05d}" for i in range(n_shipments)]
    with psycopg.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute(
            """INSERT INTO products (gtin, name, temp_min_c, temp_max_c, freeze_limit_c,
                   alarm_delay_s, stability_budget_s, mkt_limit_c, rh_min, rh_max)
               VALUES (%s, 'Vaccine 10 x 0.5 mL', 2, 8, 0, 900, 259200, 8, 20, 80)""",
            (GTIN,),
        )
        with cur.copy("COPY devices (device_id, interval_s) FROM STDIN") as copy:
            for d in devices:
                copy.write_row((d, 60))
        cur.execute(
            """INSERT INTO shipments (reference, product_gtin, origin, destination, status)
               SELECT 'SHP-' || lpad(i::text, 5, '0'), %s, 'Basel', 'Milan', 'in_transit'
               FROM generate_series(0, %s - 1) AS i""",
            (GTIN, n_shipments),
        )
        cur.execute(
            """INSERT INTO device_assignments (device_id, shipment_id, during)
               SELECT 'LOG-' || substr(reference, 5), shipment_id, tstzrange(%s, %s)
               FROM shipments""",
            (T0 - timedelta(hours=1), T0 + timedelta(hours=hours + 24)),
        )
    return devices


def load_readings(dsn: str, devices: list[str], minutes: int) -> float:
    """Commit the readings (text COPY) and the change log of hourly uploads, untimed."""
    temp, rh, battery = profiles(len(devices), minutes)
    stamps = [(T0 + timedelta(minutes=m)).isoformat() for m in range(minutes)]
    started = time.perf_counter()
    with psycopg.connect(dsn) as conn, conn.cursor() as cur:
        with cur.copy("COPY readings (device_id, ts, temp_c, rh, battery) FROM STDIN") as copy:
            for i, d in enumerate(devices):
                buf = io.StringIO()
                for m in range(minutes):
                    buf.write(
                        f"{d}\t{stamps[m]}\t{temp[i, m]:.2f}\t{rh[i, m]:.1f}\t{battery[i, m]:.3f}\n"
                    )
                copy.write(buf.getvalue())
        # What the ingester records per commit: here one upload per logger and hour.
        cur.execute(
            """INSERT INTO reading_changes (device_id, ts_min, ts_max, n_readings)
               SELECT device_id, min(ts), max(ts), count(*) FROM readings
               GROUP BY device_id, date_trunc('hour', ts) ORDER BY min(ts), device_id"""
        )
        cur.execute(
            """INSERT INTO device_state (device_id, ts, temp_c, rh, battery, received_at)
               SELECT DISTINCT ON (device_id) device_id, ts, temp_c, rh, battery, now()
               FROM readings ORDER BY device_id, ts DESC"""
        )
        conn.commit()
        conn.execute("ANALYZE readings")
    return time.perf_counter() - started


async def replay(settings: Settings, devices: list[str], minutes: int) -> None:
    dsn = settings.db.dsn
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT count(*) FROM reading_changes").fetchone()
    changes = int(row[0]) if row else 0
    end = T0 + timedelta(minutes=minutes)
    async with AsyncConnectionPool(dsn, min_size=1, max_size=2, open=False) as pool:
        await pool.wait()
        engine = RulesEngine(pool, settings, clock=lambda: end)
        await engine.setup()
        started = time.perf_counter()
        await engine.process_changes()
        elapsed = time.perf_counter() - started
        s = engine.stats
        print(f"replay: {s.readings_evaluated:,} readings of {s.pairs_evaluated:,} loggers "
              f"({changes:,} uploads) evaluated in {elapsed:.1f} s")  # fmt: skip
        print(f"  -> {s.readings_evaluated / elapsed:,.0f} readings evaluated per second")
        print(f"  written: {s.excursions_written} excursions, {s.states_written} rule states, "
              f"{s.alerts_opened} alerts")  # fmt: skip

        # Steady state: the next minute for every logger.
        with psycopg.connect(dsn) as conn, conn.cursor() as cur:
            stamp = T0 + timedelta(minutes=minutes)
            with cur.copy("COPY readings (device_id, ts, temp_c, rh, battery) FROM STDIN") as copy:
                for d in devices:
                    copy.write_row((d, stamp, 5.0, 50.0, 0.8))
            cur.execute(
                "INSERT INTO reading_changes (device_id, ts_min, ts_max, n_readings) "
                "SELECT unnest(%s::text[]), %s, %s, 1",
                (devices, stamp, stamp),
            )
            conn.commit()
        before = s.readings_evaluated
        engine._clock = lambda: end + timedelta(minutes=1)
        started = time.perf_counter()
        await engine.process_changes()
        elapsed = time.perf_counter() - started
        print(f"steady state: one new minute for {len(devices):,} loggers, each re-judged from its "
              f"checkpoint ({s.readings_evaluated - before:,} readings): {elapsed:.2f} s")  # fmt: skip

    with psycopg.connect(dsn) as conn:
        by_rule = conn.execute(
            "SELECT rule_key, severity, count(*) FROM alerts GROUP BY 1, 2 ORDER BY 1, 2"
        ).fetchall()
    print("  alerts: " + ", ".join(f"{k} {sev} {n}" for k, sev, n in by_rule))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shipments", type=int, default=1000)
    parser.add_argument("--hours", type=int, default=24)
    args = parser.parse_args()
    minutes = args.hours * 60
    with local_stack() as stack:
        settings = stack.new_database()
        devices = seed(settings.db.dsn, args.shipments, args.hours)
        loaded = load_readings(settings.db.dsn, devices, minutes)
        print(f"loaded {len(devices) * minutes:,} readings ({args.shipments:,} shipments × "
              f"{args.hours} h × 1/min) in {loaded:.1f} s (not part of the figures)")  # fmt: skip
        asyncio.run(replay(settings, devices, minutes))


if __name__ == "__main__":
    main()
