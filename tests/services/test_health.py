"""services.health: a real database answers; a database that is not there gives False quickly;
the pipeline's figures (engine lag, outbox) read from real rows."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg import Connection
from psycopg.rows import DictRow, dict_row
from psycopg_pool import ConnectionPool

from alerts.partitions import cursor_prefix
from coldchain.settings import AlertsSettings
from launcher.localstack import free_port
from services.health import database_answers, pipeline_figures
from tests.fixtures.data import seed_shipment

pytestmark = pytest.mark.integration


def _pool(dsn: str) -> ConnectionPool[Any]:
    return ConnectionPool(
        dsn,
        connection_class=Connection[DictRow],
        kwargs={"autocommit": True, "row_factory": dict_row},
        min_size=1,
        open=True,
        reconnect_timeout=5,
    )


def test_the_database_answers(db_dsn: str) -> None:
    with _pool(db_dsn) as pool:
        assert database_answers(pool, timeout_s=5) is True


def test_no_database_is_false_within_the_timeout(db_dsn: str) -> None:
    nowhere = re.sub(r":\d+/", f":{free_port()}/", db_dsn)
    assert nowhere != db_dsn
    with _pool(nowhere) as pool:
        started = time.monotonic()
        assert database_answers(pool, timeout_s=0.5) is False
        assert time.monotonic() - started < 3


def test_the_pipeline_figures_follow_the_changes_and_the_outbox(db_dsn: str) -> None:
    settings = AlertsSettings(partitions=2)
    shp = seed_shipment(db_dsn, start=datetime.now(UTC) - timedelta(hours=1))
    with psycopg.connect(db_dsn, autocommit=True) as c:
        c.execute(
            """INSERT INTO reading_changes (device_id, ts_min, ts_max, n_readings, committed_at)
               VALUES ('LOG-1', now(), now(), 1, now() - interval '120 s'),
                      ('LOG-1', now(), now(), 1, now() - interval '30 s')"""
        )
        alert_id = c.execute(
            """INSERT INTO alerts (shipment_id, rule_key, severity, title, triggered_at)
               VALUES (%s, 'temp_high', 'major', 'hot', now()) RETURNING alert_id""",
            (shp.shipment_id,),
        ).fetchone()[0]  # type: ignore[index]
        for age_s, attempts, delivered, gave_up in (
            (600, 1, False, False),  # waiting for a retry: the oldest undelivered
            (60, 0, False, False),
            (9000, 3, True, False),  # delivered: not waiting
            (5000, 10, False, True),  # given up within the hour
        ):
            c.execute(
                """INSERT INTO notifications (alert_id, event, channel, target, payload,
                       created_at, attempts, delivered_at, gave_up_at)
                   VALUES (%s, 'opened', 'webhook', 'http://x.example/h', '{}',
                           now() - make_interval(secs => %s), %s,
                           CASE WHEN %s THEN now() END,
                           CASE WHEN %s THEN now() - interval '10 min' END)""",
                (alert_id, age_s, attempts, delivered, gave_up),
            )
    with _pool(db_dsn) as pool:
        before = pipeline_figures(pool, settings, timeout_s=5)
        assert before is not None
        # No engine has started: every change is behind, the oldest 120 s old.
        assert 119 < before.engine_lag_s < 130
        assert 599 < before.outbox_oldest_s < 610
        assert (before.notifications_retrying, before.deliveries_failed_1h) == (1, 1)
        assert before.engines == 0
        with psycopg.connect(db_dsn, autocommit=True) as c:
            # Both partitions' cursors past the first change: the second is the oldest left.
            first = c.execute(
                "SELECT xid, change_id FROM reading_changes ORDER BY change_id LIMIT 1"
            ).fetchone()
            assert first is not None
            for p in range(2):
                c.execute(
                    """INSERT INTO engine_cursor (name, last_xid, last_change_id)
                       VALUES (%s, %s, %s)""",
                    (f"{cursor_prefix(2)}{p}", first[0], first[1]),
                )
        after = pipeline_figures(pool, settings, timeout_s=5)
        assert after is not None and 29 < after.engine_lag_s < 40


def test_no_database_gives_no_pipeline_figures(db_dsn: str) -> None:
    nowhere = re.sub(r":\d+/", f":{free_port()}/", db_dsn)
    with _pool(nowhere) as pool:
        assert pipeline_figures(pool, AlertsSettings(), timeout_s=0.5) is None
