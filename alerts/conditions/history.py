"""The rules recomputed from all of a logger's readings: humidity, MKT, budget, battery.

Each reduces the readings to the episodes in which its condition held and alarmed
(:mod:`alerts.conditions`), so late data gives the in-order answer.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from alerts.conditions.arrays import Series, epoch_us, excursions_from_arrays
from alerts.conditions.states import ConditionState, Episode, state_from_episodes
from alerts.rules import BatteryRule, BudgetRule, HumidityRule, MKTRule
from coldchain.thermal.budget import budget_from_arrays
from coldchain.thermal.excursions import TempLimits
from coldchain.thermal.mkt import Weighting, rolling_mkt
from coldchain.thermal.series import datetime_from_us, to_us

__all__ = ["battery_episodes", "budget_state", "humidity_state", "mkt_state"]


def humidity_state(
    series: Series,
    rule: HumidityRule,
    *,
    max_gap: timedelta,
    now: datetime,
    alerted_since: datetime | None,
) -> ConditionState | None:
    """Humidity excursions (the excursion contract on %RH) that outlasted the rule's delay."""
    t, rh = series.metric("rh", until_us=epoch_us(now))
    if len(t) == 0:
        return None
    limits = TempLimits(
        low_c=rule.min_rh,
        high_c=rule.max_rh,
        freeze_c=None,
        alarm_delay=timedelta(minutes=rule.delay_min),
        max_gap=max_gap,
    )
    episodes = [
        Episode(
            start=x.start,
            alarm_at=x.alarm_at,
            end=x.end,
            severity=rule.severity,
            value=x.max_c if x.direction == "high" else x.min_c,
            details={"direction": x.direction, "limit_rh": x.limit_c},
        )
        for x in excursions_from_arrays(t, rh, limits, now=now)
        if x.alarm_at is not None
    ]
    return state_from_episodes(
        "humidity", episodes, as_of=datetime_from_us(int(t[-1])), alerted_since=alerted_since
    )


def mkt_state(
    series: Series,
    rule: MKTRule,
    *,
    max_gap: timedelta,
    now: datetime,
    alerted_since: datetime | None,
) -> ConditionState | None:
    """Runs of readings whose trailing-window MKT (judged windows only) is above the limit."""
    assert rule.limit_c is not None
    t, temp = series.metric("temp_c", until_us=epoch_us(now))
    if len(t) < 2:
        return None
    if float(temp.max()) < rule.limit_c - 1e-6:
        # An MKT never exceeds the warmest reading it averages, so no window can be above the
        # limit: the (exact) shortcut that spares most loggers the rolling computation.
        return state_from_episodes(
            "mkt", [], as_of=datetime_from_us(int(t[-1])), alerted_since=alerted_since
        )
    index = pd.DatetimeIndex(t.astype("datetime64[us]")).tz_localize("UTC")
    window = timedelta(hours=rule.window_h)
    frame = rolling_mkt(
        pd.Series(temp, index=index),
        window,
        weighting=Weighting(rule.weighting),
        max_gap=max_gap,
        delta_h_j_mol=rule.delta_h_j_mol,
    )
    mkt_c = frame["mkt_c"].to_numpy()
    covered_us = frame["duration_covered"].to_numpy().astype("timedelta64[us]").astype(np.int64)
    judged = covered_us >= rule.min_coverage * to_us(window)
    over = judged & (mkt_c > rule.limit_c)
    episodes: list[Episode] = []
    n = len(t)
    for s, e in _runs(over):
        # The run ends at the first judged reading back at or below the limit; a reading whose
        # window is not judged (too little data, a long gap) ends it where it was last seen.
        end: datetime | None = None
        if e < n - 1:
            end = datetime_from_us(int(t[e + 1] if judged[e + 1] else t[e]))
        episodes.append(
            Episode(
                start=datetime_from_us(int(t[s])),
                alarm_at=datetime_from_us(int(t[s])),
                end=end,
                severity=rule.severity,
                value=float(np.nanmax(mkt_c[s : e + 1])),
                details={"limit_c": rule.limit_c, "window_h": rule.window_h},
            )
        )
    latest_mkt = float(mkt_c[-1]) if judged[-1] else None
    return state_from_episodes(
        "mkt",
        episodes,
        as_of=datetime_from_us(int(t[-1])),
        alerted_since=alerted_since,
        details={"mkt_c": latest_mkt},
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


def budget_state(
    series: Series,
    rule: BudgetRule,
    limits: TempLimits,
    *,
    now: datetime,
    alerted_since: datetime | None,
) -> ConditionState | None:
    """The stability budget: warning at the warning share, stronger when exhausted."""
    assert rule.hours is not None
    t, temp = series.metric("temp_c", until_us=epoch_us(now))
    if len(t) == 0:
        return None
    usage = budget_from_arrays(
        t,
        temp,
        limits,
        timedelta(hours=rule.hours),
        count_gaps_as_out=rule.count_gaps_as_out,
        warning_share=rule.warning_share,
        now=now,
    )
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
    t_us: NDArray[np.int64], battery: NDArray[np.float64], rule: BatteryRule
) -> list[Episode]:
    """Low-battery episodes with hysteresis (a Schmitt trigger, vectorised)."""
    assert rule.below is not None
    if len(t_us) == 0:
        return []
    enter = battery < rule.below
    leave = battery >= rule.below + rule.hysteresis
    # The state after each reading is that of the last enter/leave event at or before it.
    event = np.where(enter, 1, np.where(leave, 0, -1))
    last_event = np.maximum.accumulate(np.where(event >= 0, np.arange(len(event)), -1))
    low = np.where(last_event >= 0, event[np.maximum(last_event, 0)] == 1, False)
    episodes = []
    n = len(t_us)
    for s, e in _runs(low):
        episodes.append(
            Episode(
                start=datetime_from_us(int(t_us[s])),
                alarm_at=datetime_from_us(int(t_us[s])),
                end=None if e == n - 1 else datetime_from_us(int(t_us[e + 1])),
                severity=rule.severity,
                value=float(battery[s : e + 1].min()),
                details={"below": rule.below},
            )
        )
    return episodes
