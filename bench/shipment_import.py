"""Bulk booking: ``coldchain shipments import FILE.csv`` with 10,000 shipments (issue 13: under
60 s here).

Run: ``.venv/bin/python bench/shipment_import.py [--shipments 10000]``. It starts a private
PostgreSQL (``bench._common.local_stack``), registers one product, writes a CSV of
``--shipments`` rows (reference, origin, destination, product, lot, quantity, planned times, a
purchase order and a customer reference each), and times three runs through the service the CLI
calls (:func:`services.shipment_import.import_csv`, as the console):

* **refused**: the same file with one bad row at the end: everything validated, nothing applied
  (the time a file with an error takes to be turned down);
* **import**: the good file, applied in one transaction (every row audited by the triggers);
* **repeat**: the good file again: every row refused as already booked, nothing applied.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
from psycopg.rows import dict_row

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import local_stack
from services import shipment_import
from services.caller import Caller

GTIN_VALUE = "09506000134352"
LIMIT_S = 60.0


def shipments_csv(n: int) -> str:
    """``n`` good rows with the columns of :data:`services.shipment_import.CSV_COLUMNS`."""
    t0 = datetime(2030, 1, 1, tzinfo=UTC)
    lines = [
        "reference,origin,destination,product_gtin,lot,quantity,planned_departure,"
        "planned_arrival,purchase_order,customer"
    ]
    for i in range(n):
        dep = t0 + timedelta(minutes=i)
        arr = dep + timedelta(hours=30)
        lines.append(
            f"IMP-{i:06d},Basel,Milan,{GTIN_VALUE},L{i % 97:03d},{1 + i % 500},"
            f"{dep.isoformat()},{arr.isoformat()},PO-{i:07d},CUST-{i % 300:04d}-{i}"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shipments", type=int, default=10_000)
    args = parser.parse_args()
    good = shipments_csv(args.shipments)
    bad = good + f"IMP-BAD,Basel,,{GTIN_VALUE},L1,0,,,,\n"
    console = Caller.console()
    with local_stack() as stack:
        settings = stack.new_database()
        with psycopg.connect(settings.db.dsn, autocommit=True, row_factory=dict_row) as conn:
            conn.execute(
                "INSERT INTO products (gtin, name, temp_min_c, temp_max_c)"
                " VALUES (%s, 'Bench vaccine', 2, 8)",
                (GTIN_VALUE,),
            )
            timings = {}
            for name, text in (("refused", bad), ("import", good), ("repeat", good)):
                started = time.perf_counter()
                result = shipment_import.import_csv(conn, console, text=text, now=datetime.now(UTC))
                timings[name] = time.perf_counter() - started
                print(
                    f"{name:8s} {args.shipments:>6,} rows: {timings[name]:6.2f} s, "
                    f"{result.applied:,} applied, {len(result.problems):,} problem(s)"
                )
            stored = conn.execute(
                "SELECT (SELECT count(*) FROM shipments) AS shipments,"
                " (SELECT count(*) FROM shipment_references) AS refs,"
                " (SELECT count(*) FROM shipment_items) AS items,"
                " (SELECT count(*) FROM audit_log) AS audit"
            ).fetchone()
            print(f"stored: {stored}")
    verdict = "OK" if timings["import"] < LIMIT_S else "TOO SLOW"
    print(f"import of {args.shipments:,} shipments: {timings['import']:.2f} s "
          f"(limit {LIMIT_S:.0f} s): {verdict}")  # fmt: skip
    if timings["import"] >= LIMIT_S:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
