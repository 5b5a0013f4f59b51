"""What a checkpoint keeps of a pair's readings before its time, and where one may be taken.

A round re-judges a (shipment, device) pair from a checkpoint rather than from its first reading
(:mod:`alerts.checkpoints` stores them). That gives the one-pass answer exactly because a
checkpoint is only ever taken at a temperature reading that **no run straddles** (no excursion,
humidity run, MKT run or low-battery run holds there; :func:`checkpoint_time`). Every rule then
splits cleanly there:

- excursions and episodes before the checkpoint ended at or before it, with figures computed from
  readings before it, and none after it starts before it: they are kept as they are
  (:class:`Prefix`), and the readings from the checkpoint on give the rest;
- the stability budget is a sum of integer microseconds: the count before the checkpoint is
  carried over and the thresholds crossed before it keep their times;
- the MKT's windows reach back before the checkpoint: those readings are loaded too
  (:func:`load_from_us`), and :mod:`alerts.conditions.windows` makes each window's value
  independent of where the series starts;
- the predicted breach looks only at the lookback before ``now``, which is loaded too;
- what is counted (temperature readings) and the latest humidity and battery readings before it
  (their states' ``as_of`` when none came after) are kept.

Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
from numpy.typing import NDArray

from alerts.conditions.arrays import Series, epoch_us
from alerts.conditions.history import BudgetPrefix, Span, budget_usage_from
from alerts.conditions.states import Episode
from alerts.conditions.windows import context_start_us
from alerts.layers import EffectiveRules
from coldchain.thermal.excursions import Excursion, TempLimits
from coldchain.thermal.series import datetime_from_us, to_us

__all__ = ["EPISODE_RULES", "Prefix", "checkpoint_time", "load_from_us", "prefix_at"]

EPISODE_RULES = ("humidity", "mkt", "battery_low")
"""The rules whose episodes before a checkpoint are kept in it."""


@dataclass(frozen=True, slots=True)
class Prefix:
    """A pair's readings before ``at_us`` (µs since the epoch), as far as the rules need them."""

    at_us: int
    n_temp: int  # temperature readings before at_us
    last_rh_us: int | None  # the latest humidity reading before at_us
    last_battery_us: int | None
    excursions: tuple[Excursion, ...] = ()
    episodes: Mapping[str, tuple[Episode, ...]] = field(default_factory=dict)
    budget: BudgetPrefix | None = None


def load_from_us(prefix: Prefix, rules: EffectiveRules, *, now: datetime) -> int:
    """The earliest reading time a round judging from ``prefix`` needs."""
    start = prefix.at_us
    if rules.mkt is not None:
        start = min(
            start, context_start_us(prefix.at_us, to_us(timedelta(hours=rules.mkt.window_h)))
        )
    if rules.forecast is not None:
        start = min(start, epoch_us(now) - to_us(timedelta(minutes=rules.forecast.lookback_min)))
    return start


def checkpoint_time(
    series: Series, spans: Iterable[Span], *, after_us: int | None, until_us: int
) -> int | None:
    """The latest temperature reading in (``after_us``, ``until_us``] that no run straddles."""
    t = series.t_us[~np.isnan(series.temp_c)]
    lo = 0 if after_us is None else int(np.searchsorted(t, after_us, side="right"))
    hi = int(np.searchsorted(t, until_us, side="right"))
    candidates = t[lo:hi]
    if len(candidates) == 0:
        return None
    busy = np.zeros(len(candidates), dtype=bool)
    for first, last, end in spans:
        inside = candidates <= last
        if end is None:
            inside |= True
        else:
            inside |= candidates < end
        busy |= (candidates >= first) & inside
    free = np.flatnonzero(~busy)
    return int(candidates[free[-1]]) if len(free) else None


def prefix_at(
    series: Series,
    at_us: int,
    *,
    base: Prefix | None,
    excursions: Iterable[Excursion],
    episodes: Mapping[str, Iterable[Episode]],
    rules: EffectiveRules,
    limits: TempLimits | None,
) -> Prefix:
    """The prefix before ``at_us`` (from :func:`checkpoint_time`) of an evaluation of ``series``
    (itself judged from ``base``, or from its first reading): its excursions and episodes."""
    from_us = None if base is None else base.at_us

    def before(name: str) -> NDArray[np.int64]:
        t, _ = series.metric(name, until_us=at_us - 1)
        return t if from_us is None else t[int(np.searchsorted(t, from_us, side="left")) :]

    temp_t, rh_t, battery_t = before("temp_c"), before("rh"), before("battery")
    budget = None
    if limits is not None and rules.budget is not None and rules.budget.hours is not None:
        t_all, temp_all = series.metric("temp_c", until_us=at_us)
        lo = 0 if from_us is None else int(np.searchsorted(t_all, from_us, side="left"))
        _, budget = budget_usage_from(
            t_all[lo:],
            temp_all[lo:],
            rules.budget,
            limits,
            now=None,
            base=None if base is None else base.budget,
        )
    at = datetime_from_us(at_us)
    return Prefix(
        at_us=at_us,
        n_temp=(0 if base is None else base.n_temp) + len(temp_t),
        last_rh_us=int(rh_t[-1]) if len(rh_t) else (None if base is None else base.last_rh_us),
        last_battery_us=int(battery_t[-1])
        if len(battery_t)
        else (None if base is None else base.last_battery_us),
        excursions=tuple(e for e in excursions if e.start < at),
        episodes={k: tuple(e for e in v if e.start < at) for k, v in episodes.items()},
        budget=budget,
    )
