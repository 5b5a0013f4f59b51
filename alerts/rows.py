"""The rules engine's rows, decoded by column name into typed, frozen records.

Each record's fields are the column names of its statement in db/queries/rules.py, and
:func:`fetch` builds it with psycopg's ``class_row``: a column renamed, added or removed there
is a ``TypeError`` at the first round, never a value silently read into the wrong field (as
unpacking ``r[0]``..``r[15]`` by position allowed). The ``stored()``/``alert()`` methods turn
a record into what the pure policy (:mod:`alerts.policy`) takes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import numpy as np
from psycopg import AsyncConnection
from psycopg.abc import Params
from psycopg.rows import class_row

from alerts import policy
from alerts.conditions.arrays import Series
from alerts.conditions.states import ConditionState
from db.binary import float8_values, timestamp_us_values

R = TypeVar("R")

EMPTY_SERIES = Series(
    np.empty(0, np.int64), np.empty(0, np.float64), np.empty(0, np.float64), np.empty(0, np.float64)
)


async def fetch(
    conn: AsyncConnection[Any],
    query: str,
    params: Params | None,
    record: type[R],
    *,
    binary: bool = False,
) -> list[R]:
    """Run ``query`` and return its rows as ``record``s, built by column name."""
    async with conn.cursor(row_factory=class_row(record), binary=binary) as cur:
        await cur.execute(query, params)
        return await cur.fetchall()


def pair_arrays(pairs: Sequence[tuple[int, str]]) -> tuple[list[int], list[str]]:
    """The (shipment ids, device ids) arrays the pair statements take."""
    return [p[0] for p in pairs], [p[1] for p in pairs]


@dataclass(frozen=True, slots=True)
class Change:
    """``PENDING_CHANGES``: what one commit of readings changed."""

    change_id: int
    xid: int  # the writing transaction's id: with change_id, the place in the log
    device_id: str
    ts_min: datetime
    ts_max: datetime


@dataclass(frozen=True, slots=True)
class Pair:
    """A (shipment, device) pair (``AFFECTED_PAIRS``, ``RECHECK_PAIRS``, ``HOLDING_OFFLINE``)."""

    shipment_id: int
    device_id: str

    @property
    def key(self) -> tuple[int, str]:
        return (self.shipment_id, self.device_id)


@dataclass(frozen=True, slots=True)
class PairInfo:
    """``PAIR_INFO``: a logger in a shipment, its interval and the end of its assignment."""

    shipment_id: int
    device_id: str
    interval_s: int
    assigned_until: datetime | None  # None: still assigned
    assignments: str  # its assignment ranges, as text: part of a checkpoint's fingerprint


@dataclass(frozen=True, slots=True)
class PairReadings:
    """``PAIR_READINGS``: a pair's readings, one binary array per column (same row order)."""

    pair_index: int  # 1-based, in the order the pairs were given
    ts: bytes
    temp_c: bytes
    rh: bytes
    battery: bytes

    def series(self) -> Series:
        """The readings in time order."""
        t_us = timestamp_us_values(self.ts)
        order = np.argsort(t_us, kind="stable")
        return Series(
            t_us[order],
            float8_values(self.temp_c)[order],
            float8_values(self.rh)[order],
            float8_values(self.battery)[order],
        )


@dataclass(frozen=True, slots=True)
class CheckpointRecord:
    """``PAIR_CHECKPOINTS``: a stored checkpoint of a pair (its state as JSON text)."""

    shipment_id: int
    device_id: str
    at: datetime
    fingerprint: str
    state: str


@dataclass(frozen=True, slots=True)
class ExcursionRecord:
    """``CURRENT_EXCURSIONS``: a stored excursion that is not superseded."""

    shipment_id: int
    excursion_id: int
    device_id: str
    direction: str
    start_ts: datetime
    end_ts: datetime | None
    last_out_ts: datetime | None
    ended_by_gap: bool
    min_c: float
    max_c: float
    degree_minutes: float
    n_readings: int
    readings_over_40: int
    readings_freezing: int
    alarm: bool
    alarm_at: datetime | None
    alert_id: int | None

    def stored(self) -> policy.StoredExcursion:
        # The figures in the order and rounding of policy.figures(), to compare them.
        return policy.StoredExcursion(
            excursion_id=self.excursion_id,
            device_id=self.device_id,
            direction=self.direction,
            start=self.start_ts,
            figures=(
                self.end_ts,
                self.last_out_ts,
                self.ended_by_gap,
                round(self.min_c, 6),
                round(self.max_c, 6),
                round(self.degree_minutes, 6),
                self.n_readings,
                self.readings_over_40,
                self.readings_freezing,
                self.alarm,
                self.alarm_at,
            ),
            alert_id=self.alert_id,
        )


