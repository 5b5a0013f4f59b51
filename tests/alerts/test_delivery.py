"""Delivery: signed webhooks to a real HTTP receiver, e-mail to a real SMTP server, retries."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from typing import Any

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from alerts.channels import senders_from_settings
from alerts.channels.email import email_message
from alerts.channels.webhook import signature, verify_signature
from alerts.delivery import DeliveryWorker, alert_payload, backoff
from alerts.rounds import RulesEngine
from alerts.service import run_rules_engine
from coldchain.settings import AlertsSettings, Settings
from coldchain.telemetry import Reading
from ingest.sink import Batch, TimescaleSink
from launcher.localstack import free_port
from tests.fixtures.data import seed_shipment
from tests.fixtures.mail import Mailbox
from tests.fixtures.webhooks import SECRET, WebhookReceiver

ALERT = {
    "alert_id": 7,
    "shipment_id": 3,
    "reference": "SHP-7",
    "rule_key": "temp_high",
    "severity": "major",
    "state": "open",
    "title": "Temperature above range: 12.0 °C, limit 8 °C",
    "device_id": "LOG-1",
    "triggered_at": datetime(2026, 1, 1, tzinfo=UTC),
    "value": 12.0,
    "thresholds": {"high_c": 8.0},
    "escalation_level": 0,
}


# --------------------------------------------------------------------------------------------
# Pure parts
# --------------------------------------------------------------------------------------------


def test_signature_is_hmac_sha256_of_timestamp_and_body() -> None:
    body = b'{"a":1}'
    expected = hmac.new(SECRET, b"1700000000." + body, hashlib.sha256).hexdigest()
    assert signature(SECRET, 1700000000, body) == f"sha256={expected}"
    header = signature(SECRET, 1700000000, body)
    assert verify_signature(SECRET, "1700000000", body, header, now=1700000100)
    assert not verify_signature(SECRET, "1700000000", body + b" ", header)
    assert not verify_signature(b"other", "1700000000", body, header)
    assert not verify_signature(SECRET, "1700000000", body, header, now=1700009999)  # replayed
    assert not verify_signature(SECRET, "soon", body, header)


def test_backoff_doubles_up_to_the_cap() -> None:
    waits = [backoff(n, base_s=5, cap_s=60).total_seconds() for n in range(1, 7)]
    assert waits == [5, 10, 20, 40, 60, 60]


def test_payload_and_email_carry_the_alert() -> None:
    payload = alert_payload("opened", ALERT, tier=1)
    assert payload["event"] == "opened" and payload["tier"] == 1
    assert payload["alert"]["triggered_at"] == "2026-01-01T00:00:00+00:00"
    assert payload["alert"]["shipment_reference"] == "SHP-7"
    json.dumps(payload)  # storable and sendable as is
    msg = email_message(payload, sender="cc@example.com", recipient="qa@example.com")
    assert msg["Subject"] == (
        "[coldchain MAJOR] opened: Temperature above range: 12.0 °C, limit 8 °C (SHP-7)"
    )
    assert "the reading's time" in msg.get_content() and '"high_c": 8.0' in msg.get_content()


# --------------------------------------------------------------------------------------------
# Real receivers
# --------------------------------------------------------------------------------------------


@pytest.fixture
async def pool(db_dsn: str) -> AsyncIterator[AsyncConnectionPool]:
    async with AsyncConnectionPool(db_dsn, open=False, min_size=1, max_size=4) as p:
        await p.wait()
        yield p


def with_alerts(settings: Settings, **changes: Any) -> Settings:
    alerts = AlertsSettings.model_validate({**settings.alerts.model_dump(), **changes})
    return settings.model_copy(update={"alerts": alerts})


def rows(dsn: str, sql: str, *args: object) -> list[tuple]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(sql, args).fetchall()


T0 = datetime(2026, 11, 20, 3, 0, tzinfo=UTC)


async def raise_an_alert(pool: AsyncConnectionPool, settings: Settings, dsn: str) -> RulesEngine:
    """A 30-minute excursion (alarm after 15 min), judged: the alert opens, then clears."""
    seed_shipment(dsn, start=T0 - timedelta(hours=1))
    temps = [12.0 if 10 <= m < 40 else 5.0 for m in range(60)]
    await TimescaleSink(pool).write(
        Batch.of([Reading("LOG-1", T0 + timedelta(minutes=m), t) for m, t in enumerate(temps)])
    )
    rules = RulesEngine(pool, settings, clock=lambda: T0 + timedelta(hours=1))
    await rules.setup()
    await rules.process_changes()
    return rules


async def test_a_webhook_receiver_and_an_smtp_server_really_receive(
    pool: AsyncConnectionPool, settings: Settings, db_dsn: str, smtp: tuple[Mailbox, int]
) -> None:
    box, port = smtp
    async with WebhookReceiver() as rx:
        s = with_alerts(
            settings,
            webhook_urls=[rx.url],
            webhook_secret=SECRET.decode(),
            smtp_host="127.0.0.1",
            smtp_port=port,
            smtp_from="coldchain@example.com",
            smtp_to=["oncall@example.com"],
        )
        await raise_an_alert(pool, s, db_dsn)
        async with _client() as client:
            worker = DeliveryWorker(pool, s.alerts, senders_from_settings(s.alerts, client))
            assert await worker.deliver_due() == 4  # opened and cleared, to each of two targets
            assert await worker.deliver_due() == 0  # nothing twice

    events = [(h["x-coldchain-event"], p["alert"]["rule_key"], ok) for h, p, ok in rx.received]
    assert events == [("opened", "temp_high", True), ("cleared", "temp_high", True)]
    headers, payload, _ = rx.received[0]
    assert payload["alert"]["triggered_at"] == (T0 + timedelta(minutes=25)).isoformat()
    assert headers["content-type"] == "application/json"
    assert int(headers["x-coldchain-delivery"]) > 0

    mails = [message_from_bytes(content) for _f, _t, content in box.messages]
    assert [m["Subject"].split(":")[0] for m in mails] == [
        "[coldchain MAJOR] opened",
        "[coldchain MAJOR] cleared",
    ]
    assert all(to == ["oncall@example.com"] for _f, to, _c in box.messages)
    attempts = rows(db_dsn, "SELECT channel, event, attempt, ok FROM deliveries ORDER BY id")
    assert sorted(attempts) == sorted(
        [(c, e, 1, True) for c in ("webhook", "email") for e in ("opened", "cleared")]
    )


async def test_a_failing_delivery_is_retried_with_backoff_and_every_attempt_is_logged(
    pool: AsyncConnectionPool, settings: Settings, db_dsn: str
) -> None:
    closed = f"http://127.0.0.1:{free_port()}/nobody-listens"
    async with WebhookReceiver(fail_first=2) as rx:
        s = with_alerts(
            settings,
            webhook_urls=[rx.url, closed],
            webhook_secret=SECRET.decode(),
            delivery_backoff_s=0.2,
            delivery_max_attempts=3,
        )
        rules = await raise_an_alert(pool, s, db_dsn)
        assert rules.stats.notifications_queued == 4
        async with _client() as client:
            worker = DeliveryWorker(pool, s.alerts, senders_from_settings(s.alerts, client))
            deadline = time.monotonic() + 10
            while rows(
                db_dsn,
                "SELECT 1 FROM notifications WHERE delivered_at IS NULL AND gave_up_at IS NULL",
            ):
                assert time.monotonic() < deadline, "deliveries did not settle"
                await worker.deliver_due()
                await asyncio.sleep(0.1)
        assert len(rx.received) == 2  # both events, in the end

    log = rows(
        db_dsn,
        "SELECT target = %s, attempt, ok, response FROM deliveries ORDER BY id",
        closed,
    )
    to_receiver = [(a, ok) for dead, a, ok, _r in log if not dead]
    # Two 503s (answered to the first two requests), both to "opened": "cleared" waits until
    # "opened" is delivered (an alert's events reach a recipient in order), then goes at once.
    assert to_receiver == [(1, False), (2, False), (3, True), (1, True)]
    assert all("HTTP 503" in r for dead, _a, ok, r in log if not dead and not ok)
    to_nobody = [(a, ok) for dead, a, ok, _r in log if dead]
    assert sorted(to_nobody) == [
        (1, False),
        (1, False),
        (2, False),
        (2, False),
        (3, False),
        (3, False),
    ]
    given_up = rows(
        db_dsn,
        "SELECT attempts, last_error IS NOT NULL FROM notifications WHERE gave_up_at IS NOT NULL",
    )
    assert given_up == [(3, True), (3, True)]


async def test_the_running_engine_is_not_held_up_by_a_hanging_receiver(
    settings: Settings, db_dsn: str, smtp: tuple[Mailbox, int]
) -> None:
    box, port = smtp
    now = datetime.now(UTC).replace(microsecond=0)
    start = now - timedelta(hours=1)
    seed_shipment(db_dsn, start=start - timedelta(hours=1))
    async with WebhookReceiver(hang_first_s=5.0) as rx:
        s = with_alerts(
            settings,
            webhook_urls=[rx.url],
            webhook_secret=SECRET.decode(),
            webhook_timeout_s=1.0,
            delivery_backoff_s=0.2,
            smtp_host="127.0.0.1",
            smtp_port=port,
            smtp_to=["oncall@example.com"],
        )
        stop = asyncio.Event()
        service = asyncio.create_task(run_rules_engine(s, stop))
        try:
            async with AsyncConnectionPool(db_dsn, open=False, min_size=1, max_size=2) as p:
                await p.wait()
                sink = TimescaleSink(p)
                # Warm, then at the alarm delay one reading makes the alert.
                readings = [Reading("LOG-1", start + timedelta(minutes=m), 12.0) for m in range(16)]
                await sink.write(Batch.of(readings[:15]))
                await _wait_for(lambda: rows(db_dsn, "SELECT 1 FROM reading_changes"), 5)
                committed = time.monotonic()
                await sink.write(Batch.of(readings[15:]))
                await _wait_for(lambda: rows(db_dsn, "SELECT 1 FROM alerts"), 10)
                latency = time.monotonic() - committed
                await _wait_for(lambda: rx.received and box.messages, 15)
            # The receiver hangs for 5 s on the first call: an engine that waited for it would
            # store the alert no sooner than that (the margin is for a busy machine).
            assert latency < 4.0, f"alert stored {latency:.2f} s after its reading"
            expected = {("webhook", False), ("webhook", True), ("email", True)}

            def attempts() -> set[tuple[str, bool]]:
                return set(rows(db_dsn, "SELECT channel, ok FROM deliveries"))

            # A delivery is logged once its answer is in, just after the receiver has it.
            await _wait_for(lambda: expected <= attempts(), 10)
        finally:
            stop.set()
            await asyncio.wait_for(service, 20)


async def _wait_for(check: Any, within_s: float) -> None:
    deadline = time.monotonic() + within_s
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def _client() -> AsyncIterator[Any]:
    import httpx

    async with httpx.AsyncClient(timeout=5.0) as client:
        yield client


def test_settings_defaults_deliver_nothing() -> None:
    assert AlertsSettings().webhook_urls == [] and AlertsSettings().smtp_host is None
