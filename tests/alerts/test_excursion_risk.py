"""The ``excursion_risk`` rule in the real rules engine, against the real database: a shipment
on a lane whose history makes its chance of an excursion before arrival reach the threshold gets
one warning alert, whose figure is the one the pages show; below the threshold, none; when the
chance falls back below, the alert resolves after the rule's clear delay."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta

import psycopg
import pytest
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from alerts.rounds import RulesEngine
from alerts.rules import rules_from_dict
from coldchain.settings import Settings
from db.types import Conn
from services import forecast as forecast_s
from tests.fixtures.forecast import NOW, PAST, seed_lane_history

pytestmark = pytest.mark.integration


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
async def pool(db_dsn: str) -> AsyncIterator[AsyncConnectionPool]:
    async with AsyncConnectionPool(db_dsn, open=False, min_size=1, max_size=2) as p:
        await p.wait()
        yield p


@pytest.fixture
def conn(db_dsn: str) -> Iterator[Conn]:
    with psycopg.connect(db_dsn, autocommit=True, row_factory=dict_row) as c:
        yield c


def hand_chance() -> float:
    """The chance for LIVE, 5 h out, computed here from PAST by the model's words: progress by
    elapsed time, the share of the trips clean so far that had an excursion after it."""
    remaining = sorted(h - 5 for h, _ in PAST)
    mid = len(remaining) // 2
    median = (remaining[mid - 1] + remaining[mid]) / 2
    progress = 5 / (5 + median)
    clean = [(h, ex) for h, ex in PAST if not any(a / h <= progress for a, _ in ex)]
    hits = sum(any(progress < a / h < 1 for a, _ in ex) for h, ex in clean)
    return hits / len(clean)


def engine(
    pool: AsyncConnectionPool, settings: Settings, clock: Clock, **risk: float
) -> RulesEngine:
    rules = rules_from_dict({"defaults": {"risk": {**risk, "clear_delay_min": 10}}})
    return RulesEngine(pool, settings, clock=clock, rules_file=rules)


def risk_alerts(conn: Conn) -> list[dict]:
    return conn.execute(
        "SELECT alert_id, shipment_id, severity, state, value, cleared_at, resolved_by"
        " FROM alerts WHERE rule_key = 'excursion_risk' ORDER BY alert_id"
    ).fetchall()


async def test_a_risky_lane_raises_one_warning_with_the_pages_figure(
    pool: AsyncConnectionPool, settings: Settings, conn: Conn
) -> None:
    ids = seed_lane_history(conn, n_past=len(PAST))
    expected = hand_chance()
    assert 0.3 < expected < 0.5  # the thresholds below are on either side of it
    clock = Clock(NOW)
    rules = engine(pool, settings, clock, threshold=0.3)
    await rules.setup()
    await rules.check_offline()
    await rules.check_offline()  # the next pass: the same episode, no second alert
    found = risk_alerts(conn)
    assert [(a["shipment_id"], a["severity"], a["state"]) for a in found] == [
        (ids["LIVE"], "warning", "open")
    ]
    assert found[0]["value"] == pytest.approx(expected)
    # The pages compute the same figure from the same data (one definition).
    page = forecast_s.fleet_forecasts(conn, now=NOW, trend_weight=settings.forecast.trend_weight)[
        ids["LIVE"]
    ]
    assert found[0]["value"] == page.excursion_chance
    # The lane's history was read once for both passes (cached).
    assert rules._risk.history_reads == 1

    # The threshold raised above the chance: the condition stops holding; the alert waits out
    # the clear delay (10 min), then resolves by itself.
    clock.now = NOW + timedelta(minutes=1)
    stricter = engine(pool, settings, clock, threshold=0.5)
    await stricter.check_offline()
    assert risk_alerts(conn)[0]["state"] == "open"
    clock.now = NOW + timedelta(minutes=12)
    await stricter.check_offline()
    done = risk_alerts(conn)
    assert len(done) == 1 and done[0]["state"] == "resolved"


async def test_below_the_threshold_or_with_too_little_history_no_alert(
    pool: AsyncConnectionPool, settings: Settings, conn: Conn
) -> None:
    seed_lane_history(conn, n_past=len(PAST))
    rules = engine(pool, settings, Clock(NOW), threshold=0.5)
    await rules.check_offline()
    assert risk_alerts(conn) == []
    # Enough history for the forecast (5) but not for this rule (7): nothing either.
    strict = engine(pool, settings, Clock(NOW), threshold=0.3, min_history=len(PAST) + 1)
    await strict.check_offline()
    assert risk_alerts(conn) == []
