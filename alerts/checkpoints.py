"""Checkpoints of a pair's evaluation: which one a round starts from, when to take the next, and
their stored form. Pure: no I/O, no clock.

A round re-judges a (shipment, device) pair from the latest checkpoint that still holds rather
than from its first reading, so its cost follows the readings since then, not the length of the
trip (:mod:`alerts.conditions.prefix` says why the result is the one-pass answer). A checkpoint
holds when:

- it was computed under the same **fingerprint**: the rules that judge readings (every section
  but "offline" and "risk", which judge the present, not a pair's readings), the data-gap limit and the pair's assignments; any change of rules, limits,
  product, interval or assignment changes it, and the pair is judged in full;
- it is **before the earliest changed reading** (``reading_changes.ts_min``): the round that takes
  a late reading drops the checkpoints at or after it, in its transaction, and starts from an
  earlier one, or from the first reading when none is left (a reading older than every kept
  checkpoint);
- it is not after ``now`` nor after the end of the assignment.

A new checkpoint is taken when the newest is older than ``interval`` behind the latest reading
(minus ``lag``: readings a few minutes late are common and would invalidate a checkpoint taken
at the very end), at the latest reading no run straddles; the newest ``kept`` are kept, so a
backlog up to about ``kept × interval`` old rewinds instead of re-judging the whole trip.

Two rules stand outside checkpoints, and outside the property they keep ("the stored results
are what an in-order evaluation of every reading gives"): **device offline** and **excursion
risk** (:mod:`alerts.risk`). Neither is a function of a pair's readings: offline judges the
silence at ``now``, excursion risk the shipment's forecast at ``now`` from its lane's finished
shipments, its plan and its position. Their state is what the latest periodic pass judged, a
statement about the present, like a person looking at the fleet board; late readings change
them at the next pass, through the figures they feed (excursions, position), not by replay.
Replaying the past for them would need the lane's history *as it was* at each reading, which
no one can recompute honestly (QA decisions, later shipments), so it is not attempted.

The stored form is JSON text (the ``json`` type keeps it verbatim): floats as Python writes them
(shortest round-trip form), times as integer microseconds since the epoch, so a checkpoint read
back is bit for bit the one written.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol, TypeVar

from alerts.conditions.arrays import epoch_us
from alerts.conditions.history import BudgetPrefix
from alerts.conditions.prefix import Prefix
from alerts.conditions.states import Episode
from alerts.layers import EffectiveRules
from coldchain.thermal.excursions import Excursion
from coldchain.thermal.series import datetime_from_us, to_us

__all__ = [
    "FORMAT",
    "CheckpointPolicy",
    "StoredCheckpoint",
    "choose_base",
    "decode",
    "encode",
    "fingerprint",
    "next_checkpoint_until",
]

FORMAT = 1
"""The stored form's version: part of the fingerprint, so a new form never reads an old one."""

_JUDGING_SECTIONS = ("temperature", "budget", "mkt", "humidity", "battery", "forecast")


@dataclass(frozen=True, slots=True)
class CheckpointPolicy:
    """How often checkpoints are taken, how far behind the latest reading, how many are kept
    (the ``alerts.checkpoint_*`` settings; ``kept`` 0: none, every round judges in full)."""

    interval: timedelta = timedelta(hours=1)
    lag: timedelta = timedelta(minutes=10)
    kept: int = 12


class _Kept(Protocol):
    @property
    def at(self) -> datetime: ...
    @property
    def fingerprint(self) -> str: ...


K = TypeVar("K", bound=_Kept)


@dataclass(frozen=True, slots=True)
class StoredCheckpoint:
    """A checkpoint as stored: its time, what it was computed under, and the prefix."""

    at: datetime
    fingerprint: str
    prefix: Prefix


