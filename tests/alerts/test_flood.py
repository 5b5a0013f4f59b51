"""Flood control and backlog grouping: the pure decisions, then the real engine, outbox and a
real webhook receiver (a 2-hour backlog of 500 loggers; a per-device limit holding notifications
and summing them up in one digest)."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from alerts.channels import Outgoing, senders_from_settings
from alerts.channels.email import email_message
from alerts.delivery import LEASE_MARGIN_S, DeliveryWorker
from alerts.digests import OutboxControl
from alerts.flood import DIGEST_LISTED, Limits, backlog_groups, digest_payload, hold_scopes
from alerts.rounds import RulesEngine
from alerts.rules import EscalationPolicy, EscalationTier, FloodLimits, RulesFile, rules_from_text
from coldchain.settings import AlertsSettings, Settings
from coldchain.telemetry import Reading
from ingest.sink import Batch, TimescaleSink
from services.alerts import alert_board
from tests.fixtures.data import seed_shipment
from tests.fixtures.webhooks import SECRET, WebhookReceiver

# --------------------------------------------------------------------------------------------
# Pure decisions
# --------------------------------------------------------------------------------------------


def item(
    nid: int,
    *,
    event: str = "opened",
    alert_id: int | None = 1,
    shipment: int | None = 10,
    device: str | None = "LOG-1",
    severity: str = "major",
    target: str = "https://hooks.example.com/a",
    attempt: int = 1,
) -> Outgoing:
    alert = {
        "id": alert_id,
        "shipment_id": shipment,
        "shipment_reference": None if shipment is None else f"SHP-{shipment}",
        "device_id": device,
        "severity": severity,
    }
    payload = {"event": event, "tier": 0, "alert": alert} if alert_id is not None else {}
    return Outgoing(nid, alert_id, event, 0, "webhook", target, payload, attempt)


def test_limits_take_the_rules_file_over_the_settings() -> None:
    limits = Limits.of(
        per_device=10,
        per_shipment=20,
        per_recipient=60,
        rules=FloodLimits(per_shipment_per_hour=3, per_recipient_per_hour=0),
    )
    assert limits == Limits(per_device=10, per_shipment=3, per_recipient=0)


def test_a_limit_holds_what_goes_beyond_it_per_recipient_and_scope() -> None:
    limits = Limits(per_device=2, per_shipment=0, per_recipient=0)
    items = [item(i, alert_id=i) for i in range(1, 5)] + [
        item(5, alert_id=5, target="https://hooks.example.com/other"),
        item(6, alert_id=6, device="LOG-2"),
    ]
    assert hold_scopes(items, limits, {}) == [
        None,
        None,
        "device:LOG-1",
        "device:LOG-1",
        None,
        None,
    ]
    # What was sent in the past hour counts.
    sent = {("webhook", "https://hooks.example.com/a", "device:LOG-1"): 2}
    assert hold_scopes(items[:1], limits, sent) == ["device:LOG-1"]


def test_critical_alerts_digests_and_lifecycle_events_are_never_held_but_counted() -> None:
    limits = Limits(per_device=0, per_shipment=0, per_recipient=1)
    items = [
        item(1, severity="critical"),
        item(2),  # the critical one counted: the limit of 1 is reached
        item(3, event="digest", alert_id=None),
        item(4, alert_id=None, event="shipment.departed"),
        item(5, severity="critical"),
    ]
    assert hold_scopes(items, limits, {}) == [None, "recipient", None, None, None]


def test_backlog_groups_are_per_recipient_and_shipment_with_an_opened_event() -> None:
    items = [
        item(1, alert_id=1),
        item(2, alert_id=2),
        item(3, alert_id=3, shipment=11),  # alone for its shipment
        item(4, alert_id=4, target="https://hooks.example.com/b"),
        item(5, alert_id=5, target="https://hooks.example.com/b", event="cleared"),
        item(6, alert_id=6, shipment=12, event="cleared"),
        item(7, alert_id=7, shipment=12, event="resolved"),  # no "opened": not a backlog
        item(8, alert_id=8, attempt=2),  # a retry is never regrouped
    ]
    groups = [[i.notification_id for i in g] for g in backlog_groups(items)]
    assert sorted(groups) == [[1, 2], [4, 5]]


def test_a_digest_lists_each_alert_once_and_counts_what_it_does_not_list() -> None:
    alerts = [
        {"id": i % 30, "state": "open" if i < 30 else "cleared", "severity": "major", "title": "t"}
        for i in range(60)
    ]
    payload = digest_payload(
        tier=0, reason="backlog", shipment_reference="SHP-1", alerts=alerts, base_url="https://x"
    )
    assert len(payload["alerts"]) == DIGEST_LISTED
    assert len(payload["alerts"]) + payload["held_back"] == 30
    assert all(a["state"] == "cleared" for a in payload["alerts"])  # the latest of each
    assert payload["links"] == {"alerts": "https://x/shipments/SHP-1"}
    mail = email_message(payload, sender="cc@example.com", recipient="qa@example.com")
    listed, more = len(payload["alerts"]), payload["held_back"]
    assert mail["Subject"] == f"[coldchain] {listed} alerts for SHP-1, {more} more held back"
    assert f"{more} more held back" in mail.get_content()
    assert {k for k in payload} == {
        "event",
        "tier",
        "reason",
        "shipment_reference",
        "alerts",
        "held_back",
        "links",
    }


# --------------------------------------------------------------------------------------------
# The real engine, outbox and receiver
# --------------------------------------------------------------------------------------------

T0 = datetime(2026, 11, 20, 3, 0, tzinfo=UTC)


@pytest.fixture
async def pool(db_dsn: str) -> AsyncIterator[AsyncConnectionPool]:
    async with AsyncConnectionPool(db_dsn, open=False, min_size=1, max_size=4) as p:
        await p.wait()
        yield p


def with_alerts(settings: Settings, **changes: Any) -> Settings:
    alerts = AlertsSettings.model_validate({**settings.alerts.model_dump(), **changes})
    return settings.model_copy(update={"alerts": alerts})


def rows(dsn: str, sql: str, *args: object) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(sql, args).fetchall()


def control(settings: Settings, limits: Limits) -> OutboxControl:
    a = settings.alerts
    return OutboxControl(
        limits=lambda: limits,
        digest_after_s=a.flood_digest_after_s,
        lease_s=a.webhook_timeout_s + LEASE_MARGIN_S,
        base_url=settings.web.base_url(),
    )


def seed_fleet(dsn: str, *, shipments: int, per_shipment: int, start: datetime) -> None:
    """``shipments`` shipments in transit with ``per_shipment`` loggers each (LOG-s-d)."""
    seed_shipment(dsn, reference="SHP-0", device_id="LOG-0-0", start=start)
    with psycopg.connect(dsn) as conn:
        conn.execute(
            """INSERT INTO devices (device_id, interval_s)
               SELECT format('LOG-%%s-%%s', s, d), 60
               FROM generate_series(1, %(n)s - 1) s, generate_series(0, %(k)s - 1) d""",
            {"n": shipments, "k": per_shipment},
        )
        conn.execute(
            """INSERT INTO devices (device_id, interval_s)
               SELECT format('LOG-0-%%s', d), 60 FROM generate_series(1, %(k)s - 1) d""",
            {"k": per_shipment},
        )
        conn.execute(
            """INSERT INTO shipments (reference, product_gtin, origin, destination, status,
                   planned_departure, planned_arrival)
               SELECT 'SHP-' || s, product_gtin, origin, destination, status,
                      planned_departure, planned_arrival
               FROM shipments, generate_series(1, %(n)s - 1) s WHERE reference = 'SHP-0'""",
            {"n": shipments},
        )
        conn.execute(
            """INSERT INTO device_assignments (device_id, shipment_id, during)
               SELECT format('LOG-%%s-%%s', substr(s.reference, 5), d), s.shipment_id,
                      tstzrange(%(start)s, %(start)s + interval '48 hours')
               FROM shipments s, generate_series(0, %(k)s - 1) d
               WHERE NOT (s.reference = 'SHP-0' AND d = 0)""",
            {"k": per_shipment, "start": start},
        )


def backlog(shipments: int, per_shipment: int, start: datetime) -> list[Reading]:
    """Two hours at one reading a minute per logger. In every shipment logger 0 goes warm after
    30 minutes, logger 1 cold and logger 2's battery is low: three alerts per shipment, all still
    under way at the end (nothing clears within the backlog)."""
    readings = []
    for s in range(shipments):
        for d in range(per_shipment):
            for m in range(120):
                temp, battery = 5.0, 0.9
                if d == 0 and m >= 30:
                    temp = 12.0
                elif d == 1 and m >= 30:
                    temp = 1.0
                elif d == 2:
                    battery = 0.1
                ts = start + timedelta(minutes=m)
                readings.append(Reading(f"LOG-{s}-{d}", ts, temp, battery=battery))
    return readings


async def drain(worker: DeliveryWorker, dsn: str, within_s: float) -> None:
    deadline = time.monotonic() + within_s
    while rows(
        dsn,
        """SELECT 1 FROM notifications WHERE delivered_at IS NULL AND gave_up_at IS NULL
           AND next_attempt_at < 'infinity'""",
    ):
        assert time.monotonic() < deadline, "the outbox did not drain"
        await worker.deliver_due()
        await asyncio.sleep(0.05)


async def test_a_two_hour_backlog_of_500_loggers_sends_one_message_per_shipment_and_channel(
    pool: AsyncConnectionPool, settings: Settings, db_dsn: str
) -> None:
    shipments, per_shipment = 100, 5  # 500 loggers, 60,000 readings
    start = T0 - timedelta(hours=2)
    seed_fleet(db_dsn, shipments=shipments, per_shipment=per_shipment, start=start)
    s = with_alerts(settings, webhook_secret=SECRET.decode(), battery_threshold=0.2)
    async with WebhookReceiver() as tower, WebhookReceiver() as qa:
        rules = RulesFile(
            escalation=EscalationPolicy(
                tiers=[EscalationTier(name="tower", webhooks=[tower.url, qa.url])]
            )
        )
        t = time.monotonic()
        await TimescaleSink(pool).write(Batch.of(backlog(shipments, per_shipment, start)))
        stored_s = time.monotonic() - t
        engine = RulesEngine(pool, s, clock=lambda: T0, rules_file=rules)
        await engine.setup()
        await engine.process_changes()
        judged_s = time.monotonic() - t - stored_s
        opened = rows(db_dsn, "SELECT shipment_id, rule_key FROM alerts")
        assert len(opened) == 3 * shipments  # temp_high, temp_low, battery_low everywhere
        limits = Limits(per_device=10, per_shipment=20, per_recipient=60)
        async with httpx.AsyncClient(timeout=5.0) as client:
            worker = DeliveryWorker(
                pool, s.alerts, senders_from_settings(s.alerts, client), control=control(s, limits)
            )
            await drain(worker, db_dsn, 30)
        print(f"backlog stored in {stored_s:.1f} s, judged in {judged_s:.1f} s")

    for rx in (tower, qa):
        messages = [p for _h, p, _ok in rx.received]
        per_shipment_count = Counter(
            p.get("shipment_reference") or p["alert"]["shipment_reference"] for p in messages
        )
        assert len(per_shipment_count) == shipments
        assert max(per_shipment_count.values()) == 1  # one message per shipment per channel
        assert all(p["event"] == "digest" and p["reason"] == "backlog" for p in messages)
        counted = sum(len(p["alerts"]) + p["held_back"] for p in messages)
        assert counted == len(opened)
        listed = {(a["shipment_id"], a["rule_key"]) for p in messages for a in p["alerts"]}
        assert listed == set(opened)
    # Every notification is settled as delivered in a digest, with its own deliveries row.
    settled = rows(
        db_dsn,
        """SELECT n.delivered_at IS NOT NULL, d.response LIKE 'sent in digest %%'
           FROM notifications n JOIN deliveries d ON d.notification_id = n.id
           WHERE n.event = 'opened'""",
    )
    assert len(settled) == 2 * len(opened) and all(a and b for a, b in settled)


async def test_beyond_the_per_device_limit_notifications_are_held_and_summed_up_in_one_digest(
    pool: AsyncConnectionPool, settings: Settings, db_dsn: str
) -> None:
    seed_shipment(db_dsn, start=T0 - timedelta(hours=1))
    s = with_alerts(settings, webhook_secret=SECRET.decode(), flood_digest_after_s=600)
    async with WebhookReceiver() as rx:
        s = with_alerts(s, webhook_urls=[rx.url])
        # Three excursions of one logger: opened, cleared, re-opened, cleared, re-opened…
        temps = [12.0 if (m // 20) % 2 == 0 and m >= 10 else 5.0 for m in range(100)]
        readings = [Reading("LOG-1", T0 + timedelta(minutes=m), t) for m, t in enumerate(temps)]
        engine = RulesEngine(pool, s, clock=lambda: T0 + timedelta(hours=2))
        await engine.setup()
        limits = Limits(per_device=1, per_shipment=0, per_recipient=0)
        async with httpx.AsyncClient(timeout=5.0) as client:
            worker = DeliveryWorker(
                pool, s.alerts, senders_from_settings(s.alerts, client), control=control(s, limits)
            )
            # One reading at a time, delivering as it goes: no backlog, a flood.
            sink = TimescaleSink(pool)
            for r in readings:
                await sink.write(Batch.of([r]))
                await engine.process_changes()
                await worker.deliver_due()
            made = rows(db_dsn, "SELECT count(*) FROM notifications WHERE alert_id IS NOT NULL")
            assert made[0][0] >= 3
            held = rows(db_dsn, "SELECT count(*) FROM notifications WHERE held_at IS NOT NULL")
            assert held[0][0] == made[0][0] - 1  # all but the first
            assert len(rx.received) == 1  # only the first, so far
            pending = rows(
                db_dsn,
                """SELECT count(*), min(next_attempt_at - created_at) FROM notifications
                   WHERE event = 'digest' AND delivered_at IS NULL""",
            )
            assert pending == [(1, timedelta(seconds=600))]  # one digest, due in 10 minutes
            # The alerts page shows the latest notification as held back, and why.
            with psycopg.connect(db_dsn, row_factory=dict_row) as conn:
                [row] = alert_board(conn).items
            [shown] = row["notified"]
            assert shown["status"] == "held" and "device:LOG-1" in shown["error"]
            # Ten minutes later (the outbox's clock is the database's: its due time moves).
            with psycopg.connect(db_dsn) as conn:
                conn.execute(
                    "UPDATE notifications SET next_attempt_at = now() WHERE event = 'digest'"
                )
            await drain(worker, db_dsn, 10)

    assert [p["event"] for _h, p, _ok in rx.received] == ["opened", "digest"]
    digest = rx.received[1][1]
    assert digest["reason"] == "flood"
    assert len(digest["alerts"]) + digest["held_back"] == len(
        {a for (a,) in rows(db_dsn, "SELECT alert_id FROM notifications WHERE held_at IS NOT NULL")}
    )
    # The held rows are settled with the digest, each with a deliveries row that says so.
    log = rows(
        db_dsn,
        """SELECT d.response FROM notifications n JOIN deliveries d ON d.notification_id = n.id
           WHERE n.held_at IS NOT NULL""",
    )
    assert len(log) == held[0][0]
    assert all(r.startswith("held back (flood control)") for (r,) in log)


async def test_the_rules_files_limits_apply_also_without_tiers_of_its_own(
    pool: AsyncConnectionPool, settings: Settings
) -> None:
    rules = rules_from_text("[escalation.limits]\nper_device_per_hour = 3\n", source="limits.toml")
    engine = RulesEngine(pool, settings, rules_file=rules)
    assert engine.policy.tiers == []  # tier 0 from the settings, as before
    limits = Limits.of(per_device=10, per_shipment=20, per_recipient=60, rules=engine.flood_limits)
    assert limits == Limits(per_device=3, per_shipment=20, per_recipient=60)
