"""The database's side of ingest: what each way of storing a batch costs PostgreSQL per reading.

Run: ``.venv/bin/python bench/ingest_statements.py [--readings N] [--batch N]`` (about a minute).

No broker and no ingester: the batches are encoded before the clock starts and sent one after the
other on one connection, so what is measured is PostgreSQL's own work, as the CPU time of the
backend that runs the statements (``/proc/<pid>/stat``) and the wall-clock rate. Each line runs
on a fresh database with the devices registered, for two shapes of traffic:

- **uploads**: 60 readings of one logger after another (buffered uploads);
- **single**: one reading from each of 1,000 loggers in turn (live traffic), so every batch
  touches 1,000 ``device_state`` rows and writes 1,000 change-log rows.

Lines: binary COPY into ``readings`` (the bench's yardstick: no duplicate handling, no
``device_state``, no change log), ``INSERT_BATCH`` (the ingester's usual statement),
``MERGE_BATCH`` (what it falls back to when a batch holds a duplicate), and the same two with the
per-device parts left out, to show what they cost.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import cpu_seconds, local_stack, seed_devices
from bench.ingest_throughput import DEVICES, T0, readings
from coldchain.settings import Settings
from coldchain.telemetry import Reading
from db.queries import ingest as q
from ingest.sink import Batch, TimescaleSink


def uploads(n: int) -> list[Reading]:
    per_device = n // len(DEVICES)
    out = []
    for chunk in range(0, per_device, 60):
        for d in DEVICES:
            for m in range(chunk, min(chunk + 60, per_device)):
                out.append(Reading(d, T0 + timedelta(minutes=m), 5.0, 45.0, 52.37, 4.89, 0.9))
    return out


def _backend_cpu_s(conn: psycopg.Connection) -> float:
    """CPU seconds of the PostgreSQL backend serving ``conn``."""
    used = cpu_seconds(conn.info.backend_pid)
    assert used is not None, "the backend is gone"
    return used


def _replaced(sql: str, old: str, new: str) -> str:
    """``sql`` with ``old`` replaced, failing when it is not there (the statement changed)."""
    assert old in sql, f"not in the statement any more: {old!r}"
    return sql.replace(old, new)


def _without_changes(sql: str) -> str:
    return _replaced(sql, "%(c_n)b::int[]\n    )", "%(c_n)b::int[]\n    ) WHERE false")


def _without_state(sql: str) -> str:
    return _replaced(
        sql,
        ") AS l (device_id, ts, temp_c, rh, lat, lon, battery)\n    ORDER BY device_id",
        ") AS l (device_id, ts, temp_c, rh, lat, lon, battery) WHERE false",
    )


STATEMENTS: dict[str, str] = {
    "INSERT_BATCH": q.INSERT_BATCH,
    "  without the change log": _without_changes(q.INSERT_BATCH),
    "  without device_state": _without_state(q.INSERT_BATCH),
    "MERGE_BATCH": q.MERGE_BATCH,
}


def measure(run: Callable[[psycopg.Connection], None], dsn: str, n: int) -> tuple[float, float]:
    """(rows per second, backend CPU µs per row) of ``run`` on a fresh connection."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SELECT 1")
        cpu = _backend_cpu_s(conn)
        started = time.perf_counter()
        run(conn)
        elapsed = time.perf_counter() - started
        used = _backend_cpu_s(conn) - cpu
        stored = conn.execute("SELECT count(*) FROM readings").fetchone()
    assert stored is not None and stored[0] == n, f"stored {stored}, expected {n}"
    return n / elapsed, used * 1e6 / n


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--readings", type=int, default=120_000)
    parser.add_argument(
        "--batch", type=int, default=None, help="readings per statement (default: the ingester's)"
    )
    args = parser.parse_args()
    n = args.readings
    size = args.batch or Settings(_env_file=None).ingest.batch_max_readings
    print(f"{n:,} readings, {size:,} per statement, one connection; PostgreSQL backend CPU")
    with local_stack() as stack:
        # "single" is the live order bench/ingest_throughput.py publishes its readings in.
        for shape, make in (("uploads", uploads), ("single", readings)):
            rows = make(n)
            n_rows = len(rows)
            batches = [
                TimescaleSink._params(Batch.of(rows[i : i + size])) for i in range(0, n_rows, size)
            ]

            def copy(conn: psycopg.Connection, rows: list[Reading] = rows) -> None:
                with (
                    conn.cursor() as cur,
                    cur.copy(q.STAGING_COPY.replace("staging_readings", "readings")) as cp,
                ):
                    cp.set_types(q.STAGING_TYPES)
                    for r in rows:
                        cp.write_row((r.device_id, r.ts, r.temp_c, r.rh, r.lat, r.lon, r.battery))

            runs: dict[str, Callable[[psycopg.Connection], None]] = {
                "binary COPY (one stream)": copy
            }
            for name, sql in STATEMENTS.items():

                def statements(
                    conn: psycopg.Connection,
                    sql: str = sql,
                    batches: list[dict[str, Any]] = batches,
                ) -> None:
                    for params in batches:
                        conn.execute(sql, params, binary=True)

                runs[name] = statements
            print(f"-- {shape}")
            base = None
            for name, run in runs.items():
                s = stack.new_database()
                seed_devices(s.db.dsn, DEVICES)
                rate, cpu_us = measure(run, s.db.dsn, n_rows)
                base = base or rate
                print(
                    f"{name:<28}{rate:>10,.0f} rows/s = {rate / base:.2f} x COPY   {cpu_us:5.2f} CPU µs/row"
                )


if __name__ == "__main__":
    main()
