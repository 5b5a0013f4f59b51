"""What a checkpoint keeps of a pair's readings before its time, and where one may be taken.

A round re-judges a (shipment, device) pair from a checkpoint rather than from its first reading
(:mod:`alerts.checkpoints` stores them). That gives the one-pass answer exactly because a
checkpoint is only ever taken at a temperature reading that **no run straddles** (no excursion,
humidity run or MKT run holds there; :func:`checkpoint_time`). Every rule then
splits cleanly there:

- excursions and episodes before the checkpoint ended at or before it, with figures computed from
  readings before it, and none after it starts before it: they are kept as they are
  (:class:`Prefix`), and the readings from the checkpoint on give the rest;
- the stability budget is a sum of integer microseconds: the count before the checkpoint is
  carried over and the thresholds crossed before it keep their times;
- the MKT's windows reach back before the checkpoint: the warmest reading of each window-long
  block they may reach is kept, and only when a window could be above the limit are those
  readings loaded too (:func:`load_from_us`); :mod:`alerts.conditions.windows` makes each
  window's value independent of where the series starts;
- the predicted breach looks only at the lookback before ``now``, which is loaded too;
- a low-battery episode open at the checkpoint is kept as its start and lowest value so far, and
  the readings from the checkpoint on continue it (the minimum is exact);
- what is counted (temperature readings) and the latest humidity and battery readings before it
  (their states' ``as_of`` when none came after) are kept.

Pure: no I/O, no clock.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
from numpy.typing import NDArray

from alerts.conditions.arrays import Series, epoch_us
from alerts.conditions.history import BudgetPrefix, Span, budget_usage_from, mkt_needs_context
from alerts.conditions.states import Episode
from alerts.conditions.windows import context_start_us
from alerts.layers import EffectiveRules
from alerts.rules import MKTRule
from coldchain.thermal.excursions import Excursion, TempLimits
from coldchain.thermal.series import datetime_from_us, to_us

__all__ = [
    "EPISODE_RULES",
    "Prefix",
    "checkpoint_time",
    "load_from_us",
    "needs_mkt_context",
    "prefix_at",
]

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
    # The warmest temperature before at_us in each MKT window-long block (epoch-aligned) from
    # context_start_us(at_us) on: (block start µs, °C).
    block_max: tuple[tuple[int, float], ...] = ()
    battery_low: tuple[int, float] | None = None  # open low episode: (start µs, lowest so far)

    def mkt_context_max(self, rule: MKTRule) -> float:
        """The warmest reading before ``at_us`` that the MKT windows from it on reach."""
        start = context_start_us(self.at_us, to_us(timedelta(hours=rule.window_h)))
        return max((v for b, v in self.block_max if b >= start), default=-math.inf)


def load_from_us(
    prefix: Prefix, rules: EffectiveRules, *, now: datetime, mkt_context: bool = False
) -> int:
    """The earliest reading time a round judging from ``prefix`` needs (``mkt_context``: with
    the readings the MKT windows reach, see :func:`needs_mkt_context`)."""
    start = prefix.at_us
    if rules.mkt is not None and mkt_context:
        window_us = to_us(timedelta(hours=rules.mkt.window_h))
        start = min(start, context_start_us(prefix.at_us, window_us))
    if rules.forecast is not None:
        start = min(start, epoch_us(now) - to_us(timedelta(minutes=rules.forecast.lookback_min)))
    return start


def needs_mkt_context(
    series: Series, prefix: Prefix, rules: EffectiveRules, *, now: datetime
) -> bool:
    """Given the readings from :func:`load_from_us` without the MKT context, does judging from
    ``prefix`` need that context too (could a window from the checkpoint on be above the limit)?"""
    if rules.mkt is None:
        return False
    return mkt_needs_context(
        series,
        rules.mkt,
        now=now,
        from_us=prefix.at_us,
        context_max=prefix.mkt_context_max(rules.mkt),
    )


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
    block_max: tuple[tuple[int, float], ...] = ()
    if rules.mkt is not None:
        window_us = to_us(timedelta(hours=rules.mkt.window_h))
        t_all, temp_all = series.metric("temp_c", until_us=at_us - 1)
        if from_us is not None:  # what the base kept, then the readings since
            t_all, temp_all = t_all[t_all >= from_us], temp_all[t_all >= from_us]
        blocks = dict(() if base is None else base.block_max)
        start = context_start_us(at_us, window_us)
        for b in range(start, at_us, window_us):
            inside = (t_all >= b) & (t_all < b + window_us)
            values = [blocks[b]] if b in blocks else []
            if inside.any():
                values.append(float(temp_all[inside].max()))
            if values:
                blocks[b] = max(values)
        block_max = tuple(sorted((b, v) for b, v in blocks.items() if b >= start))
    at = datetime_from_us(at_us)
    battery_low = None
    kept = {k: tuple(e for e in v if e.start < at) for k, v in episodes.items()}
    if "battery_low" in kept:
        # The episode open just before at_us is carried on; the others ended before it.
        open_eps = [e for e in kept["battery_low"] if e.end is None or e.end >= at]
        kept["battery_low"] = tuple(e for e in kept["battery_low"] if e not in open_eps)
        if open_eps:
            start = epoch_us(open_eps[-1].start)
            t_b, v_b = series.metric("battery", until_us=at_us - 1)
            since = t_b >= max(start, from_us or start)
            lows = [float(v_b[since].min())] if since.any() else []
            if base is not None and base.battery_low is not None and base.battery_low[0] == start:
                lows.append(base.battery_low[1])
            if not lows:
                raise ValueError("a low-battery episode open at the checkpoint without readings")
            battery_low = (start, min(lows))
    return Prefix(
        at_us=at_us,
        n_temp=(0 if base is None else base.n_temp) + len(temp_t),
        last_rh_us=int(rh_t[-1]) if len(rh_t) else (None if base is None else base.last_rh_us),
        last_battery_us=int(battery_t[-1])
        if len(battery_t)
        else (None if base is None else base.last_battery_us),
        excursions=tuple(e for e in excursions if e.start < at),
        episodes=kept,
        budget=budget,
        block_max=block_max,
        battery_low=battery_low,
    )
