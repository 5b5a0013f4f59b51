"""A shipment's effective temperature limits, and when a logger is offline: one definition each.

Limits
------
The limits a shipment's readings are judged by are *not* the product row alone: the rules are
layered (the engine's settings, the rules file's defaults, the product row, the rules file's and
the stored rules of the product, then of the shipment; :func:`alerts.layers.rule_layers`) and
the merged ``temperature`` section is what the rules engine judges excursions by. :class:`Limits`
is that section's thresholds as plain values; :func:`limits_from_rule` builds it from the merged
section's fields, and every consumer (the rules engine, the excursion report, the unit passport,
the shipment chart's band) takes its limits from it, so none of them can show another range than
the one the engine judged by. The I/O that reads the layers is :mod:`db.queries.limits`, the
stacking :mod:`alerts.in_force`. :func:`temperature_limits` adds one logger's gap length to them:
the :class:`~coldchain.thermal.excursions.TempLimits` that excursion detection, the budget and the
forecast take.

A unit travels in several shipments, and each may have rules of its own: :func:`strictest`
combines several shipments' limits into the narrowest (highest low, lowest high, highest freeze
limit, shortest delay), the conservative reading a passport uses when they differ.

Offline
-------
A logger is **offline** when it has sent nothing for longer than its threshold:
``COLDCHAIN_ALERTS__OFFLINE_FACTOR`` × its logging interval (or a rule's own ``minutes`` or
``factor``): :func:`offline_threshold` and :func:`is_offline`. The fleet view, the shipment page
and the rules engine's "no data" alert all use this definition. A shorter silence
(``COLDCHAIN_ALERTS__GAP_FACTOR`` × the interval, 2× by default) is a **gap** in the data
(unknown time, counted against the budget), which is another notion with another name.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from coldchain.thermal.excursions import TempLimits

__all__ = [
    "Limits",
    "is_offline",
    "limits_from_json",
    "limits_from_rule",
    "offline_threshold",
    "strictest",
    "temperature_limits",
]


@dataclass(frozen=True, slots=True)
class Limits:
    """The effective temperature thresholds of a shipment (or of a product outside one).

    ``low_c``/``high_c`` bound the range, ``freeze_c`` (below ``low_c``) alarms at once,
    ``alarm_delay`` is how long a reading must stay out before an excursion alarms; ``sources``
    names the rule layers that made them (as each alert's ``sources`` lists them).
    """

    low_c: float | None
    high_c: float | None
    freeze_c: float | None
    alarm_delay: timedelta
    sources: tuple[str, ...] = ()

    def as_json(self) -> dict[str, Any]:
        """JSON values: the thresholds, the delay in seconds and the sources."""
        return {
            "low_c": self.low_c,
            "high_c": self.high_c,
            "freeze_c": self.freeze_c,
            "alarm_delay_s": self.alarm_delay.total_seconds(),
            "sources": list(self.sources),
        }


def limits_from_rule(
    *,
    low_c: float | None,
    high_c: float | None,
    freeze_c: float | None,
    alarm_delay_min: float,
    sources: Iterable[str] = (),
) -> Limits | None:
    """The limits of a merged temperature rule, or None when it sets no threshold at all.

    A freeze limit not below the range's low end is left out (the range judges those readings);
    the rules' validation refuses such a layer, so this only guards values from elsewhere.
    """
    if freeze_c is not None and low_c is not None and freeze_c >= low_c:
        freeze_c = None
    if low_c is None and high_c is None and freeze_c is None:
        return None
    return Limits(
        low_c=low_c,
        high_c=high_c,
        freeze_c=freeze_c,
        alarm_delay=timedelta(minutes=alarm_delay_min),
        sources=tuple(sources),
    )


def limits_from_json(rule: Mapping[str, Any] | None, sources: Iterable[str] = ()) -> Limits | None:
    """:func:`limits_from_rule` of a merged temperature section given as JSON (None: no rule)."""
    if not rule:
        return None
    return limits_from_rule(
        low_c=rule.get("low_c"),
        high_c=rule.get("high_c"),
        freeze_c=rule.get("freeze_c"),
        alarm_delay_min=float(rule.get("alarm_delay_min") or 0.0),
        sources=sources,
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


def _max(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return max(present) if present else None


def _min(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return min(present) if present else None


def strictest(limits: Iterable[Limits | None]) -> Limits | None:
    """The narrowest combination of several limits (None ones ignored; None if all are).

    Every reading out of any of the given ranges is out of the result, and its alarm comes no
    later than under any of them. A combination whose low end reaches its high end is kept as it
    is: every reading is then out of range, which is the honest answer to contradictory rules.
    """
    given = [x for x in limits if x is not None]
    if not given:
        return None
    if len(set(given)) == 1:
        return given[0]
    low = _max(x.low_c for x in given)
    freeze = _max(x.freeze_c for x in given)
    if freeze is not None and low is not None and freeze >= low:
        freeze = None
    return Limits(
        low_c=low,
        high_c=_min(x.high_c for x in given),
        freeze_c=freeze,
        alarm_delay=min(x.alarm_delay for x in given),
        sources=tuple(dict.fromkeys(s for x in given for s in x.sources)),
    )


def offline_threshold(
    interval_s: float, *, factor: float | None, minutes: float | None = None
) -> timedelta:
    """How long a logger may be silent before it is offline: ``minutes`` when given, else
    ``factor`` × its logging interval (a factor of None counts as 1)."""
    if minutes is not None:
        return timedelta(minutes=minutes)
    return timedelta(seconds=interval_s * (factor if factor is not None else 1.0))


def is_offline(
    last_seen: datetime | None,
    *,
    since: datetime | None = None,
    interval_s: float,
    factor: float | None,
    minutes: float | None = None,
    now: datetime,
) -> bool:
    """Silent for longer than :func:`offline_threshold` at ``now``.

    Silence is counted from ``last_seen`` (the latest reading), or from ``since`` (the start of
    the logger's assignment) when that is later or nothing was seen; with neither, the logger
    has never been heard of and is offline.
    """
    starts = [t for t in (last_seen, since) if t is not None]
    if not starts:
        return True
    threshold = offline_threshold(interval_s, factor=factor, minutes=minutes)
    return now - max(starts) > threshold
