"""Checkpoints in the rules engine, against the real database: a round judges a pair from its
latest checkpoint that holds, and what it stores is what judging every pair in full stores."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from alerts.rounds import RulesEngine
from alerts.rules import rules_from_dict
from coldchain.settings import Settings
from coldchain.telemetry import Reading
from ingest.sink import Batch, TimescaleSink
from tests.fixtures.data import seed_shipment

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 20, 0, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)
FLEET = 10
HOURS = 14

# Every rule with runs, on top of the product's (2–8 °C, 15 min delay, freezing at 0 °C, budget).
RULES = rules_from_dict(
    {
        "defaults": {
            "mkt": {"limit_c": 7.0, "window_h": 2},
            "humidity": {"max_rh": 80, "delay_min": 5},
            "battery": {"below": 0.2},
        }
    }
)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
async def pool(db_dsn: str):
    async with AsyncConnectionPool(db_dsn, open=False, min_size=1, max_size=4) as p:
        await p.wait()
        yield p


def fleet_readings(seed: int) -> dict[str, list[Reading]]:
    """Per logger, HOURS of one reading a minute: excursions, freezes, humid spells, gaps."""
    rng = random.Random(seed)
    out: dict[str, list[Reading]] = {}
    for d in range(FLEET):
        device, temp, rh, battery = f"LOG-{d}", 5.0, 50.0, 0.9
        rs = []
        for m in range(HOURS * 60):
            if rng.random() < 0.02:
                temp = rng.choice([5.0, 5.0, 4.0, 6.5, 9.0, 12.0, -0.5, 1.0])
            if rng.random() < 0.01:
                rh = rng.choice([50.0, 85.0])
            if rng.random() < 0.003:
                battery = rng.choice([0.9, 0.15])
            if rng.random() < 0.003:
                continue  # a lost reading; a few in a row leave a gap
            rs.append(Reading(device, T0 + m * MIN, temp, rh, None, None, battery))
        out[device] = rs
    return out


def settings_with(settings: Settings, kept: int) -> Settings:
    return settings.model_copy(
        update={
            "alerts": settings.alerts.model_copy(
                update={"checkpoints_kept": kept, "checkpoint_interval_s": 3600}
            )
        }
    )


def stored(dsn: str) -> tuple[list[tuple], list[tuple], list[tuple]]:
    """Current excursions, rule states and alerts: what the engine keeps."""
    with psycopg.connect(dsn) as conn:
        excursions = conn.execute(
            """SELECT shipment_id, device_id, direction, start_ts, end_ts, last_out_ts,
                      ended_by_gap, min_c, max_c, degree_minutes, n_readings, alarm, alarm_at,
                      freeze_alarm
               FROM excursions WHERE superseded_at IS NULL ORDER BY 1, 2, 3, 4"""
        ).fetchall()
        states = conn.execute(
            """SELECT shipment_id, device_id, rule_key, holding, as_of, since, alarm_at,
                      ended_at, severity, value, trigger_at, details::text
               FROM rule_states ORDER BY 1, 2, 3"""
        ).fetchall()
        alerts = conn.execute(
            "SELECT shipment_id, rule_key, device_id, triggered_at FROM alerts ORDER BY 1, 2, 3, 4"
        ).fetchall()
    return excursions, states, alerts


async def judge_all_in_full(pool: AsyncConnectionPool, settings: Settings, now: datetime) -> int:
    """Judge every pair from its first reading (no checkpoints); return the rows it wrote."""
    full = RulesEngine(pool, settings_with(settings, 0), clock=Clock(now), rules_file=RULES)
    async with pool.connection() as conn, conn.transaction():
        pairs = await (
            await conn.execute("SELECT shipment_id, device_id FROM device_assignments")
        ).fetchall()
        await full._evaluate_pairs(conn, [(int(s), str(d)) for s, d in pairs])
    return full.stats.excursions_written + full.stats.states_written


async def test_a_six_hour_backlog_is_absorbed_from_checkpoints_as_in_order(
    pool: AsyncConnectionPool, settings: Settings, db_dsn: str
) -> None:
    for d in range(FLEET):
        seed_shipment(
            db_dsn, reference=f"SHP-{d}", device_id=f"LOG-{d}", start=T0 - MIN, hours=HOURS + 2
        )
    data = fleet_readings(seed=15)
    late = "LOG-3"  # 10% of the fleet uploads its last six hours at once
    backlog_from = T0 + (HOURS - 6) * 60 * MIN
    sink = TimescaleSink(pool)
    clock = Clock(T0)
    engine = RulesEngine(pool, settings_with(settings, 12), clock=clock, rules_file=RULES)
    await engine.setup()
    # Live: a round every ten minutes of data.
    for step in range(HOURS * 6):
        lo, hi = T0 + step * 10 * MIN, T0 + (step + 1) * 10 * MIN
        batch = [
            r
            for rs in data.values()
            for r in rs
            if lo <= r.ts < hi and not (r.device_id == late and r.ts >= backlog_from)
        ]
        await sink.write(Batch.of(batch))
        clock.now = hi
        await engine.process_changes()
    assert engine.stats.pairs_from_checkpoint > 0 and engine.stats.checkpoints_written > 0
    from_checkpoint = engine.stats.pairs_from_checkpoint
    rounds = engine.stats.rounds
    # The backlog arrives (in three uploads, newest first), then one round takes it all.
    backlog = [r for r in data[late] if r.ts >= backlog_from]
    for part in (backlog[240:], backlog[120:240], backlog[:120]):
        await sink.write(Batch.of(part))
    await engine.process_changes()
    assert engine.stats.rounds - rounds <= 2
    assert engine.stats.pairs_from_checkpoint > from_checkpoint  # rewound, not judged in full
    incremental = stored(db_dsn)
    assert incremental[0] and incremental[1] and incremental[2]  # the data has things to find
    # Judging every pair in full now finds nothing to change.
    assert await judge_all_in_full(pool, settings, clock.now) == 0
    assert stored(db_dsn) == incremental


async def test_older_than_every_checkpoint_or_new_rules_judge_in_full(
    pool: AsyncConnectionPool, settings: Settings, db_dsn: str
) -> None:
    seed_shipment(db_dsn, device_id="LOG-0", start=T0 - MIN, hours=HOURS + 2)
    hot, frozen = range(100, 130), range(400, 420)
    rs = [
        Reading("LOG-0", T0 + m * MIN, 12.0 if m in hot else -0.5 if m in frozen else 5.0, 50.0)
        for m in range(HOURS * 60)
    ]
    sink = TimescaleSink(pool)
    clock = Clock(T0)
    engine = RulesEngine(pool, settings_with(settings, 2), clock=clock, rules_file=RULES)
    await engine.setup()
    held = [r for r in rs if T0 + 30 * MIN <= r.ts < T0 + 40 * MIN]
    for hour in range(HOURS):
        lo, hi = T0 + hour * 60 * MIN, T0 + (hour + 1) * 60 * MIN
        await sink.write(Batch.of([r for r in rs if lo <= r.ts < hi and r not in held]))
        clock.now = hi
        await engine.process_changes()
    with psycopg.connect(db_dsn) as conn:
        kept = conn.execute("SELECT count(*), min(at) FROM pair_checkpoints").fetchone()
    assert kept is not None and kept[0] == 2 and kept[1] > T0 + 40 * MIN  # pruned
    judged_from_checkpoint = engine.stats.pairs_from_checkpoint
    assert judged_from_checkpoint > 0
    # Readings older than every kept checkpoint: the pair is judged in full.
    await sink.write(Batch.of(held))
    await engine.process_changes()
    assert engine.stats.pairs_from_checkpoint == judged_from_checkpoint
    assert await judge_all_in_full(pool, settings, clock.now) == 0
    # New limits change the fingerprint: the checkpoints are not used, and are pruned.
    with psycopg.connect(db_dsn) as conn:
        conn.execute("UPDATE products SET temp_max_c = 6.0")
    await sink.write(Batch.of([Reading("LOG-0", clock.now, 5.0, 50.0, None, None, 0.9)]))
    clock.now += MIN
    await engine.process_changes()
    assert engine.stats.pairs_from_checkpoint == judged_from_checkpoint
    assert await judge_all_in_full(pool, settings, clock.now) == 0
