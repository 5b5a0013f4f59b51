"""Ask: how long the default answerer takes, per intent, at 5,000 shipments.

Run: ``.venv/bin/python -m bench.ask_latency [--shipments 5000] [--repeat 10]`` (``make bench``
runs it). It starts a private PostgreSQL (``bench._common.local_stack``), builds the fleet of
``bench.web_pages`` (``--shipments`` shipments in transit with loggers, positions, alerts) and
varies it: a third carried by a second carrier, a tenth in each of arrived, under review,
released and quarantined, a purchase order for every shipment, a lot on each, an excursion on
every twentieth in the last 40 days, low batteries, a signed decision on every released one, a
pallet with a unit on board the first shipment.

It then asks the question suite of ``tests/services/test_ask_questions.py`` (its references
mapped onto this fleet: ``SHP-0001`` → ``FLEET-00001``; names it does not have stay, and are
answered as such) in-process, as the API's handler calls :func:`services.ask_default.answer`,
``--repeat`` times each after one unmeasured call, and prints the p50, p95 and maximum answer
time per intent. Target: every p95 under 300 ms.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from psycopg.rows import DictRow, dict_row

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench._common import local_stack
from bench.web_pages import GTIN, build
from coldchain.gs1 import GTIN as Gtin
from coldchain.gs1 import SGTIN, SSCC, check_digit
from services.ask_default import answer
from services.caller import Caller
from tests.services.test_ask_questions import CP, QUESTIONS, World, _fill

TARGET_MS = 300.0

# The variations on bench.web_pages' fleet (module docstring), in SQL.
ENRICH = [
    "UPDATE shipments SET started_at = planned_departure",
    "UPDATE shipments SET carrier = 'SkyCold Air' WHERE shipment_id %% 3 = 0",
    """UPDATE shipments SET status = CASE shipment_id %% 10 WHEN 1 THEN 'arrived'
           WHEN 2 THEN 'released' WHEN 3 THEN 'quarantined' ELSE 'under_review' END,
           arrived_at = started_at + interval '1 day'
       WHERE shipment_id %% 10 BETWEEN 1 AND 4 AND reference LIKE 'FLEET-%%'""",
    """INSERT INTO shipment_references (shipment_id, kind, value)
       SELECT shipment_id, 'purchase_order', (5000 + shipment_id)::text FROM shipments""",
    """INSERT INTO shipment_items (shipment_id, gtin, lot, quantity)
       SELECT shipment_id, product_gtin, 'L' || (shipment_id %% 50), 100 FROM shipments""",
    """INSERT INTO excursions (shipment_id, device_id, direction, start_ts, end_ts, last_out_ts,
           min_c, max_c, degree_minutes, n_readings, alarm, alarm_at, rule_key, thresholds)
       SELECT s.shipment_id, a.device_id, 'high', %(now)s - (s.shipment_id %% 40) * interval '1 day',
              %(now)s - (s.shipment_id %% 40) * interval '1 day' + interval '30 minutes',
              %(now)s - (s.shipment_id %% 40) * interval '1 day' + interval '29 minutes',
              8.3, 10.5, 45, 30, true, %(now)s - (s.shipment_id %% 40) * interval '1 day',
              'temp', '{}'
       FROM shipments s JOIN device_assignments a ON a.shipment_id = s.shipment_id
       WHERE s.shipment_id %% 20 = 0""",
    "UPDATE device_state SET battery = 0.1 WHERE device_id LIKE '%%5'",
]


def enrich(dsn: str, now: datetime) -> tuple[SGTIN, SSCC]:
    """The variations; returns the unit and the pallet on board FLEET-00001."""
    unit = SGTIN(Gtin(GTIN), "ABC123")
    body = "39506000000004711"
    pallet = SSCC(body + str(check_digit(body)))
    with psycopg.connect(dsn, autocommit=True) as conn:
        for statement in ENRICH:
            conn.execute(statement, {"now": now})
        user = conn.execute(
            "INSERT INTO app_users (username, full_name, role, password_hash)"
            " VALUES ('bench.qa', 'Bench QA', 'qa', 'x') RETURNING user_id"
        ).fetchone()
        assert user is not None
        conn.execute(
            """WITH snap AS (
                   INSERT INTO report_snapshots (shipment_id, as_of, content_hash, evidence,
                                                 created_by)
                   SELECT shipment_id, arrived_at, md5(reference) || md5(reference), '{}', 'bench'
                   FROM shipments WHERE status = 'released'
                   RETURNING snapshot_id, shipment_id, as_of)
               INSERT INTO dispositions (shipment_id, decision, reason, meaning, signer_user_id,
                   signer_username, signer_name, signer_role, signed_at, snapshot_id,
                   report_hash, signature_hash)
               SELECT shipment_id, 'release', 'bench', 'approval', %(user)s, 'bench.qa',
                      'Bench QA', 'qa', as_of, snapshot_id, md5('r') || md5('r'),
                      md5('s') || md5('s')
               FROM snap""",
            {"user": user[0]},
        )
        conn.execute(
            "INSERT INTO units (epc, kind, gtin, serial, lot, commissioned_at)"
            " VALUES (%s, 'sgtin', %s, %s, 'L1', %s)",
            (unit.epc_uri(CP), GTIN, unit.serial, now),
        )
        conn.execute(
            "INSERT INTO units (epc, kind, sscc, commissioned_at) VALUES (%s, 'sscc', %s, %s)",
            (pallet.epc_uri(CP), pallet.value, now),
        )
        conn.execute(
            "INSERT INTO aggregations (parent_epc, child_epc, during)"
            " VALUES (%s, %s, tstzrange(%s, NULL))",
            (pallet.epc_uri(CP), unit.epc_uri(CP), now),
        )
        conn.execute(
            "INSERT INTO shipment_units (shipment_id, epc, during) SELECT shipment_id, %s,"
            " tstzrange(%s, NULL) FROM shipments WHERE reference = 'FLEET-00001'",
            (pallet.epc_uri(CP), now),
        )
        conn.execute("ANALYZE")
    return unit, pallet


def questions(unit: SGTIN, pallet: SSCC) -> list[str]:
    """The suite's questions on this fleet."""
    world = World("", [], {}, {}, [], [], unit, pallet)
    return [_fill(q, world).replace("SHP-", "FLEET-0") for q, _ in QUESTIONS]


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shipments", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args()
    now = datetime.now(UTC).replace(microsecond=0)
    with local_stack() as stack:
        settings = stack.new_database()
        started = time.perf_counter()
        counts = build(settings.db.dsn, args.shipments, 1, now)
        unit, pallet = enrich(settings.db.dsn, now)
        print(
            f"built in {time.perf_counter() - started:.1f} s: bench.web_pages' fleet ("
            + ", ".join(f"{v:,} {k}" for k, v in counts.items())
            + "), then varied (module docstring)"
        )
        caller = Caller.console()
        times: dict[str, list[float]] = defaultdict(list)
        slowest: dict[str, tuple[float, str]] = {}
        with psycopg.Connection[DictRow].connect(
            settings.db.dsn, autocommit=True, row_factory=dict_row, options="-c TimeZone=UTC"
        ) as conn:
            for text in questions(unit, pallet):
                first = answer(conn, caller, text, now=now, settings=settings)
                intent = first.intent or "not understood"
                for _ in range(args.repeat):
                    t0 = time.perf_counter()
                    answer(conn, caller, text, now=now, settings=settings)
                    ms = (time.perf_counter() - t0) * 1000
                    times[intent].append(ms)
                    if ms > slowest.get(intent, (0.0, ""))[0]:
                        slowest[intent] = (ms, text)
        print(f"{len(QUESTIONS)} questions, {args.repeat} times each after one unmeasured call:")
        print(f"{'intent':<16}{'n':>5}{'p50 ms':>9}{'p95 ms':>9}{'max ms':>9}  verdict")
        ok = True
        for intent, values in sorted(times.items()):
            p95 = percentile(values, 0.95)
            ok &= p95 < TARGET_MS
            print(
                f"{intent:<16}{len(values):>5}{statistics.median(values):>9.1f}{p95:>9.1f}"
                f"{max(values):>9.1f}  {'PASS' if p95 < TARGET_MS else 'FAIL'}"
                f"  (slowest: {slowest[intent][1][:48]!r})"
            )
        print("all targets met" if ok else "some targets missed")


if __name__ == "__main__":
    main()
