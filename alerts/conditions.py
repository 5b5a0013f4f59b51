"""What each rule finds in one logger's readings: pure functions of arrays, rules and ``now``.

The rules engine loads the readings of many (shipment, device) pairs at once as arrays
(:class:`Series`) and calls :func:`evaluate_pair` for each. No I/O, no clock.

Vectorised, and identical to the reference functions
----------------------------------------------------
:func:`excursions_from_arrays` and :func:`budget_from_arrays` give exactly the results of
:func:`alerts.excursions.detect_excursions` and :func:`alerts.budget.budget_usage` (same contract,
same floating-point operations; property tests compare them on random series) without building a
:class:`~alerts.series.Point` per reading, which is what makes a 1.44 M-reading replay fast.

Episodes and condition states
-----------------------------
Every rule other than the temperature range (whose excursions are stored rows of their own)
reduces a pair's readings to **episodes**: periods in which the rule's condition held and
alarmed. Humidity episodes are humidity excursions (the excursion contract applied to %RH, with
the rule's delay); MKT episodes are runs of readings whose trailing-window MKT is above the limit;
the budget episode starts when the counted time reaches the warning share and becomes stronger
when it reaches the budget; battery episodes run from the first reading below the threshold to
the first one at or above threshold + hysteresis. These are recomputed from all readings, so late
data gives the in-order answer.

Two rules look only at the present and carry their episode over from the previous state: the
**predicted breach** (:mod:`alerts.forecast` at the latest reading) and **device offline**
(silence longer than the rule's threshold, judged against ``now``).

:class:`ConditionState` is what is stored per (shipment, device, rule): whether the condition holds
at ``as_of`` (the latest reading's time, or ``now`` for offline), the latest alarmed episode, and
``trigger_at``: the earliest alarm of the episodes that no alert has taken yet (the caller passes
``alerted_since``, the start of the episode the last alert took), which is when a new alert opens.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from alerts.budget import budget_from_arrays
from alerts.excursions import DEFAULT_FREEZING_C, OVER_40_C, Excursion, TempLimits
from alerts.forecast import forecast_breach
from alerts.mkt import Weighting, rolling_mkt
from alerts.rules import (
    BatteryRule,
    BudgetRule,
    EffectiveRules,
    ForecastRule,
    HumidityRule,
    MKTRule,
    OfflineRule,
)
from alerts.series import (
    EPOCH,
    Point,
    datetime_from_us,
    hold_us,
    to_us,
)
from coldchain.thermal.limits import Limits, is_offline, limits_from_rule, offline_threshold

__all__ = [
    "ConditionState",
    "Episode",
    "PairEvaluation",
    "Series",
    "battery_episodes",
    "budget_from_arrays",
    "budget_state",
    "evaluate_pair",
    "excursions_from_arrays",
    "forecast_state",
    "humidity_state",
    "limits_of",
    "mkt_state",
    "offline_state",
    "state_from_episodes",
    "temperature_limits",
]

_US_PER_MIN = 60_000_000
_US_PER_H = 3_600_000_000


def _us(ts: datetime) -> int:
    return to_us(ts - EPOCH)


# --------------------------------------------------------------------------------------------
# Series
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Series:
    """One logger's readings in one shipment: times (µs since the epoch, strictly increasing)
    and one array per measurement, NaN where a reading has no such value."""

    t_us: NDArray[np.int64]
    temp_c: NDArray[np.float64]
    rh: NDArray[np.float64]
    battery: NDArray[np.float64]

    @classmethod
    def from_rows(
        cls, rows: Sequence[tuple[datetime, float | None, float | None, float | None]]
    ) -> Series:
        """From ``(ts, temp_c, rh, battery)`` rows in any order (first of equal ts kept)."""
        t = np.fromiter((_us(r[0]) for r in rows), dtype=np.int64, count=len(rows))

        def column(i: int) -> NDArray[np.float64]:
            return np.array([np.nan if r[i] is None else r[i] for r in rows], dtype=np.float64)

        temp, rh, battery = column(1), column(2), column(3)
        order = np.argsort(t, kind="stable")
        t, temp, rh, battery = t[order], temp[order], rh[order], battery[order]
        keep = np.ones(len(t), dtype=bool)
        keep[1:] = np.diff(t) != 0
        return cls(t[keep], temp[keep], rh[keep], battery[keep])

    def metric(self, name: str, *, until_us: int) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
        """Times and values of one measurement, readings without it and after ``until_us`` left out."""
        values: NDArray[np.float64] = getattr(self, name)
        keep = ~np.isnan(values) & (self.t_us <= until_us)
        return self.t_us[keep], values[keep]

    def __len__(self) -> int:
        return len(self.t_us)


# --------------------------------------------------------------------------------------------
# Vectorised excursions and budget (identical to the reference functions)
# --------------------------------------------------------------------------------------------


def excursions_from_arrays(
    t_us: NDArray[np.int64], values: NDArray[np.float64], limits: TempLimits, *, now: datetime
) -> list[Excursion]:
    """:func:`alerts.excursions.detect_excursions` of a strictly increasing series, vectorised."""
    now_us = _us(now)
    keep = t_us <= now_us
    t, v = t_us[keep], values[keep]
    n = len(t)
    if n == 0:
        return []
    max_gap_us = to_us(limits.max_gap)
    high, low = limits.out_masks(v)
    direction = np.where(high, 1, np.where(low, 2, 0)).astype(np.int8)
    gap_before = np.zeros(n, dtype=bool)
    gap_before[1:] = np.diff(t) > max_gap_us
    out = direction != 0
    # A run starts where the direction changes or a gap precedes; it ends before either.
    changes = np.zeros(n, dtype=bool)
    changes[1:] = (direction[1:] != direction[:-1]) | gap_before[1:]
    starts_mask = out.copy()
    starts_mask[1:] &= changes[1:]
    starts = np.flatnonzero(starts_mask)
    ends_mask = out.copy()
    ends_mask[:-1] &= changes[1:]
    ends = np.flatnonzero(ends_mask)
    if len(starts) == 0:
        return []
    held = hold_us(t, limits.max_gap)
    silent = now_us - int(t[-1]) > max_gap_us
    freezing_c = limits.freeze_c if limits.freeze_c is not None else DEFAULT_FREEZING_C
    delay_us = to_us(limits.alarm_delay)
    found: list[Excursion] = []
    for s, e in zip(starts.tolist(), ends.tolist(), strict=True):
        is_high = direction[s] == 1
        end_us: int | None
        if e == n - 1:
            end_us, by_gap = (int(t[e]), True) if silent else (None, False)
        elif gap_before[e + 1]:
            end_us, by_gap = int(t[e]), True
        else:
            end_us, by_gap = int(t[e + 1]), False
        limit_c = limits.high_c if is_high else limits.low_bound_c
        assert limit_c is not None
        sign = 1.0 if is_high else -1.0
        vs, ts = v[s : e + 1], t[s : e + 1]
        # Same operations, term by term, as the reference: (sign·(T − limit))·(held/µs per min).
        degree_minutes = math.fsum((sign * (vs - limit_c)) * (held[s : e + 1] / _US_PER_MIN))
        start_us = int(ts[0])
        k = int(np.searchsorted(ts, start_us + delay_us, side="left"))
        delay_at: int | None = int(ts[k]) if k < len(ts) else None
        if delay_at is None and end_us is not None and not by_gap and end_us - start_us >= delay_us:
            delay_at = end_us
        freeze_at: int | None = None
        if limits.freeze_c is not None:
            frozen = np.flatnonzero(vs <= limits.freeze_c)
            freeze_at = int(ts[frozen[0]]) if len(frozen) else None
        alarm_candidates = [x for x in (delay_at, freeze_at) if x is not None]
        alarm_at = min(alarm_candidates) if alarm_candidates else None
        last_out_us = int(ts[-1])
        found.append(
            Excursion(
                direction="high" if is_high else "low",
                limit_c=limit_c,
                start=datetime_from_us(start_us),
                end=None if end_us is None else datetime_from_us(end_us),
                last_out_ts=datetime_from_us(last_out_us),
                duration=timedelta(
                    microseconds=(end_us if end_us is not None else last_out_us) - start_us
                ),
                min_c=float(vs.min()),
                max_c=float(vs.max()),
                degree_minutes=degree_minutes,
                n_readings=e - s + 1,
                readings_over_40=int((vs > OVER_40_C).sum()),
                readings_freezing=int((vs <= freezing_c).sum()),
                alarm=alarm_at is not None,
                alarm_at=None if alarm_at is None else datetime_from_us(alarm_at),
                freeze_alarm=freeze_at is not None,
                ended_by_gap=by_gap,
                starts_after_gap=bool(gap_before[s]),
            )
        )
    return found


# --------------------------------------------------------------------------------------------
# Episodes and states
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Episode:
    """A period in which a rule's condition held and alarmed (``end=None``: still holding)."""

    start: datetime
    alarm_at: datetime
    end: datetime | None
    severity: str
    value: float | None
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ConditionState:
    """One rule's state for one (shipment, device); see the module docstring."""

    rule_key: str
    holding: bool
    as_of: datetime
    since: datetime | None = None
    alarm_at: datetime | None = None
    ended_at: datetime | None = None
    severity: str | None = None
    value: float | None = None
    trigger_at: datetime | None = None
    details: Mapping[str, Any] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        """Nothing ever alarmed (there is nothing to store or to clear)."""
        return self.since is None


