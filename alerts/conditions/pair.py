"""Every data-driven rule on one (shipment, device) at once: what the rules engine calls."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from alerts.conditions.arrays import Series, epoch_us, excursions_from_arrays
from alerts.conditions.history import battery_episodes, budget_state, humidity_state, mkt_state
from alerts.conditions.present import forecast_state
from alerts.conditions.states import ConditionState, state_from_episodes
from alerts.layers import EffectiveRules, limits_of
from coldchain.thermal.excursions import Excursion, TempLimits
from coldchain.thermal.limits import temperature_limits
from coldchain.thermal.series import datetime_from_us

__all__ = ["PairEvaluation", "evaluate_pair"]


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
        t, temp = series.metric("temp_c", until_us=epoch_us(now))
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
        tb, battery = series.metric("battery", until_us=epoch_us(now))
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
