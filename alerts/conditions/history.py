"""The rules recomputed from a logger's readings: humidity, MKT, budget, battery.

Each reduces the readings to the episodes in which its condition held and alarmed
(:mod:`alerts.conditions`), so late data gives the in-order answer. Each also takes what a
checkpoint kept of the readings before its time (:class:`~alerts.conditions.prefix.Prefix`):
given the readings from that time on (and, for the MKT, its windows' context), it gives what the
whole series gives, bit for bit. The runs each rule found (:data:`Span`) say where a checkpoint
may be taken: at a reading no run straddles.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import numpy as np
from numpy.typing import NDArray

from alerts.conditions.arrays import Series, epoch_us, excursions_from_arrays
from alerts.conditions.states import ConditionState, Episode, state_from_episodes
from alerts.conditions.windows import context_start_us, window_mkt
from alerts.rules import BatteryRule, BudgetRule, HumidityRule, MKTRule
from coldchain.thermal.budget import BudgetUsage, budget_from_arrays
from coldchain.thermal.excursions import Excursion, TempLimits
from coldchain.thermal.mkt import Weighting
from coldchain.thermal.series import datetime_from_us, to_us

__all__ = [
    "BudgetPrefix",
    "Span",
    "battery_episodes",
    "budget_state",
    "budget_usage_from",
    "humidity_runs",
    "humidity_state",
    "mkt_needs_context",
    "mkt_runs",
    "mkt_state",
    "span_of",
]

Span = tuple[int, int, int | None]
"""A run of readings in which a rule's condition held: (first, last reading, end) in µs since the
epoch, end None while it holds. A reading at ``t`` is inside it if first ≤ t and (t ≤ last or
t < end or end is None)."""


def span_of(x: Excursion) -> Span:
    """The run of an excursion (temperature or humidity)."""
    return (
        epoch_us(x.start),
        epoch_us(x.last_out_ts),
        None if x.end is None else epoch_us(x.end),
    )


@dataclass(frozen=True, slots=True)
class BudgetPrefix:
    """The stability budget's count over the intervals before a checkpoint (exact integers)."""

    counted_us: int
    gap_us: int
    warning_at: datetime | None
    exhausted_at: datetime | None


def humidity_runs(
    series: Series, rule: HumidityRule, *, max_gap: timedelta, now: datetime
) -> tuple[list[Episode], list[Span]]:
    """Humidity excursions (the excursion contract on %RH): those that outlasted the rule's delay
    as episodes, and every run."""
    t, rh = series.metric("rh", until_us=epoch_us(now))
    limits = TempLimits(
        low_c=rule.min_rh,
        high_c=rule.max_rh,
        freeze_c=None,
        alarm_delay=timedelta(minutes=rule.delay_min),
        max_gap=max_gap,
    )
    found = excursions_from_arrays(t, rh, limits, now=now)
    episodes = [
        Episode(
            start=x.start,
            alarm_at=x.alarm_at,
            end=x.end,
            severity=rule.severity,
            value=x.max_c if x.direction == "high" else x.min_c,
            details={"direction": x.direction, "limit_rh": x.limit_c},
        )
        for x in found
        if x.alarm_at is not None
    ]
    return episodes, [span_of(x) for x in found]


def humidity_state(
    series: Series,
    rule: HumidityRule,
    *,
    max_gap: timedelta,
    now: datetime,
    alerted_since: datetime | None,
) -> ConditionState | None:
    """The humidity rule's state from all of a logger's readings."""
    t, _ = series.metric("rh", until_us=epoch_us(now))
    if len(t) == 0:
        return None
    episodes, _ = humidity_runs(series, rule, max_gap=max_gap, now=now)
    return state_from_episodes(
        "humidity", episodes, as_of=datetime_from_us(int(t[-1])), alerted_since=alerted_since
    )