def stopped_holding(
    state: ConditionState,
    *,
    ended_at: datetime | None,
    as_of: datetime,
    rule_key: str | None = None,
) -> ConditionState:
    """``state``'s episode, no longer holding: ended at ``ended_at`` (its trigger forgotten)."""
    return ConditionState(
        rule_key=state.rule_key if rule_key is None else rule_key,
        holding=False,
        as_of=as_of,
        since=state.since,
        alarm_at=state.alarm_at,
        ended_at=ended_at,
        severity=state.severity,
        value=state.value,
        details=state.details,
    )


def state_from_episodes(
    rule_key: str,
    episodes: Sequence[Episode],
    *,
    as_of: datetime,
    alerted_since: datetime | None,
    details: Mapping[str, Any] | None = None,
) -> ConditionState:
    """The state given all alarmed episodes (time order) and the episode an alert took last.

    Episodes starting after ``alerted_since`` are new, and their earliest alarm is
    ``trigger_at``; the one that covers it is the one the alert took (late readings may have
    moved its start earlier), and earlier ones were judged before it.
    """
    extra = dict(details or {})
    if not episodes:
        return ConditionState(rule_key, holding=False, as_of=as_of, details=extra)
    latest = episodes[-1]
    pending = [e for e in episodes if alerted_since is None or e.start > alerted_since]
    return ConditionState(
        rule_key=rule_key,
        holding=latest.end is None,
        as_of=as_of,
        since=latest.start,
        alarm_at=latest.alarm_at,
        ended_at=latest.end,
        severity=latest.severity,
        value=latest.value,
        trigger_at=min((e.alarm_at for e in pending), default=None),
        details={**extra, **latest.details, "episodes": len(episodes)},
    )