@dataclass(frozen=True, slots=True)
class StateRecord:
    """``PAIR_STATES``, ``SHIPMENT_STATES``: a rule's stored state for one logger."""

    shipment_id: int
    device_id: str
    rule_key: str
    holding: bool
    as_of: datetime
    since: datetime | None
    alarm_at: datetime | None
    ended_at: datetime | None
    severity: str | None
    value: float | None
    trigger_at: datetime | None
    details: dict[str, Any] | None
    alert_id: int | None
    alerted_since: datetime | None

    def stored(self) -> policy.StoredState:
        return policy.StoredState(
            device_id=self.device_id,
            state=ConditionState(
                rule_key=self.rule_key,
                holding=self.holding,
                as_of=self.as_of,
                since=self.since,
                alarm_at=self.alarm_at,
                ended_at=self.ended_at,
                severity=self.severity,
                value=self.value,
                trigger_at=self.trigger_at,
                details=self.details or {},
            ),
            alert_id=self.alert_id,
            alerted_since=self.alerted_since,
        )


@dataclass(frozen=True, slots=True)
class AlertRecord:
    """``UNRESOLVED_ALERTS``: an alert not yet resolved (locked for this transaction)."""

    alert_id: int
    shipment_id: int
    rule_key: str
    severity: str
    state: str
    cleared: bool
    title: str
    device_id: str | None
    triggered_at: datetime
    value: float | None
    thresholds: dict[str, Any]
    escalation_level: int

    def alert(self, reference: str | None) -> dict[str, Any]:
        """The alert as the reconciliation keeps it (and the notifications carry it)."""
        return {
            "alert_id": self.alert_id,
            "shipment_id": self.shipment_id,
            "reference": reference,
            "rule_key": self.rule_key,
            "severity": self.severity,
            "state": self.state,
            "cleared": self.cleared,
            "title": self.title,
            "device_id": self.device_id,
            "triggered_at": self.triggered_at,
            "value": self.value,
            "thresholds": self.thresholds,
            "escalation_level": self.escalation_level,
        }


@dataclass(frozen=True, slots=True)
class UnlinkedExcursion:
    """``ALARMED_UNLINKED``: an excursion that alarmed and belongs to no alert yet."""

    excursion_id: int
    shipment_id: int
    device_id: str
    direction: str
    alarm_at: datetime
    freeze_alarm: bool
    rule_key: str
    extreme: float
    thresholds: dict[str, Any]


@dataclass(frozen=True, slots=True)
class TempAlertStatus:
    """``TEMP_ALERT_STATUS``: a temperature alert's excursions, still open and last ended."""

    alert_id: int
    open_excursions: int
    last_end: datetime | None
    as_of: datetime | None


@dataclass(frozen=True, slots=True)
class OfflineCandidate:
    """``OFFLINE_CANDIDATES``: a logger that should be reporting now."""

    shipment_id: int
    device_id: str
    interval_s: int
    assigned_since: datetime | None  # None: an assignment open to the past
    last_ts: datetime | None  # its latest reading (None: never reported)
    received_ago_s: float | None  # on the database's clock

    @property
    def key(self) -> tuple[int, str]:
        return (self.shipment_id, self.device_id)


@dataclass(frozen=True, slots=True)
class EscalationCandidate:
    """``ESCALATION_CANDIDATES``: an unacknowledged alert below the last tier."""

    alert_id: int
    shipment_id: int
    reference: str
    rule_key: str
    severity: str
    state: str
    title: str
    device_id: str | None
    triggered_at: datetime
    value: float | None
    thresholds: dict[str, Any]
    escalation_level: int
    created_at: datetime
    cleared: bool

    def alert(self, escalation_level: int) -> dict[str, Any]:
        """The alert as the notifications carry it, at its new tier."""
        return {
            "alert_id": self.alert_id,
            "shipment_id": self.shipment_id,
            "reference": self.reference,
            "rule_key": self.rule_key,
            "severity": self.severity,
            "state": self.state,
            "cleared": self.cleared,
            "title": self.title,
            "device_id": self.device_id,
            "triggered_at": self.triggered_at,
            "value": self.value,
            "thresholds": self.thresholds,
            "escalation_level": escalation_level,
        }


@dataclass(frozen=True, slots=True)
class ReminderCandidate(EscalationCandidate):
    """``REMINDER_CANDIDATES``: an unacknowledged alert, with its last notification."""

    last_notified_at: datetime
    reminders_sent: int
    reminder_held_since: datetime | None