def fingerprint(rules: EffectiveRules, *, max_gap: timedelta, assignments: str) -> str:
    """What a checkpoint was computed under (``assignments``: the pair's assignment ranges)."""
    sections = {
        name: None if (s := rules.section(name)) is None else s.model_dump(mode="json")
        for name in _JUDGING_SECTIONS
    }
    text = json.dumps([FORMAT, sections, to_us(max_gap), assignments], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def choose_base(
    stored: Sequence[K],
    *,
    fingerprint: str,
    changed_from: datetime | None,
    now: datetime,
    assigned_until: datetime | None,
) -> K | None:
    """The latest checkpoint that holds (see the module docstring); None: judge in full.

    ``changed_from`` is the earliest reading changed since the pair was last judged (None:
    no reading changed, as in the periodic re-judging).
    """
    limit = now if assigned_until is None else min(now, assigned_until)
    holding = [
        c
        for c in stored
        if c.fingerprint == fingerprint
        and c.at <= limit
        and (changed_from is None or c.at < changed_from)
    ]
    return max(holding, key=lambda c: c.at, default=None)


def next_checkpoint_until(
    newest: datetime | None,
    last_reading: datetime | None,
    *,
    now: datetime,
    assigned_until: datetime | None,
    interval: timedelta,
    lag: timedelta,
) -> datetime | None:
    """The latest time a new checkpoint may be taken at, or None when none is due."""
    if last_reading is None:
        return None
    until = min(last_reading, now) - lag
    if assigned_until is not None:
        until = min(until, assigned_until)
    if newest is not None and until - newest < interval:
        return None
    return until


# ----------------------------------------------------------------------------------------------
# The stored form
# ----------------------------------------------------------------------------------------------


def _us(ts: datetime | None) -> int | None:
    return None if ts is None else epoch_us(ts)


def _ts(us: int | None) -> datetime | None:
    return None if us is None else datetime_from_us(us)


def _excursion(e: Excursion) -> list[Any]:
    return [
        e.direction,
        e.limit_c,
        _us(e.start),
        _us(e.end),
        _us(e.last_out_ts),
        to_us(e.duration),
        e.min_c,
        e.max_c,
        e.degree_minutes,
        e.n_readings,
        e.readings_over_40,
        e.readings_freezing,
        e.alarm,
        _us(e.alarm_at),
        e.freeze_alarm,
        e.ended_by_gap,
        e.starts_after_gap,
    ]


def _excursion_from(v: list[Any]) -> Excursion:
    start, end, last_out, alarm_at = _ts(v[2]), _ts(v[3]), _ts(v[4]), _ts(v[13])
    assert start is not None and last_out is not None
    return Excursion(
        direction=v[0],
        limit_c=v[1],
        start=start,
        end=end,
        last_out_ts=last_out,
        duration=timedelta(microseconds=v[5]),
        min_c=v[6],
        max_c=v[7],
        degree_minutes=v[8],
        n_readings=v[9],
        readings_over_40=v[10],
        readings_freezing=v[11],
        alarm=v[12],
        alarm_at=alarm_at,
        freeze_alarm=v[14],
        ended_by_gap=v[15],
        starts_after_gap=v[16],
    )


def _episode(e: Episode) -> list[Any]:
    return [_us(e.start), _us(e.alarm_at), _us(e.end), e.severity, e.value, dict(e.details)]


def _episode_from(v: list[Any]) -> Episode:
    start, alarm_at = _ts(v[0]), _ts(v[1])
    assert start is not None and alarm_at is not None
    return Episode(start, alarm_at, _ts(v[2]), v[3], v[4], v[5])


def encode(prefix: Prefix) -> str:
    """The stored form of a prefix; ValueError for what JSON cannot hold exactly (NaN)."""
    b = prefix.budget
    body = {
        "at": prefix.at_us,
        "n_temp": prefix.n_temp,
        "last_rh": prefix.last_rh_us,
        "last_battery": prefix.last_battery_us,
        "excursions": [_excursion(e) for e in prefix.excursions],
        "episodes": {k: [_episode(e) for e in v] for k, v in prefix.episodes.items()},
        "budget": None
        if b is None
        else [b.counted_us, b.gap_us, _us(b.warning_at), _us(b.exhausted_at)],
        "block_max": [list(x) for x in prefix.block_max],
        "battery_low": None if prefix.battery_low is None else list(prefix.battery_low),
    }
    return json.dumps(body, allow_nan=False, separators=(",", ":"))


def decode(body: str | dict[str, Any]) -> Prefix:
    """A prefix from its stored form (text, or as psycopg loads a ``json`` column)."""
    v = json.loads(body) if isinstance(body, str) else body
    b = v["budget"]
    return Prefix(
        at_us=v["at"],
        n_temp=v["n_temp"],
        last_rh_us=v["last_rh"],
        last_battery_us=v["last_battery"],
        excursions=tuple(_excursion_from(e) for e in v["excursions"]),
        episodes={k: tuple(_episode_from(e) for e in eps) for k, eps in v["episodes"].items()},
        budget=None if b is None else BudgetPrefix(b[0], b[1], _ts(b[2]), _ts(b[3])),
        block_max=tuple((int(k), float(m)) for k, m in v["block_max"]),
        battery_low=None
        if v["battery_low"] is None
        else (int(v["battery_low"][0]), float(v["battery_low"][1])),
    )
