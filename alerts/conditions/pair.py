"""Every data-driven rule on one (shipment, device) at once: what the rules engine calls."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from alerts.conditions.arrays import Series, epoch_us, excursions_from_arrays
from alerts.conditions.history import (
    Span,
    battery_episodes,
    budget_state,
    humidity_runs,
    mkt_runs,
    span_of,
)
from alerts.conditions.prefix import Prefix
from alerts.conditions.present import forecast_state
from alerts.conditions.states import ConditionState, Episode, state_from_episodes
from alerts.layers import EffectiveRules, limits_of
from coldchain.thermal.excursions import Excursion, TempLimits
from coldchain.thermal.limits import temperature_limits
from coldchain.thermal.series import datetime_from_us

__all__ = ["PairEvaluation", "evaluate_pair"]


@dataclass(frozen=True, slots=True)
class PairEvaluation:
    """What the rules found for one (shipment, device): excursions and the other rules' states.

    ``episodes`` (humidity, MKT, battery) and ``spans`` (the runs of the excursions, humidity
    and MKT, in which no checkpoint may be taken) are what a checkpoint is made of (:mod:`alerts.conditions.prefix`).
    """

    excursions: list[Excursion] | None  # None: no temperature rule
    states: dict[str, ConditionState]
    limits: TempLimits | None
    episodes: dict[str, list[Episode]] = field(default_factory=dict)
    spans: list[Span] = field(default_factory=list)


def evaluate_pair(
    series: Series,
    rules: EffectiveRules,
    *,
    max_gap: timedelta,
    now: datetime,
    assigned_until: datetime | None = None,
    previous: Mapping[str, ConditionState] | None = None,
    alerted_since: Mapping[str, datetime | None] | None = None,
    base: Prefix | None = None,
) -> PairEvaluation:
    """Every data-driven rule on one logger's readings as of ``now`` (offline is judged apart).

    ``assigned_until`` is when the logger's assignment to the shipment ends (None: open): the
    budget counts a trailing silence only up to it, since after it the logger's time is not the
    shipment's. Excursions and forecasts are judged at ``now`` itself: an excursion still out
    when the logger left the shipment is ended by that gap, not left open for ever.
    ``previous`` and ``alerted_since`` are the stored states by rule key.

    ``base`` is a checkpoint's prefix: ``series`` then holds the readings from
    :func:`~alerts.conditions.prefix.load_from_us` on, and the result is what all the readings
    give (the caller checks the checkpoint still holds: same rules, no reading changed before
    it, ``now`` and the assignment's end not before it).
    """
    budget_now = min(now, assigned_until) if assigned_until is not None else now
    previous = previous or {}
    alerted = alerted_since or {}
    tail = series.since(None if base is None else base.at_us)
    kept = {} if base is None else base.episodes
    states: dict[str, ConditionState | None] = {}
    episodes: dict[str, list[Episode]] = {}
    spans: list[Span] = []
    excursions: list[Excursion] | None = None
    limits: TempLimits | None = None
    now_us = epoch_us(now)
    t, temp = tail.metric("temp_c", until_us=now_us)
    n_temp = len(t) + (0 if base is None else base.n_temp)
    shipment_limits = limits_of(rules)
    if shipment_limits is not None:
        limits = temperature_limits(shipment_limits, max_gap)
        found = excursions_from_arrays(t, temp, limits, now=now)
        spans.extend(span_of(x) for x in found)
        excursions = found if base is None else [*base.excursions, *found]
        if rules.budget is not None:
            states["budget"] = budget_state(
                tail,
                rules.budget,
                limits,
                now=budget_now,
                alerted_since=alerted.get("budget"),
                base=None if base is None else base.budget,
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
        found_eps, found_spans = mkt_runs(
            series,
            rules.mkt,
            max_gap=max_gap,
            now=now,
            from_us=None if base is None else base.at_us,
            context_max=None if base is None else base.mkt_context_max(rules.mkt),
        )
        spans.extend(found_spans)
        episodes["mkt"] = [*kept.get("mkt", ()), *found_eps]
        if n_temp >= 2:
            states["mkt"] = state_from_episodes(
                "mkt",
                episodes["mkt"],
                as_of=datetime_from_us(int(t[-1])),
                alerted_since=alerted.get("mkt"),
            )
    if rules.humidity is not None:
        found_eps, found_spans = humidity_runs(tail, rules.humidity, max_gap=max_gap, now=now)
        spans.extend(found_spans)
        episodes["humidity"] = [*kept.get("humidity", ()), *found_eps]
        th, _ = tail.metric("rh", until_us=now_us)
        last = int(th[-1]) if len(th) else (None if base is None else base.last_rh_us)
        if last is not None:
            states["humidity"] = state_from_episodes(
                "humidity",
                episodes["humidity"],
                as_of=datetime_from_us(last),
                alerted_since=alerted.get("humidity"),
            )
    if rules.battery is not None:
        tb, battery = tail.metric("battery", until_us=now_us)
        # A low episode open at the checkpoint is carried on (so it does not stop checkpoints).
        found_eps = battery_episodes(
            tb, battery, rules.battery, low_from=None if base is None else base.battery_low
        )
        episodes["battery_low"] = [*kept.get("battery_low", ()), *found_eps]
        last = int(tb[-1]) if len(tb) else (None if base is None else base.last_battery_us)
        if last is not None:
            states["battery_low"] = state_from_episodes(
                "battery_low",
                episodes["battery_low"],
                as_of=datetime_from_us(last),
                alerted_since=alerted.get("battery_low"),
            )
    return PairEvaluation(
        excursions=excursions,
        states={k: v for k, v in states.items() if v is not None},
        limits=limits,
        episodes=episodes,
        spans=spans,
    )
