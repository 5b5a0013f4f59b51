"""Rules the engine cannot compute with are refused, naming the field; and a rule that got into
the database anyway (stored by an older version, or by hand) cannot stop the periodic pass for
the other shipments (issue 11, point 9)."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import psycopg
import pytest
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from alerts import policy
from alerts.conditions import present
from alerts.conditions.arrays import Series
from alerts.conditions.pair import evaluate_pair
from alerts.layers import resolve, settings_rules
from alerts.rules import MAX_MINUTES, RuleSet, load_rules_file, parse_definition, rules_from_dict
from coldchain.errors import ConfigError
from coldchain.settings import Settings
from tests.alerts.test_rules_service import (
    T0,
    pool,  # noqa: F401  # a fixture, registered here
    readings,
    rows,
    write,
)
from tests.alerts.test_rules_service import engine as rules_engine
from tests.fixtures.data import seed_shipment

#: The issue's rule, and others of the same kind: each refused, naming the field.
UNUSABLE = [
    ({"offline": {"minutes": 52447204075659910}}, "offline.minutes"),
    ({"offline": {"factor": 1e20}}, "offline.factor"),
    ({"budget": {"hours": 1e13}}, "budget.hours"),
    ({"temperature": {"high_c": 1e300}}, "temperature.high_c"),
    ({"temperature": {"low_c": -300}}, "temperature.low_c"),
    ({"temperature": {"alarm_delay_min": 1e12}}, "temperature.alarm_delay_min"),
    ({"humidity": {"max_rh": 50, "delay_min": 1e9}}, "humidity.delay_min"),
    ({"mkt": {"limit_c": 8, "delta_h_j_mol": 1e30}}, "mkt.delta_h_j_mol"),
    ({"mkt": {"limit_c": 1e308}}, "mkt.limit_c"),
    ({"forecast": {"min_slope_c_per_h": 1e300}}, "forecast.min_slope_c_per_h"),
    ({"offline": {"clear_delay_min": 10**20}}, "offline.clear_delay_min"),
    ({"offline": {"minutes": 10**400}}, "offline.minutes"),  # beyond any float
]


@pytest.mark.parametrize(("definition", "field"), UNUSABLE)
def test_a_value_the_engine_cannot_compute_with_is_refused_naming_the_field(
    definition: dict[str, Any], field: str
) -> None:
    with pytest.raises(ConfigError, match=rf"stored: {field}: "):
        parse_definition(definition, source="stored")
    with pytest.raises(ConfigError, match=rf"rules.toml: shipments.S-1.{field}: "):
        rules_from_dict({"shipments": {"S-1": definition}}, source="rules.toml")


#: Every bounded field at its bound: all of it must be computable.
AT_THE_BOUNDS: dict[str, Any] = {
    "temperature": {"low_c": -273.15, "high_c": 1000, "alarm_delay_min": MAX_MINUTES,
                    "clear_delay_min": MAX_MINUTES},
    "budget": {"hours": 24 * 365},
    "mkt": {"limit_c": 1000, "delta_h_j_mol": 1_000_000, "window_h": 24 * 366},
    "humidity": {"max_rh": 100, "delay_min": MAX_MINUTES},
    "offline": {"minutes": MAX_MINUTES},
    "forecast": {"min_slope_c_per_h": 1000, "margin_c": 1000},
}  # fmt: skip


@pytest.mark.parametrize("offline", [{"minutes": MAX_MINUTES}, {"factor": 1000}])
def test_rules_at_the_bounds_evaluate_without_overflow(offline: dict[str, float]) -> None:
    layer = parse_definition({**AT_THE_BOUNDS, "offline": offline}, source="bounds")
    rules = resolve([("settings", settings_rules(offline_factor=10, battery_threshold=0.2,
                                                 clear_delay_s=300)), ("bounds", layer)])  # fmt: skip
    n = 600
    t_us = (np.arange(n, dtype=np.int64) * 60_000_000) + int(T0.timestamp() * 1e6)
    temp = np.where(np.arange(n) % 100 < 50, 5.0, 30.0)
    series = Series(t_us, temp, np.full(n, 60.0), np.full(n, 0.9))
    now = T0 + timedelta(days=1)
    result = evaluate_pair(series, rules, max_gap=timedelta(hours=1), now=now)
    assert result.excursions is not None
    assert rules.offline is not None
    present.offline_state(
        T0, T0, 2_000_000_000, rules.offline, now=now, previous=None, alerted_since=None
    )


# --- in the database ------------------------------------------------------------------------


def _two_silent_shipments(dsn: str) -> tuple[int, int]:
    """Two shipments whose loggers went silent at T0 + 29 min (and not just now)."""
    a = seed_shipment(dsn, reference="SHP-A", device_id="LOG-A", start=T0 - timedelta(hours=1))
    b = seed_shipment(dsn, reference="SHP-B", device_id="LOG-B", start=T0 - timedelta(hours=1))
    return a.shipment_id, b.shipment_id


async def _silence(pool: AsyncConnectionPool, dsn: str) -> None:  # noqa: F811
    await write(pool, readings("LOG-A", [5.0] * 30) + readings("LOG-B", [5.0] * 30))
    with psycopg.connect(dsn) as conn:
        conn.execute("UPDATE device_state SET received_at = now() - interval '16 minutes'")


def _no_data_alerts(dsn: str) -> list[tuple[Any, ...]]:
    return rows(
        dsn,
        "SELECT shipment_id, device_id FROM alerts WHERE rule_key = 'device_offline'"
        " ORDER BY shipment_id",
    )


@pytest.mark.integration
async def test_a_stored_rule_the_engine_cannot_use_does_not_stop_the_periodic_pass(
    pool: AsyncConnectionPool,  # noqa: F811
    settings: Settings,
    db_dsn: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The issue's case: stored directly (as the API of an older version did), the rule made
    every offline check raise OverflowError, for every shipment, every 30 s."""
    a, b = _two_silent_shipments(db_dsn)
    with psycopg.connect(db_dsn) as conn:
        conn.execute(
            "INSERT INTO rule_definitions (shipment_id, version, definition, created_by)"
            " VALUES (%s, 1, %s, 'old-version')",
            (a, Jsonb({"offline": {"minutes": 52447204075659910}})),
        )
    await _silence(pool, db_dsn)
    rules = rules_engine(pool, settings, T0 + timedelta(minutes=45))
    await rules.setup()
    await rules.process_changes()
    with caplog.at_level(logging.ERROR, logger="alerts.rounds"):
        for _ in range(3):
            await rules.periodic()
    # Both loggers are reported silent: the bad layer is left out (the engine's own factor 10
    # judges shipment A), and the other shipment never noticed it.
    assert _no_data_alerts(db_dsn) == [(a, "LOG-A"), (b, "LOG-B")]
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1, [r.getMessage() for r in errors]  # once, not at every pass
    assert "stored shipment rules SHP-A v1" in errors[0].getMessage()
    assert "offline.minutes" in errors[0].getMessage()


