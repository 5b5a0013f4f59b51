"""The rules engine against the real database: excursions, alerts, late data, restarts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from alerts.service import RulesEngine
from coldchain.settings import Settings
from coldchain.telemetry import Reading
from ingest.sink import Batch, TimescaleSink
from tests.fixtures.data import seed_shipment

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 20, 3, 0, tzinfo=UTC)


def profile(minutes: int, hot: range, hot_c: float = 12.0) -> list[float]:
    """5 °C, with ``hot_c`` during the minutes in ``hot``."""
    return [hot_c if m in hot else 5.0 for m in range(minutes)]


def readings(device: str, temps: list[float], *, skip: range = range(0)) -> list[Reading]:
    return [
        Reading(device, T0 + timedelta(minutes=m), t) for m, t in enumerate(temps) if m not in skip
    ]


async def write(pool: AsyncConnectionPool, rs: list[Reading]) -> None:
    await TimescaleSink(pool).write(Batch(readings=rs))


def rows(dsn: str, sql: str, *args: object) -> list[tuple]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(sql, args).fetchall()


@pytest.fixture
async def pool(db_dsn: str):
    async with AsyncConnectionPool(db_dsn, open=False, min_size=1, max_size=4) as p:
        await p.wait()
        yield p


def engine(pool: AsyncConnectionPool, settings: Settings, now: datetime) -> RulesEngine:
    return RulesEngine(pool, settings, clock=lambda: now)


async def test_excursion_with_alarm_delay_opens_one_alert_at_reading_time(
    pool: AsyncConnectionPool, settings: Settings, db_dsn: str
) -> None:
    shp = seed_shipment(db_dsn, start=T0 - timedelta(hours=1))
    temps = profile(120, range(30, 60))  # 30 minutes at 12 °C, alarm delay 15 min
    await write(pool, readings("LOG-1", temps))
    rules = engine(pool, settings, T0 + timedelta(minutes=120))
    await rules.setup()
    await rules.process_changes()

    exc = rows(
        db_dsn,
        """SELECT direction, start_ts, end_ts, max_c, alarm_at, n_readings
                          FROM excursions WHERE superseded_at IS NULL""",
    )
    assert exc == [
        (
            "high",
            T0 + timedelta(minutes=30),
            T0 + timedelta(minutes=60),
            12.0,
            T0 + timedelta(minutes=45),
            30,
        )
    ]
    alerts = rows(
        db_dsn,
        "SELECT shipment_id, rule_key, severity, state, triggered_at, cleared_at IS NOT NULL FROM alerts",
    )
    assert alerts == [
        (shp.shipment_id, "temp_high", "major", "open", T0 + timedelta(minutes=45), True)
    ]

    # Evaluating again (a restart, a duplicate notification) changes nothing.
    await rules.process_changes()
    await engine(pool, settings, T0 + timedelta(minutes=121)).process_changes()
    assert len(rows(db_dsn, "SELECT 1 FROM alerts")) == 1
    assert len(rows(db_dsn, "SELECT 1 FROM excursions")) == 1


async def test_short_excursion_is_recorded_without_alert(
    pool: AsyncConnectionPool, settings: Settings, db_dsn: str
) -> None:
    seed_shipment(db_dsn, start=T0 - timedelta(hours=1))
    await write(pool, readings("LOG-1", profile(60, range(10, 15))))  # a door opening
    rules = engine(pool, settings, T0 + timedelta(hours=1))
    await rules.setup()
    await rules.process_changes()
    assert rows(db_dsn, "SELECT alarm FROM excursions") == [(False,)]
    assert rows(db_dsn, "SELECT 1 FROM alerts") == []


async def test_late_batch_gives_the_in_order_result_and_keeps_history(
    pool: AsyncConnectionPool, settings: Settings, db_dsn: str
) -> None:
    seed_shipment(db_dsn, start=T0 - timedelta(hours=1))
    temps = profile(120, range(30, 70))
    # First the logger's live readings with a coverage hole at minutes 40–59 ...
    await write(pool, readings("LOG-1", temps, skip=range(40, 60)))
    now = T0 + timedelta(minutes=120)
    rules = engine(pool, settings, now)
    await rules.setup()
    await rules.process_changes()
    before = rows(
        db_dsn,
        "SELECT start_ts, end_ts, ended_by_gap FROM excursions WHERE superseded_at IS NULL ORDER BY start_ts",
    )
    assert len(before) == 2  # the gap splits it: unknown time is not in range
    assert before[0][2] is True

    # ... then the buffered upload fills the hole, out of order.
    late = readings("LOG-1", temps)[40:60]
    await write(pool, list(reversed(late)))
    await rules.process_changes()
    after = rows(
        db_dsn, "SELECT start_ts, end_ts, n_readings FROM excursions WHERE superseded_at IS NULL"
    )
    assert after == [(T0 + timedelta(minutes=30), T0 + timedelta(minutes=70), 40)]
    superseded = rows(
        db_dsn, "SELECT superseded_reason FROM excursions WHERE superseded_at IS NOT NULL"
    )
    assert len(superseded) == 2

    # The same end state as a database that received everything in order.
    assert len(rows(db_dsn, "SELECT 1 FROM alerts WHERE state <> 'resolved'")) == 1


async def test_reading_outside_the_assignment_is_not_judged(
    pool: AsyncConnectionPool, settings: Settings, db_dsn: str
) -> None:
    seed_shipment(db_dsn, start=T0, hours=1)
    # Hot readings after the logger left the shipment belong to no shipment.
    await write(
        pool, [Reading("LOG-1", T0 + timedelta(hours=2, minutes=m), 20.0) for m in range(40)]
    )
    rules = engine(pool, settings, T0 + timedelta(hours=3))
    await rules.setup()
    await rules.process_changes()
    assert rows(db_dsn, "SELECT 1 FROM excursions") == []
