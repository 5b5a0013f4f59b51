"""Track and trace at volume: a million serialised units, recall and passport query timings.

Run: ``.venv/bin/python bench/trace_recall.py [--shipments 1000] [--samples 40]``
(``make bench`` runs it). It starts a private PostgreSQL (``bench._common.local_stack``).

The data (built in SQL, a few tens of seconds)
----------------------------------------------
``--shipments`` shipments (1,000 by default), each one pallet SSCC with 20 case SSCCs of 50 SGTIN
items: 1,000,000 items and 21,000 SSCCs. 100 lots of 10,000 items (a lot spans 10 shipments).
One logger per shipment, assigned for the 48 h trip, reading every 5 minutes (576,000
readings), and one recorded 30-minute excursion per shipment at 6 h. At 24 h, two cases of every
shipment are moved onto the next shipment's pallet (a cross-dock), so 10 % of the items have a
two-shipment, two-logger history.

What is measured (wall time per call, through the same functions the API uses)
-------------------------------------------------------------------------------
* **recall**: every unit exposed to one excursion (``lookup.recall``: the downward walk from
  the shipment's pallets, ~1,050 units with the cases that left or joined), random excursions;
* **lot impact**: every excursion a lot of 10,000 items was exposed to, with counts
  (``lookup.lot_impact``: the upward walk from every item of the lot);
* **passport**: one item's full passport (``lookup.load_passport``: containment walk, ~576
  inherited readings, recorded excursions, excursions/budget/MKT computed), random items, half of
  them re-packed ones;
* **verify**: a scanned item's verdict (``lookup.verify``).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import dict_row

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import local_stack
from coldchain.gs1 import GTIN, SGTIN, SSCC, check_digit
from traceability import lookup

GTIN_VALUE = "09506000134352"
COMPANY_PREFIX = "9506000"
CASES, ITEMS = 20, 50
T0 = datetime(2025, 3, 1, tzinfo=UTC)
TRIP = timedelta(hours=48)
REPACK_AT = T0 + timedelta(hours=24)


def sscc(n: int) -> SSCC:
    """SSCC number ``n``: extension 3, the company prefix, n as serial reference."""
    body = f"3{COMPANY_PREFIX}{n:09d}"
    return SSCC(body + str(check_digit(body)))


def build(dsn: str, shipments: int) -> dict[str, int]:
    """Everything described in the module doc; returns row counts."""
    item_prefix = SGTIN(GTIN(GTIN_VALUE), "X").epc_uri(7).rsplit(".", 1)[0] + "."
    per_shipment = 1 + CASES
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO products (gtin, name, temp_min_c, temp_max_c, freeze_limit_c,"
            " alarm_delay_s, stability_budget_s, mkt_limit_c) VALUES"
            " (%s, 'Bench vaccine', 2, 8, 0, 900, 72 * 3600, 8)",
            (GTIN_VALUE,),
        )
        conn.execute("CREATE TEMP TABLE bench_ssccs (idx int PRIMARY KEY, epc text, sscc char(18))")
        with conn.cursor().copy("COPY bench_ssccs (idx, epc, sscc) FROM STDIN") as copy:
            for n in range(shipments * per_shipment):
                code = sscc(n + 1)
                copy.write_row((n, code.epc_uri(7), code.value))
        conn.execute(
            "INSERT INTO devices (device_id, interval_s)"
            " SELECT 'BENCH-LOG-' || s, 300 FROM generate_series(0, %s - 1) s",
            (shipments,),
        )
        conn.execute(
            "INSERT INTO shipments (reference, product_gtin, origin, destination, status)"
            " SELECT 'BENCH-' || s, %s, 'Basel', 'Milan', 'arrived'"
            " FROM generate_series(0, %s - 1) s",
            (GTIN_VALUE, shipments),
        )
        conn.execute(
            "INSERT INTO device_assignments (device_id, shipment_id, during)"
            " SELECT 'BENCH-LOG-' || substr(reference, 7), shipment_id, tstzrange(%s, %s)"
            " FROM shipments",
            (T0, T0 + TRIP),
        )
        conn.execute(
            "INSERT INTO units (epc, kind, sscc, commissioned_at)"
            " SELECT epc, 'sscc', sscc, %s FROM bench_ssccs",
            (T0 - timedelta(days=1),),
        )
        # item k: shipment k / 1000, case (k / 50) % 20, lot = shipment % 100
        conn.execute(
            "INSERT INTO units (epc, kind, gtin, serial, lot, expiry, commissioned_at)"
            " SELECT %(prefix)s || lpad(k::text, 9, '0'), 'sgtin', %(gtin)s, lpad(k::text, 9, '0'),"
            "        'LOT-' || lpad(((k / %(per)s) %% 100)::text, 3, '0'), DATE '2030-12-31', %(made)s"
            " FROM generate_series(0, %(n)s - 1) k",
            {
                "prefix": item_prefix,
                "gtin": GTIN_VALUE,
                "per": CASES * ITEMS,
                "made": T0 - timedelta(days=30),
                "n": shipments * CASES * ITEMS,
            },
        )
        packed = T0 - timedelta(hours=2)
        # pallet of shipment s is SSCC index s * 21, its cases s * 21 + 1 .. s * 21 + 20
        conn.execute(
            "INSERT INTO aggregations (parent_epc, child_epc, during)"
            " SELECT p.epc, c.epc, tstzrange(%(packed)s, NULL)"
            " FROM bench_ssccs c JOIN bench_ssccs p ON p.idx = c.idx - c.idx %% %(per)s"
            " WHERE c.idx %% %(per)s <> 0",
            {"packed": packed, "per": per_shipment},
        )
        conn.execute(
            "INSERT INTO aggregations (parent_epc, child_epc, during)"
            " SELECT c.epc, %(prefix)s || lpad(k::text, 9, '0'), tstzrange(%(packed)s, NULL)"
            " FROM generate_series(0, %(n)s - 1) k"
            " JOIN bench_ssccs c ON c.idx = (k / %(items)s / %(cases)s) * %(per)s"
            "                           + (k / %(items)s) %% %(cases)s + 1",
            {
                "prefix": item_prefix,
                "packed": packed,
                "n": shipments * CASES * ITEMS,
                "items": ITEMS,
                "cases": CASES,
                "per": per_shipment,
            },
        )
        conn.execute(
            "INSERT INTO shipment_units (shipment_id, epc, during)"
            " SELECT s.shipment_id, p.epc, tstzrange(%s, %s)"
            " FROM shipments s JOIN bench_ssccs p ON p.idx = substr(s.reference, 7)::int * %s",
            (T0, T0 + TRIP, per_shipment),
        )
        # The cross-dock: cases 1 and 2 of every shipment move onto the next shipment's pallet.
        moved = (
            "SELECT c.epc AS case_epc, n.epc AS to_pallet FROM bench_ssccs c"
            " JOIN bench_ssccs n ON n.idx = ((c.idx / %(per)s + 1) %% %(ships)s) * %(per)s"
            " WHERE c.idx %% %(per)s IN (1, 2)"
        )
        params = {"per": per_shipment, "ships": shipments, "at": REPACK_AT}
        conn.execute(
            f"UPDATE aggregations a SET during = tstzrange(lower(a.during), %(at)s)"
            f" FROM ({moved}) m WHERE a.child_epc = m.case_epc",
            params,
        )
        conn.execute(
            f"INSERT INTO aggregations (parent_epc, child_epc, during)"
            f" SELECT m.to_pallet, m.case_epc, tstzrange(%(at)s, NULL) FROM ({moved}) m",
            params,
        )
        conn.execute(
            "INSERT INTO readings (device_id, ts, temp_c, rh, lat, lon)"
            " SELECT 'BENCH-LOG-' || s, %(t0)s + i * interval '5 minutes',"
            "        CASE WHEN i BETWEEN 72 AND 77 THEN 11.5 ELSE 5 + (s + i) %% 7 * 0.2 END,"
            "        45, 47.5 - i * 0.005, 7.6 + i * 0.003"
            " FROM generate_series(0, %(ships)s - 1) s, generate_series(0, 575) i",
            {"t0": T0, "ships": shipments},
        )
        conn.execute(
            "INSERT INTO excursions (shipment_id, device_id, direction, start_ts, end_ts,"
            " last_out_ts, min_c, max_c, degree_minutes, n_readings, alarm, rule_key, thresholds)"
            " SELECT shipment_id, 'BENCH-LOG-' || substr(reference, 7), 'high', %s, %s, %s,"
            "        11.5, 11.5, 105, 6, true, 'temp', '{}' FROM shipments",
            (T0 + timedelta(hours=6), T0 + timedelta(hours=6, minutes=30),
             T0 + timedelta(hours=6, minutes=25)),
        )  # fmt: skip
        conn.execute("ANALYZE")
        counts = {}
        for table in ("units", "aggregations", "shipment_units", "readings", "excursions"):
            row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
            counts[table] = int(row[0]) if row else 0
    return counts


def timed(label: str, calls: list[Callable[[], Any]], warmup: int = 3) -> list[float]:
    """Run ``calls`` (after ``warmup`` unmeasured ones), print p50/p95/max in ms."""
    for call in calls[:warmup]:
        call()
    times = []
    for call in calls:
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]
    print(
        f"  {label:<44} n={len(times):<4} p50 {statistics.median(times):8.1f} ms"
        f"   p95 {p95:8.1f} ms   max {times[-1]:8.1f} ms"
    )
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shipments", type=int, default=1000)
    parser.add_argument("--samples", type=int, default=40)
    args = parser.parse_args()
    rng = random.Random(7)
    n_items = args.shipments * CASES * ITEMS
    with local_stack() as stack:
        settings = stack.new_database()
        started = time.perf_counter()
        counts = build(settings.db.dsn, args.shipments)
        print(
            f"built in {time.perf_counter() - started:.0f} s: "
            + ", ".join(f"{v:,} {k}" for k, v in counts.items())
        )
        now = datetime(2025, 6, 1, tzinfo=UTC)
        today = now.date()
        with psycopg.connect(settings.db.dsn, autocommit=True, row_factory=dict_row) as conn:
            excursion_ids = [
                r["excursion_id"]
                for r in conn.execute("SELECT excursion_id FROM excursions").fetchall()
            ]
            prefix = SGTIN(GTIN(GTIN_VALUE), "X").epc_uri(7).rsplit(".", 1)[0] + "."

            def item(k: int) -> str:
                return prefix + f"{k:09d}"

            # Half plain items, half items of re-packed cases (case index 1 or 2 of a shipment).
            plain = [
                rng.randrange(args.shipments) * CASES * ITEMS + rng.randrange(3 * ITEMS, 1000)
                for _ in range(args.samples // 2)
            ]
            moved = [
                rng.randrange(args.shipments) * CASES * ITEMS + rng.randrange(0, 2 * ITEMS)
                for _ in range(args.samples - len(plain))
            ]
            sample_items = [item(k) for pair in zip(plain, moved, strict=False) for k in pair]
            picks = rng.sample(excursion_ids, min(args.samples, len(excursion_ids)))
            lots = rng.sample(
                range(min(100, args.shipments)), min(10, args.samples, args.shipments)
            )

            print(f"{n_items:,} serialised items; timings per call:")
            exposed = [len(lookup.recall(conn, e)["units"]) for e in picks[:3]]
            timed(
                "recall: units exposed to an excursion",
                [partial(lookup.recall, conn, e) for e in picks],
            )
            timed(
                "lot impact: excursions of a 10,000-item lot",
                [partial(lookup.lot_impact, conn, GTIN_VALUE, f"LOT-{lot:03d}") for lot in lots],
                warmup=1,
            )
            timed(
                "passport: one item, full history",
                [
                    partial(lookup.load_passport, conn, epc, today=today, now=now, gap_factor=2.0)
                    for epc in sample_items
                ],
            )
            timed(
                "verify: a scanned item",
                [
                    partial(
                        lookup.verify, conn, f"]d201{GTIN_VALUE}17301231\x1d21{k:09d}", today=today
                    )
                    for k in plain + moved
                ],
            )
            check = lookup.load_passport(conn, item(moved[0]), today=today, now=now, gap_factor=2)
            print(
                f"  (a recall lists {', '.join(map(str, exposed))} units; a re-packed item's "
                f"passport has {len(check.pieces)} pieces, {len(check.readings)} readings)"
            )


if __name__ == "__main__":
    main()
