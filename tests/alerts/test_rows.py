"""The rules engine's rows are decoded by column name: every record matches its statement.

Against the real, migrated database: each statement's columns (names and order as PostgreSQL
describes them) are exactly its record's fields, so no column can be read into another's field;
a column order that changes still decodes right, and a column that a record does not know is
an error, not a shifted value.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest

from alerts.rows import (
    AlertRecord,
    Change,
    CheckpointRecord,
    EscalationCandidate,
    ExcursionRecord,
    OfflineCandidate,
    Pair,
    PairInfo,
    PairReadings,
    ReminderCandidate,
    StateRecord,
    TempAlertStatus,
    UnlinkedExcursion,
    fetch,
)
from db.queries import checkpoints as checkpoints_q
from db.queries import rules as q

pytestmark = pytest.mark.integration

NOTHING: tuple[list[Any], list[Any]] = ([], [])
ALL = {"held": list(range(16)), "partitions": 16}
NO_CHANGES = {"device_id": [], "ts_min": [], "ts_max": [], "first": [0] * 16, **ALL}
AFTER_START = {"xid": 0, "change_id": 0, "horizon": 1 << 40, "limit": 10}
STATEMENTS: list[tuple[str, str, Any, type]] = [
    ("PENDING_CHANGES", q.PENDING_CHANGES, AFTER_START, Change),
    ("AFFECTED_PAIRS", q.AFFECTED_PAIRS, NO_CHANGES, Pair),
    ("RECHECK_PAIRS", q.RECHECK_PAIRS, ALL, Pair),
    ("HOLDING_OFFLINE", q.HOLDING_OFFLINE, ALL, Pair),
    ("PAIR_INFO", q.PAIR_INFO, NOTHING, PairInfo),
    ("PAIR_READINGS", q.PAIR_READINGS, ([], [], []), PairReadings),
    ("PAIR_CHECKPOINTS", checkpoints_q.PAIR_CHECKPOINTS, NOTHING, CheckpointRecord),
    ("CURRENT_EXCURSIONS", q.CURRENT_EXCURSIONS, NOTHING, ExcursionRecord),
    ("PAIR_STATES", q.PAIR_STATES, NOTHING, StateRecord),
    ("SHIPMENT_STATES", q.SHIPMENT_STATES, ([],), StateRecord),
    ("UNRESOLVED_ALERTS", q.UNRESOLVED_ALERTS, ([],), AlertRecord),
    ("ALARMED_UNLINKED", q.ALARMED_UNLINKED, ([],), UnlinkedExcursion),
    ("TEMP_ALERT_STATUS", q.TEMP_ALERT_STATUS, ([],), TempAlertStatus),
    (
        "OFFLINE_CANDIDATES",
        q.OFFLINE_CANDIDATES,
        {"now": datetime.now(UTC), **ALL},
        OfflineCandidate,
    ),
    (
        "ESCALATION_CANDIDATES",
        q.ESCALATION_CANDIDATES,
        {"last_tier": 1, **ALL},
        EscalationCandidate,
    ),
    (
        "REMINDER_CANDIDATES",
        q.REMINDER_CANDIDATES,
        {"due_before": datetime.now(UTC), **ALL},
        ReminderCandidate,
    ),
]


@pytest.mark.parametrize(
    ("query", "params", "record"), [s[1:] for s in STATEMENTS], ids=[s[0] for s in STATEMENTS]
)
def test_each_statement_returns_exactly_its_records_fields(
    db_dsn: str, query: str, params: Any, record: type
) -> None:
    with psycopg.connect(db_dsn) as conn, conn.cursor() as cur:
        cur.execute(query, params)
        assert cur.description is not None
        columns = [c.name for c in cur.description]
    assert columns == [f.name for f in dataclasses.fields(record)]


async def test_a_column_moved_still_lands_in_its_field(db_dsn: str) -> None:
    async with await psycopg.AsyncConnection.connect(db_dsn) as conn:
        moved = await fetch(
            conn, "SELECT 'LOG-1' AS device_id, 7::bigint AS shipment_id", None, Pair
        )
    assert moved == [Pair(shipment_id=7, device_id="LOG-1")]


async def test_a_column_the_record_does_not_know_is_an_error(db_dsn: str) -> None:
    async with await psycopg.AsyncConnection.connect(db_dsn) as conn:
        with pytest.raises(TypeError, match="ts_min"):
            await fetch(
                conn, "SELECT 7::bigint AS shipment_id, 'LOG-1' AS device_id, now() AS ts_min",
                None, Pair,
            )  # fmt: skip
        with pytest.raises(TypeError, match="device_id"):
            await fetch(conn, "SELECT 7::bigint AS shipment_id", None, Pair)
