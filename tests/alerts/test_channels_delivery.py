"""The channels through the real rules engine, outbox and delivery worker (real PostgreSQL,
local servers that speak PagerDuty's and Slack's APIs): Retry-After honoured, a refusal given
up at once, secrets kept out of the deliveries table and the log, and an alert's PagerDuty
incident triggered, acknowledged (by a person, through the service) and resolved under one
dedup key."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest
from psycopg.rows import DictRow, dict_row
from psycopg_pool import AsyncConnectionPool

from alerts.channels import senders_from_settings
from alerts.delivery import DeliveryWorker
from alerts.rounds import RulesEngine
from alerts.rules import rules_from_dict
from coldchain.settings import Settings
from coldchain.telemetry import Reading
from ingest.sink import Batch, TimescaleSink
from services import alerts as alert_service
from services.caller import Caller
from tests.alerts.test_delivery import T0, pool, rows, with_alerts  # noqa: F401  # pool: a fixture
from tests.fixtures import channel_servers as cs
from tests.fixtures.data import seed_shipment

pytestmark = pytest.mark.integration

OPERATOR = Caller("ana.ruiz", "operator", "test", "Ana Ruiz")


def engine(
    pool: AsyncConnectionPool,  # noqa: F811
    settings: Settings,
    tier: dict[str, Any],
    clock: Callable[[], datetime],
) -> RulesEngine:
    rules = rules_from_dict({"escalation": {"tiers": [{"name": "on call", **tier}]}})
    return RulesEngine(pool, settings, clock=clock, rules_file=rules)


async def readings(pool: AsyncConnectionPool, temps: dict[int, float]) -> None:  # noqa: F811
    """Readings of LOG-1 at T0 + minute: temperature."""
    batch = [Reading("LOG-1", T0 + timedelta(minutes=m), t) for m, t in sorted(temps.items())]
    await TimescaleSink(pool).write(Batch.of(batch))


async def open_an_alert(
    pool: AsyncConnectionPool,  # noqa: F811
    settings: Settings,
    dsn: str,
    tier: dict[str, Any],
) -> RulesEngine:
    """An excursion from minute 10, still under way at minute 45: the alert opens."""
    seed_shipment(dsn, start=T0 - timedelta(hours=1))
    await readings(pool, {m: 12.0 if m >= 10 else 5.0 for m in range(46)})
    rules = engine(pool, settings, tier, lambda: T0 + timedelta(minutes=46))
    await rules.setup()
    await rules.process_changes()
    return rules


def acknowledge(dsn: str, comment: str) -> None:
    """The operator acknowledges the one alert, through the service (as the API does)."""
    with psycopg.Connection[DictRow].connect(dsn, autocommit=True, row_factory=dict_row) as conn:
        (alert,) = conn.execute("SELECT alert_id FROM alerts").fetchall()
        alert_service.acknowledge(conn, OPERATOR, alert_id=alert["alert_id"], comment=comment)


async def test_a_429_is_retried_no_earlier_than_its_retry_after(
    pool: AsyncConnectionPool,  # noqa: F811
    settings: Settings,
    db_dsn: str,
) -> None:
    s = with_alerts(settings, delivery_backoff_s=0.2)
    async with cs.ChannelServer(cs.pagerduty, script=[(429, {"Retry-After": "120"}, "")]) as pd:
        s = with_alerts(s, pagerduty_url=f"{pd.base}/v2/enqueue")
        await open_an_alert(pool, s, db_dsn, {"pagerduty": [cs.ROUTING_KEY]})
        async with httpx.AsyncClient(timeout=5) as client:
            worker = DeliveryWorker(pool, s.alerts, senders_from_settings(s.alerts, client))
            assert await worker.deliver_due() == 1
            assert await worker.deliver_due() == 0  # not due again after the backoff's 0.2 s
            due_in = await worker.next_due_in()
            assert due_in is not None and 115 < due_in <= 120
            # Acknowledged meanwhile: PagerDuty must not hear it before the trigger.
            acknowledge(db_dsn, "on it")
            assert await worker.deliver_due() == 0
            # Time passes (the clock of the outbox is the database's: move the rows instead).
            rows(db_dsn, "UPDATE notifications SET next_attempt_at = now() RETURNING id")
            assert await worker.deliver_due() == 2
    assert [(r.json()["event_action"], r.json()["dedup_key"]) for r in pd.requests] == [
        ("trigger", "coldchain-alert-1"),
        ("trigger", "coldchain-alert-1"),
        ("acknowledge", "coldchain-alert-1"),
    ]
    assert rows(
        db_dsn, "SELECT event, attempt, ok, left(response, 8) FROM deliveries ORDER BY id"
    ) == [
        ("opened", 1, False, "HTTP 429"),
        ("opened", 2, True, "HTTP 202"),
        ("acknowledged", 1, True, "HTTP 202"),
    ]


async def test_a_refusal_is_given_up_at_once_and_the_key_stays_secret(
    pool: AsyncConnectionPool,  # noqa: F811
    settings: Settings,
    db_dsn: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    wrong = "W" * 32  # well-formed, but PagerDuty knows no such integration
    async with cs.ChannelServer(cs.pagerduty) as pd:
        s = with_alerts(settings, pagerduty_url=f"{pd.base}/v2/enqueue", delivery_max_attempts=10)
        await open_an_alert(pool, s, db_dsn, {"pagerduty": [wrong]})
        async with httpx.AsyncClient(timeout=5) as client:
            worker = DeliveryWorker(pool, s.alerts, senders_from_settings(s.alerts, client))
            with caplog.at_level(logging.INFO):
                assert await worker.deliver_due() == 1
            assert await worker.next_due_in() is None  # nothing left to try
    assert wrong in pd.requests[0].body.decode()  # the server did get it (and echoed it)
    ((attempts, gave_up, error),) = rows(
        db_dsn, "SELECT attempts, gave_up_at IS NOT NULL, last_error FROM notifications"
    )
    assert (attempts, gave_up) == (1, True)
    assert error.startswith("HTTP 400") and "not retried" in error
    stored = rows(db_dsn, "SELECT response FROM deliveries")[0][0] + error
    assert wrong not in stored and wrong not in caplog.text
    assert "…WWWW" in caplog.text and "giving up" in caplog.text


async def test_pagerduty_follows_the_alert_open_acknowledged_resolved(
    pool: AsyncConnectionPool,  # noqa: F811
    settings: Settings,
    db_dsn: str,
) -> None:
    async with (
        cs.ChannelServer(cs.pagerduty) as pd,
        cs.ChannelServer(cs.slack) as slack,
    ):
        s = with_alerts(settings, pagerduty_url=f"{pd.base}/v2/enqueue")
        tier = {"pagerduty": [cs.ROUTING_KEY], "slack": [f"{slack.base}/services/T/B/X"]}
        rules = await open_an_alert(pool, s, db_dsn, tier)
        async with httpx.AsyncClient(timeout=5) as client:
            worker = DeliveryWorker(pool, s.alerts, senders_from_settings(s.alerts, client))
            assert await worker.deliver_due() == 2

            ((alert_id,),) = rows(db_dsn, "SELECT alert_id FROM alerts")
            acknowledge(db_dsn, "reefer door closed")
            assert await worker.deliver_due() == 2

            # Back in range from minute 46; five quiet minutes later the alert clears and,
            # being acknowledged, resolves.
            await readings(pool, {m: 5.0 for m in range(46, 70)})
            rules._clock = lambda: T0 + timedelta(minutes=70)
            await rules.process_changes()
            assert await worker.deliver_due() == 2

    events = [r.json() for r in pd.requests]
    assert [(e["event_action"], e["dedup_key"]) for e in events] == [
        ("trigger", f"coldchain-alert-{alert_id}"),
        ("acknowledge", f"coldchain-alert-{alert_id}"),
        ("resolve", f"coldchain-alert-{alert_id}"),
    ]
    assert all(e["routing_key"] == cs.ROUTING_KEY for e in events)
    said = [r.json()["text"] for r in slack.requests]
    ((severity,),) = rows(db_dsn, "SELECT severity FROM alerts")
    assert [t.split(":")[0] for t in said] == [
        f"[{severity.upper()}] {e}" for e in ("opened", "acknowledged", "resolved")
    ]
    assert said[1].endswith("by ana.ruiz")
    assert "reefer door closed" in slack.requests[1].json()["blocks"][1]["text"]["text"]
    # The outbox: each event to both recipients, in the order of the alert's life.
    told = rows(
        db_dsn,
        "SELECT event, array_agg(channel ORDER BY channel) FROM notifications"
        " GROUP BY event ORDER BY min(id)",
    )
    assert told == [(e, ["pagerduty", "slack"]) for e in ("opened", "acknowledged", "resolved")]
    # The alerts page shows who was told, with the secrets masked.
    with psycopg.Connection[DictRow].connect(db_dsn, row_factory=dict_row) as conn:
        (row,) = alert_service.alert_board(conn).items
    assert sorted((n["channel"], n["target"], n["status"]) for n in row["notified"]) == [
        ("pagerduty", f"…{cs.ROUTING_KEY[-4:]}", "delivered"),
        ("slack", f"{slack.base}/…", "delivered"),
    ]


async def test_a_tier_is_not_told_of_severities_it_does_not_hear(
    pool: AsyncConnectionPool,  # noqa: F811
    settings: Settings,
    db_dsn: str,
) -> None:
    tier = {"severities": ["info"], "pagerduty": [cs.ROUTING_KEY], "emails": ["qa@example.com"]}
    rules = await open_an_alert(pool, settings, db_dsn, tier)
    assert rules.stats.alerts_opened == 1
    assert rows(db_dsn, "SELECT count(*) FROM notifications") == [(0,)]