def mkt_runs(
    series: Series,
    rule: MKTRule,
    *,
    max_gap: timedelta,
    now: datetime,
    from_us: int | None = None,
    context_max: float | None = None,
) -> tuple[list[Episode], list[Span]]:
    """Runs of readings (from ``from_us`` on) whose trailing-window MKT (judged windows only) is
    above the limit, as episodes and spans.

    An MKT never exceeds the warmest reading it averages, so when no reading its windows reach
    (from :func:`~alerts.conditions.windows.context_start_us` of ``from_us`` on) comes within
    1e-6 of the limit, no window can be above it: the exact shortcut that spares most loggers
    the windows. ``context_max`` is the warmest of those readings before ``from_us`` (a
    checkpoint keeps it): ``series`` then needs to hold them (:func:`mkt_needs_context`) only
    when the shortcut does not apply.
    """
    assert rule.limit_c is not None
    t, temp = series.metric("temp_c", until_us=epoch_us(now))
    first = 0 if from_us is None else int(np.searchsorted(t, from_us, side="left"))
    if len(t) - first == 0:
        return [], []
    warmest = float(temp[first:].max())
    if context_max is not None:
        warmest = max(warmest, context_max)
    else:
        window_us = to_us(timedelta(hours=rule.window_h))
        lo = int(np.searchsorted(t, context_start_us(int(t[first]), window_us)))
        warmest = max(warmest, float(temp[lo:first].max(initial=-np.inf)))
    if warmest < rule.limit_c - 1e-6:
        return [], []
    window_us = to_us(timedelta(hours=rule.window_h))
    lo = int(np.searchsorted(t, context_start_us(int(t[first]), window_us)))
    mkt_c, covered_us = window_mkt(
        t[lo:],
        temp[lo:],
        window_us,
        weighting=Weighting(rule.weighting),
        max_gap_us=to_us(max_gap),
        delta_h_j_mol=rule.delta_h_j_mol,
    )
    judged = covered_us >= rule.min_coverage * window_us
    over = judged & (mkt_c > rule.limit_c)
    over[: first - lo] = False
    episodes: list[Episode] = []
    spans: list[Span] = []
    n = len(mkt_c)
    tt = t[lo:]
    for s, e in _runs(over):
        # The run ends at the first judged reading back at or below the limit; a reading whose
        # window is not judged (too little data, a long gap) ends it where it was last seen.
        end: int | None = None
        if e < n - 1:
            end = int(tt[e + 1] if judged[e + 1] else tt[e])
        spans.append((int(tt[s]), int(tt[e]), end))
        episodes.append(
            Episode(
                start=datetime_from_us(int(tt[s])),
                alarm_at=datetime_from_us(int(tt[s])),
                end=None if end is None else datetime_from_us(end),
                severity=rule.severity,
                value=float(np.nanmax(mkt_c[s : e + 1])),
                details={"limit_c": rule.limit_c, "window_h": rule.window_h},
            )
        )
    return episodes, spans


def mkt_needs_context(
    series: Series, rule: MKTRule, *, now: datetime, from_us: int, context_max: float
) -> bool:
    """Does judging the MKT from ``from_us`` need the readings its windows reach back to?"""
    assert rule.limit_c is not None
    t, temp = series.metric("temp_c", until_us=epoch_us(now))
    first = int(np.searchsorted(t, from_us, side="left"))
    warmest = max(context_max, float(temp[first:].max(initial=-np.inf)))
    return warmest >= rule.limit_c - 1e-6


def mkt_state(
    series: Series,
    rule: MKTRule,
    *,
    max_gap: timedelta,
    now: datetime,
    alerted_since: datetime | None,
) -> ConditionState | None:
    """The MKT rule's state from all of a logger's readings."""
    t, _ = series.metric("temp_c", until_us=epoch_us(now))
    if len(t) < 2:
        return None
    episodes, _ = mkt_runs(series, rule, max_gap=max_gap, now=now)
    return state_from_episodes(
        "mkt", episodes, as_of=datetime_from_us(int(t[-1])), alerted_since=alerted_since
    )


def _runs(mask: NDArray[np.bool_]) -> list[tuple[int, int]]:
    """(first, last) index of each run of True."""
    if not mask.any():
        return []
    padded = np.concatenate(([False], mask, [False])).astype(np.int8)
    edges = np.diff(padded)
    starts = np.flatnonzero(edges == 1)
    ends = np.flatnonzero(edges == -1) - 1
    return list(zip(starts.tolist(), ends.tolist(), strict=True))