@pytest.mark.integration
async def test_one_shipment_failing_to_evaluate_does_not_stop_the_others(
    pool: AsyncConnectionPool,  # noqa: F811
    settings: Settings,
    db_dsn: str,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Whatever a future bug or bad row makes raise for one shipment (here: injected into its
    offline judging and into the settling of its alerts), the others are still judged, and the
    failure is logged once per shipment and error, not at every pass."""
    a, b = _two_silent_shipments(db_dsn)
    await _silence(pool, db_dsn)
    offline_state, plan_rule_alert = present.offline_state, policy.plan_rule_alert

    def failing_offline(last: datetime | None, *args: Any, **kw: Any) -> Any:
        if args[2].minutes == 12:  # shipment A's rule, below
            raise OverflowError("date value out of range")
        return offline_state(last, *args, **kw)

    def failing_plan(alert: Any, states: Any, **kw: Any) -> Any:
        if any(s.device_id == "LOG-A" for s in states):
            raise ValueError("something only shipment A has")
        return plan_rule_alert(alert, states, **kw)

    with psycopg.connect(db_dsn) as conn:
        conn.execute(
            "INSERT INTO rule_definitions (shipment_id, version, definition, created_by)"
            " VALUES (%s, 1, %s, 'qa')",
            (a, Jsonb({"offline": {"minutes": 12}})),
        )
    monkeypatch.setattr(present, "offline_state", failing_offline)
    rules = rules_engine(pool, settings, T0 + timedelta(minutes=45))
    await rules.setup()
    await rules.process_changes()
    with caplog.at_level(logging.ERROR, logger="alerts.rounds"):
        await rules.periodic()
        await rules.periodic()
    assert _no_data_alerts(db_dsn) == [(b, "LOG-B")]
    assert rules.stats.pair_errors == 2
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [f"offline check of shipment {a} device LOG-A failed; skipped, the others"
                      " go on (logged once; counted in pair_errors)"]  # fmt: skip

    # A's judging works again, but settling its alert fails: B's alert is still settled.
    monkeypatch.setattr(present, "offline_state", offline_state)
    monkeypatch.setattr(policy, "plan_rule_alert", failing_plan)
    caplog.clear()
    with caplog.at_level(logging.ERROR, logger="alerts.rounds"):
        await rules.periodic()
        await rules.periodic()
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [f"settling the alerts of shipment {a} failed; skipped, the others go on"
                      " (logged once; counted in pair_errors)"]  # fmt: skip
    assert _no_data_alerts(db_dsn) == [(b, "LOG-B")]
    # A's state was written (it holds), only its alert is stuck; fixed, it opens at once.
    monkeypatch.setattr(policy, "plan_rule_alert", plan_rule_alert)
    await rules.periodic()
    assert _no_data_alerts(db_dsn) == [(a, "LOG-A"), (b, "LOG-B")]


def test_the_bounds_refuse_nothing_the_example_rules_file_uses() -> None:
    example = load_rules_file("rules/example.toml")
    assert isinstance(example.defaults, RuleSet) and example.defaults.offline is not None