def limits_of(rules: EffectiveRules) -> Limits | None:
    """The temperature limits of merged rules (None: no temperature rule in force).

    The one way from the rules to a range: the engine judges by it and the report, the passport
    and the shipment chart show it (:mod:`alerts.in_force`).
    """
    rule = rules.temperature
    if rule is None:
        return None
    return limits_from_rule(
        low_c=rule.low_c,
        high_c=rule.high_c,
        freeze_c=rule.freeze_c,
        alarm_delay_min=rule.alarm_delay_min,
        sources=rules.sources,
    )


def temperature_limits(limits: Limits, max_gap: timedelta) -> TempLimits:
    """A shipment's limits for one logger whose gaps exceed ``max_gap`` (excursion detection)."""
    return TempLimits(
        low_c=limits.low_c,
        high_c=limits.high_c,
        freeze_c=limits.freeze_c,
        alarm_delay=limits.alarm_delay,
        max_gap=max_gap,
    )


def humidity_state(
    series: Series,
    rule: HumidityRule,
    *,
    max_gap: timedelta,
    now: datetime,
    alerted_since: datetime | None,
) -> ConditionState | None:
    """Humidity excursions (the excursion contract on %RH) that outlasted the rule's delay."""
    t, rh = series.metric("rh", until_us=_us(now))
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
    t, temp = series.metric("temp_c", until_us=_us(now))
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
    t, temp = series.metric("temp_c", until_us=_us(now))
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


