"""The fleet's "Ingest stalled" alert: the pure verdict, and the rules engine's service (run in
this process, against the real database and a real webhook receiver) that opens ONE alert (no shipment) when readings stop while a logger is expected to report,
notifies tier 0 through the outbox, resolves it when readings resume, and the alert list, the
board and the dashboard's row show it."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool
from pydantic import SecretStr

from alerts.channels.email import email_message
from alerts.delivery import alert_payload
from alerts.ingest_watch import stalled, title
from alerts.service import run_rules_engine
from coldchain.settings import Settings
from coldchain.telemetry import Reading
from dashboard.pages.alert_rows import alert_row
from ingest.sink import Batch, TimescaleSink
from services import alerts as alert_service
from tests.fixtures.data import seed_shipment
from tests.fixtures.engines import wait_until
from tests.fixtures.webhooks import SECRET, WebhookReceiver


@pytest.mark.parametrize(
    ("silent_s", "expected", "stall_s", "verdict"),
    [
        (600.0, 3, 600.0, True),  # exactly the bound
        (599.0, 3, 600.0, False),
        (3600.0, 0, 600.0, False),  # nobody expected: nothing in transit, or all offline before
        (None, 5, 600.0, False),  # nothing ever stored
    ],
)
def test_a_stall_is_silence_while_loggers_are_expected(
    silent_s: float | None, expected: int, stall_s: float, verdict: bool
) -> None:
    assert stalled(silent_s=silent_s, expected=expected, stall_s=stall_s) is verdict


def test_the_title_says_how_long_and_how_many() -> None:
    assert title(silent_s=725, expected=12) == (
        "Ingest stalled: no reading stored for 12 min while 12 loggers are expected to report"
    )
    assert title(silent_s=4.6, expected=1) == (
        "Ingest stalled: no reading stored for 4 s while 1 logger is expected to report"
    )


STALL_S = 3.0


@pytest.mark.integration
async def test_one_fleet_alert_opens_when_ingest_stalls_and_resolves_when_it_resumes(
    settings: Settings, db_dsn: str, tmp_path: Path
) -> None:
    log = tmp_path / "no-engine-process.log"  # wait_until's report: the engine logs in-process
    log.write_text("(the engine runs in this process: see the captured log)")
    seed_shipment(db_dsn, device_id="LOG-A", start=datetime.now(UTC) - timedelta(hours=1))
    seed_shipment(
        db_dsn,
        reference="SHP-0002",
        device_id="LOG-B",
        start=datetime.now(UTC) - timedelta(hours=1),
    )

    def alerts() -> list[dict]:
        with psycopg.connect(db_dsn, row_factory=dict_row) as conn:
            return conn.execute(
                "SELECT alert_id, shipment_id, rule_key, severity, state, title FROM alerts"
                " ORDER BY alert_id"
            ).fetchall()

    async with (
        AsyncConnectionPool(db_dsn, open=False, min_size=1, max_size=2) as pool,
        WebhookReceiver() as hook,
    ):
        await pool.wait()
        sink = TimescaleSink(pool)

        async def reading(*devices: str) -> None:
            now = datetime.now(UTC)
            await sink.write(Batch.of([Reading(d, now, 5.0) for d in devices]))

        alerts_settings = settings.alerts.model_copy(
            update={
                "ingest_stall_min": STALL_S / 60,
                "offline_check_interval_s": 0.3,
                "poll_interval_s": 0.2,
                "webhook_urls": [hook.url],
                "webhook_secret": SecretStr(SECRET.decode()),
            }
        )
        stop = asyncio.Event()
        # The engine's service in this process (the same code as `coldchain rules`, without a
        # process's start-up time): evaluation, the periodic pass, delivery.
        service = asyncio.create_task(
            run_rules_engine(settings.model_copy(update={"alerts": alerts_settings}), stop)
        )
        try:
            # Both loggers report; then ingest stops (nothing stored at all).
            for k in range(4):
                await asyncio.sleep(0.3 if k else 0)
                await reading("LOG-A", "LOG-B")
            stopped = asyncio.get_running_loop().time()  # the last reading is stored
            assert alerts() == []
            await wait_until(lambda: bool(alerts()), STALL_S + 10, log)
            took = asyncio.get_running_loop().time() - stopped
            assert STALL_S <= took <= STALL_S + 8, took
            [opened] = alerts()
            assert (opened["shipment_id"], opened["rule_key"], opened["severity"]) == (
                None,
                "ingest_stalled",
                "critical",
            )
            assert opened["state"] == "open"
            assert opened["title"].startswith("Ingest stalled: no reading stored for ")
            assert opened["title"].endswith(" while 2 loggers are expected to report")
            await wait_until(lambda: len(hook.received) >= 1, 15, log)
            headers, payload, _ = hook.received[0]
            assert headers["x-coldchain-event"] == "opened"
            assert payload["tier"] == 0
            assert payload["alert"]["rule_key"] == "ingest_stalled"
            assert payload["alert"]["shipment_id"] is None

            # Still silent: still ONE alert, however many passes.
            await asyncio.sleep(1.0)
            assert len(alerts()) == 1

            # Every reader of alerts copes with an alert without a shipment.
            with psycopg.connect(db_dsn, row_factory=dict_row, autocommit=True) as conn:
                listed = alert_service.list_alerts(conn)
                board = alert_service.alert_board(conn)
            assert [(a["shipment_reference"], a["rule_key"]) for a in listed.items] == [
                (None, "ingest_stalled")
            ]
            [row] = board.items
            assert row["condition"] == "active"
            assert "Fleet" in str(alert_row(row, datetime.now(UTC)))

            # Readings again: it resolves by itself, and tier 0 hears so.
            await reading("LOG-A")
            await wait_until(lambda: alerts()[0]["state"] == "resolved", 15, log)
            await wait_until(lambda: len(hook.received) >= 2, 15, log)
            assert hook.received[1][0]["x-coldchain-event"] == "resolved"
            assert len(alerts()) == 1
        finally:
            stop.set()
            await asyncio.wait_for(service, timeout=30)


def test_a_fleet_alerts_e_mail_says_fleet_for_the_shipment() -> None:
    alert = {
        "alert_id": 9,
        "shipment_id": None,
        "reference": None,
        "rule_key": "ingest_stalled",
        "severity": "critical",
        "state": "open",
        "title": title(silent_s=725, expected=3),
    }
    msg = email_message(alert_payload("opened", alert, tier=0), sender="a@x", recipient="b@x")
    assert msg["Subject"] == (
        "[coldchain CRITICAL] opened: Ingest stalled: no reading stored for 12 min while 3 "
        "loggers are expected to report (fleet)"
    )