def budget_usage_from(
    t_us: NDArray[np.int64],
    temp_c: NDArray[np.float64],
    rule: BudgetRule,
    limits: TempLimits,
    *,
    now: datetime | None,
    base: BudgetPrefix | None,
) -> tuple[BudgetUsage, BudgetPrefix]:
    """The budget's usage of readings from a checkpoint on (``base``: what it counted before),
    and the same figures as a :class:`BudgetPrefix` (for the next checkpoint)."""
    assert rule.hours is not None
    usage = budget_from_arrays(
        t_us,
        temp_c,
        limits,
        timedelta(hours=rule.hours),
        count_gaps_as_out=rule.count_gaps_as_out,
        carried_over=timedelta(microseconds=0 if base is None else base.counted_us),
        warning_share=rule.warning_share,
        now=now,
    )
    if base is not None:
        # The integer counts continue exactly; a threshold crossed before the checkpoint keeps
        # the time it was crossed at (the carried count would place it at the first reading).
        gap = timedelta(microseconds=base.gap_us) + usage.time_gap
        warning_at = base.warning_at or usage.warning_at
        exhausted_at = base.exhausted_at or usage.exhausted_at
        usage = replace(usage, time_gap=gap, warning_at=warning_at, exhausted_at=exhausted_at)
    prefix = BudgetPrefix(
        counted_us=to_us(usage.counted),
        gap_us=to_us(usage.time_gap),
        warning_at=usage.warning_at,
        exhausted_at=usage.exhausted_at,
    )
    return usage, prefix


def budget_state(
    series: Series,
    rule: BudgetRule,
    limits: TempLimits,
    *,
    now: datetime,
    alerted_since: datetime | None,
    base: BudgetPrefix | None = None,
) -> ConditionState | None:
    """The stability budget: warning at the warning share, stronger when exhausted."""
    t, temp = series.metric("temp_c", until_us=epoch_us(now))
    if len(t) == 0:
        return None
    usage, _ = budget_usage_from(t, temp, rule, limits, now=now, base=base)
    details = {
        "share_used": usage.share_used,
        "counted_h": usage.counted.total_seconds() / 3600,
        "time_gap_h": usage.time_gap.total_seconds() / 3600,
        "status": usage.status,
    }
    episodes = []
    if usage.warning_at is not None and usage.status != "ok":
        exhausted = usage.exhausted_at is not None
        episodes.append(
            Episode(
                start=usage.warning_at,
                alarm_at=usage.warning_at,
                end=None,
                severity=rule.exhausted_severity if exhausted else rule.warning_severity,
                value=usage.share_used,
                details={"exhausted_at": usage.exhausted_at},
            )
        )
    return state_from_episodes(
        "budget",
        episodes,
        as_of=datetime_from_us(int(t[-1])),
        alerted_since=alerted_since,
        details=details,
    )


def battery_episodes(
    t_us: NDArray[np.int64],
    battery: NDArray[np.float64],
    rule: BatteryRule,
    *,
    low_from: tuple[int, float] | None = None,
) -> list[Episode]:
    """Low-battery episodes with hysteresis (a Schmitt trigger, vectorised).

    ``low_from`` is a low episode still open before the first reading (a checkpoint's: its start
    in µs and its lowest value so far), which these readings continue.
    """
    assert rule.below is not None
    n = len(t_us)
    if n == 0:
        if low_from is None:
            return []
        return [_battery_episode(low_from[0], None, low_from[1], rule)]
    enter = battery < rule.below
    leave = battery >= rule.below + rule.hysteresis
    # The state after each reading is that of the last enter/leave event at or before it.
    event = np.where(enter, 1, np.where(leave, 0, -1))
    last_event = np.maximum.accumulate(np.where(event >= 0, np.arange(len(event)), -1))
    low = np.where(last_event >= 0, event[np.maximum(last_event, 0)] == 1, low_from is not None)
    episodes = []
    if low_from is not None and not low[0]:
        # The first reading ends the episode carried over.
        episodes.append(_battery_episode(low_from[0], int(t_us[0]), low_from[1], rule))
    for s, e in _runs(low):
        start, lowest = int(t_us[s]), float(battery[s : e + 1].min())
        if s == 0 and low_from is not None:
            start, lowest = low_from[0], min(low_from[1], lowest)
        end = None if e == n - 1 else int(t_us[e + 1])
        episodes.append(_battery_episode(start, end, lowest, rule))
    return episodes


def _battery_episode(start: int, end: int | None, lowest: float, rule: BatteryRule) -> Episode:
    return Episode(
        start=datetime_from_us(start),
        alarm_at=datetime_from_us(start),
        end=None if end is None else datetime_from_us(end),
        severity=rule.severity,
        value=lowest,
        details={"below": rule.below},
    )