def forecast_state(
    series: Series,
    rule: ForecastRule,
    limits: TempLimits,
    *,
    now: datetime,
    previous: ConditionState | None,
    alerted_since: datetime | None,
) -> ConditionState | None:
    """A breach predicted within the horizon by the recent trend (see :mod:`alerts.forecast`).

    Three additions make it usable as an alarm. A line fitted to the same window is tried first
    and the full model only when the line heads for a limit within twice the horizon (curve
    fits cost milliseconds; most loggers are flat). The latest reading must be within the
    rule's ``margin_c`` of that limit, and the latest half of the window must itself trend
    toward it: the recovery after an excursion is a steep fall back to mid-range, which a line
    would extrapolate into a freeze.
    """
    lookback = timedelta(minutes=rule.lookback_min)
    horizon = timedelta(minutes=rule.horizon_min)
    now_us = _us(now)
    t, temp = series.metric("temp_c", until_us=now_us)
    if len(t) == 0:
        return None
    as_of = datetime_from_us(int(t[-1]))
    recent = t >= now_us - to_us(lookback)
    t, temp = t[recent], temp[recent]
    prediction = None
    if len(t):  # a logger silent for the whole lookback predicts nothing (and stops holding)
        points = [Point(datetime_from_us(int(a)), float(b)) for a, b in zip(t, temp, strict=True)]
        common: dict[str, Any] = {
            "now": now,
            "lookback": lookback,
            "min_slope_c_per_h": rule.min_slope_c_per_h,
        }
        screen = forecast_breach(points, limits, horizon=2 * horizon, model="linear", **common)
        if screen is not None and screen.predicted_breach_at is not None:
            prediction = forecast_breach(
                points, limits, horizon=horizon, model=rule.model, **common
            )
    holding = False
    if prediction is not None and prediction.predicted_breach_at is not None:
        assert prediction.direction is not None and prediction.limit_c is not None
        near = abs(prediction.limit_c - float(temp[-1])) <= rule.margin_c
        holding = near and _recent_trend_agrees(
            t, temp, prediction.direction, rule.min_slope_c_per_h
        )
    if holding:
        assert prediction is not None
        continuing = previous is not None and previous.holding and previous.since is not None
        since = previous.since if continuing and previous is not None else as_of
        assert since is not None
        details = {
            "predicted_breach_at": prediction.predicted_breach_at,
            "direction": prediction.direction,
            "limit_c": prediction.limit_c,
            "slope_c_per_h": prediction.slope_c_per_h,
            "model": prediction.model,
        }
        episode = Episode(
            start=since,
            alarm_at=since,
            end=None,
            severity=rule.severity,
            value=prediction.minutes_to_breach,
            details=details,
        )
        return state_from_episodes(
            "predicted_breach", [episode], as_of=as_of, alerted_since=alerted_since
        )
    if previous is None or previous.empty:
        return ConditionState("predicted_breach", holding=False, as_of=as_of)
    ended = as_of if previous.holding else previous.ended_at
    return stopped_holding(previous, ended_at=ended, as_of=as_of, rule_key="predicted_breach")


