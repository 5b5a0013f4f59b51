"""The ``excursion_risk`` rule: the forecast's chance of an excursion before arrival at or above
the rule's threshold (an early warning, issue 17). Pure: the forecast, the rule, the previous
state and ``now`` in; the state out.

The chance is :func:`coldchain.forecast.model.forecast_shipment`'s, the same figure the fleet and
shipment pages show (one definition); this module only says when it alarms. Like the predicted
breach it looks at the present, so it carries its episode over from the previous state: the
episode starts at the first pass that found the chance at or above the threshold and ends at the
first that did not (the rule's clear delay then runs from there, in :mod:`alerts.policy`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from alerts.conditions.states import (
    ConditionState,
    Episode,
    state_from_episodes,
    stopped_holding,
)
from alerts.rules import RiskRule
from coldchain.forecast.model import ShipmentForecast

__all__ = ["RULE_KEY", "risk_holds", "risk_state"]

RULE_KEY = "excursion_risk"


def risk_holds(
    forecast: ShipmentForecast | None, rule: RiskRule, *, excursion_open: bool = False
) -> bool:
    """Whether the rule's condition holds for this forecast (None: not in transit).

    Only a chance learnt from history counts: the lane has at least ``min_history`` finished
    shipments. An excursion under way does not count (its own alert speaks; the warning has
    nothing left to warn of), nor does a shipment that is no longer in transit.
    """
    if forecast is None or forecast.basis != "history" or forecast.excursion_chance is None:
        return False
    if forecast.history_n < rule.min_history or excursion_open:
        return False
    return forecast.excursion_chance >= rule.threshold


def risk_state(
    forecast: ShipmentForecast | None,
    rule: RiskRule | None,
    *,
    excursion_open: bool,
    now: datetime,
    previous: ConditionState | None,
    alerted_since: datetime | None,
) -> ConditionState | None:
    """The rule's state for one shipment at ``now`` (``rule`` None: switched off, so a holding
    state stops; ``excursion_open``: one of its excursions is under way); None when there is
    nothing to store (it never alarmed)."""
    if rule is not None and risk_holds(forecast, rule, excursion_open=excursion_open):
        assert forecast is not None and forecast.excursion_chance is not None
        continuing = previous is not None and previous.holding and previous.since is not None
        since = previous.since if continuing and previous is not None else now
        assert since is not None
        details: dict[str, Any] = {
            "chance": forecast.excursion_chance,
            "history_chance": forecast.excursion_history,
            "trend_counts": forecast.trend_counts,
            "threshold": rule.threshold,
            "lane": forecast.lane,
            "history_n": forecast.history_n,
            "eta": forecast.eta,
        }
        episode = Episode(
            start=since,
            alarm_at=since,
            end=None,
            severity=rule.severity,
            value=forecast.excursion_chance,
            details=details,
        )
        return state_from_episodes(RULE_KEY, [episode], as_of=now, alerted_since=alerted_since)
    if previous is None or previous.empty:
        return None
    ended = now if previous.holding else previous.ended_at
    return stopped_holding(previous, ended_at=ended, as_of=now, rule_key=RULE_KEY)
