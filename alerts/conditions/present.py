"""The rules that look only at the present: predicted breach and device offline.

Each judges the latest readings (or the silence) at ``now`` and carries its episode over from the
previous state, which the caller passes in (:mod:`alerts.conditions`).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import numpy as np
from numpy.typing import NDArray

from alerts.conditions.arrays import Series, epoch_us
from alerts.conditions.states import (
    ConditionState,
    Episode,
    state_from_episodes,
    stopped_holding,
)
from alerts.rules import ForecastRule, OfflineRule
from coldchain.thermal.excursions import TempLimits
from coldchain.thermal.forecast import forecast_breach
from coldchain.thermal.limits import is_offline, offline_threshold
from coldchain.thermal.series import Point, datetime_from_us, to_us

__all__ = ["forecast_state", "offline_state"]

_US_PER_H = 3_600_000_000


def forecast_state(
    series: Series,
    rule: ForecastRule,
    limits: TempLimits,
    *,
    now: datetime,
    previous: ConditionState | None,
    alerted_since: datetime | None,
) -> ConditionState | None:
    """A breach the recent trend predicts within the horizon (:mod:`coldchain.thermal.forecast`).

    Three additions make it usable as an alarm. A line fitted to the same window is tried first
    and the full model only when the line heads for a limit within twice the horizon (curve
    fits cost milliseconds; most loggers are flat). The latest reading must be within the
    rule's ``margin_c`` of that limit, and the latest half of the window must itself trend
    toward it: the recovery after an excursion is a steep fall back to mid-range, which a line
    would extrapolate into a freeze.
    """
    lookback = timedelta(minutes=rule.lookback_min)
    horizon = timedelta(minutes=rule.horizon_min)
    now_us = epoch_us(now)
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