def _recent_trend_agrees(
    t_us: NDArray[np.int64], temp: NDArray[np.float64], direction: str, min_slope: float
) -> bool:
    half = t_us[-max(len(t_us) // 2, 3) :], temp[-max(len(t_us) // 2, 3) :]
    if len(half[0]) < 3 or half[0][-1] == half[0][0]:
        return False
    slope = float(np.polyfit((half[0] - half[0][0]) / _US_PER_H, half[1], 1)[0])
    return slope > min_slope if direction == "high" else slope < -min_slope


def offline_state(
    last_reading: datetime | None,
    assigned_since: datetime,
    interval_s: int,
    rule: OfflineRule,
    *,
    now: datetime,
    previous: ConditionState | None,
    alerted_since: datetime | None,
    arrived_ago: timedelta | None = None,
    watched_for: timedelta | None = None,
) -> ConditionState:
    """No reading for the rule's threshold: ``minutes``, else ``factor`` × the logger's interval.

    Silence is counted from the latest reading, or from the start of the assignment for a logger
    that has not reported since it was assigned; the episode is stamped on that reading time.

    Silence in reading time alone is not enough while a backlog is being delivered (the broker
    draining after a restart, a logger uploading its buffer): the readings are old but they are
    arriving. So the logger is silent only if, besides, nothing of it has *arrived* for the
    threshold either (``arrived_ago``: since its latest reading was received, None when unknown),
    and a logger that never reported raises "no data" only once the engine itself has watched
    for the threshold (``watched_for``, None: long enough), not in its first seconds, before
    the ingester has caught up.
    """
    threshold = offline_threshold(interval_s, factor=rule.factor, minutes=rule.minutes)
    silent_from = max(last_reading, assigned_since) if last_reading is not None else assigned_since
    silence = now - silent_from
    # The one definition of offline, which the fleet view and the shipment page use too.
    offline = is_offline(
        last_reading,
        since=assigned_since,
        interval_s=interval_s,
        factor=rule.factor,
        minutes=rule.minutes,
        now=now,
    )
    arriving = arrived_ago is not None and arrived_ago <= threshold
    just_started = (
        last_reading is None
        and watched_for is not None
        and watched_for <= threshold
        and not (previous is not None and previous.holding)
    )
    if offline and not arriving and not just_started:
        episode = Episode(
            start=silent_from,
            alarm_at=silent_from + threshold,
            end=None,
            severity=rule.severity,
            value=silence.total_seconds() / 60,
            details={
                "last_reading": last_reading,
                "threshold_min": threshold.total_seconds() / 60,
                "interval_s": interval_s,
            },
        )
        return state_from_episodes(
            "device_offline", [episode], as_of=now, alerted_since=alerted_since
        )
    if previous is None or previous.empty:
        return ConditionState("device_offline", holding=False, as_of=now)
    # Readings resumed with the latest one (the silence ended there, as far as we know).
    ended = last_reading if previous.holding else previous.ended_at
    return stopped_holding(previous, ended_at=ended, as_of=now, rule_key="device_offline")


# --------------------------------------------------------------------------------------------
# One pair
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PairEvaluation:
    """What the rules found for one (shipment, device): excursions and the other rules' states."""

    excursions: list[Excursion] | None  # None: no temperature rule
    states: dict[str, ConditionState]
    limits: TempLimits | None


def evaluate_pair(
    series: Series,
    rules: EffectiveRules,
    *,
    max_gap: timedelta,
    now: datetime,
    assigned_until: datetime | None = None,
    previous: Mapping[str, ConditionState] | None = None,
    alerted_since: Mapping[str, datetime | None] | None = None,
) -> PairEvaluation:
    """Every data-driven rule on one logger's readings as of ``now`` (offline is judged apart).

    ``assigned_until`` is when the logger's assignment to the shipment ends (None: open): the
    budget counts a trailing silence only up to it, since after it the logger's time is not the
    shipment's. Excursions and forecasts are judged at ``now`` itself: an excursion still out
    when the logger left the shipment is ended by that gap, not left open for ever.
    ``previous`` and ``alerted_since`` are the stored states by rule key.
    """
    budget_now = min(now, assigned_until) if assigned_until is not None else now
    previous = previous or {}
    alerted = alerted_since or {}
    states: dict[str, ConditionState | None] = {}
    excursions: list[Excursion] | None = None
    limits: TempLimits | None = None
    shipment_limits = limits_of(rules)
    if shipment_limits is not None:
        limits = temperature_limits(shipment_limits, max_gap)
        t, temp = series.metric("temp_c", until_us=_us(now))
        excursions = excursions_from_arrays(t, temp, limits, now=now)
        if rules.budget is not None:
            states["budget"] = budget_state(
                series, rules.budget, limits, now=budget_now, alerted_since=alerted.get("budget")
            )
        if rules.forecast is not None:
            states["predicted_breach"] = forecast_state(
                series,
                rules.forecast,
                limits,
                now=now,
                previous=previous.get("predicted_breach"),
                alerted_since=alerted.get("predicted_breach"),
            )
    if rules.mkt is not None:
        states["mkt"] = mkt_state(
            series, rules.mkt, max_gap=max_gap, now=now, alerted_since=alerted.get("mkt")
        )
    if rules.humidity is not None:
        states["humidity"] = humidity_state(
            series, rules.humidity, max_gap=max_gap, now=now, alerted_since=alerted.get("humidity")
        )
    if rules.battery is not None:
        tb, battery = series.metric("battery", until_us=_us(now))
        if len(tb):
            states["battery_low"] = state_from_episodes(
                "battery_low",
                battery_episodes(tb, battery, rules.battery),
                as_of=datetime_from_us(int(tb[-1])),
                alerted_since=alerted.get("battery_low"),
            )
    return PairEvaluation(
        excursions=excursions,
        states={k: v for k, v in states.items() if v is not None},
        limits=limits,
    )
