"""Pure decisions of the rules engine: what changes in the stored excursions and alerts.

Given what is stored and what a fresh evaluation found, these functions say what to write.
No I/O and no clock: ``now`` is a parameter. :mod:`alerts.service` does the reading and writing.

Excursion history: an excursion is identified by ``(device, direction, start)``. A re-evaluation
(for example after late readings arrive) that finds the same excursion with different figures
*supersedes* the stored row and inserts the new one; a stored excursion that no longer exists
(two excursions merged by a filled gap, say) is superseded with no successor. Nothing is edited
in place, so the history of what was reported stays visible.

Alert policy for temperature excursions (rule keys ``temp_high`` and ``temp_low``):

* an excursion that reached its alarm (alarm delay exceeded, or freezing) belongs to an alert;
  if the (shipment, rule) has an unresolved alert it joins it, else a new alert opens at the
  excursion's ``alarm_at`` (the reading's time, not the server's);
* a freezing excursion is ``critical``, others ``major``; a stronger one upgrades the alert;
* when no excursion of the alert is still open, the condition has *cleared*: an acknowledged
  alert then resolves by itself, an unacknowledged one stays open (cleared) so that somebody
  still looks at an excursion that happened, and resolves when acknowledged.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from alerts.excursions import Excursion, TempLimits

SEVERITY_RANK = {"info": 0, "warning": 1, "major": 2, "critical": 3}


@dataclass(frozen=True, slots=True)
class Profile:
    """The product profile a shipment is judged against, as stored."""

    gtin: str | None
    low_c: float | None
    high_c: float | None
    freeze_c: float | None
    alarm_delay_s: int

    def limits(self, interval_s: int, gap_factor: float) -> TempLimits:
        """Temperature limits for one device, whose gaps are judged against its own interval."""
        freeze = self.freeze_c
        if freeze is not None and self.low_c is not None and freeze >= self.low_c:
            freeze = None  # a freeze limit inside the range cannot be told apart from "low"
        return TempLimits(
            low_c=self.low_c,
            high_c=self.high_c,
            freeze_c=freeze,
            alarm_delay=timedelta(seconds=self.alarm_delay_s),
            max_gap=timedelta(seconds=interval_s * gap_factor),
        )

    def thresholds(self, interval_s: int, gap_factor: float) -> dict[str, Any]:
        """The thresholds as they were at evaluation time, stored with every result."""
        return {
            "product_gtin": self.gtin,
            "low_c": self.low_c,
            "high_c": self.high_c,
            "freeze_c": self.freeze_c,
            "alarm_delay_s": self.alarm_delay_s,
            "interval_s": interval_s,
            "gap_factor": gap_factor,
            "max_gap_s": interval_s * gap_factor,
        }


@dataclass(frozen=True, slots=True)
class StoredExcursion:
    """A current (not superseded) excursion row."""

    excursion_id: int
    device_id: str
    direction: str
    start: datetime
    figures: tuple[Any, ...]
    alert_id: int | None


def figures(e: Excursion) -> tuple[Any, ...]:
    """The values that, when changed by a re-evaluation, make a new version of an excursion."""
    return (
        e.end,
        e.last_out_ts,
        e.ended_by_gap,
        round(e.min_c, 6),
        round(e.max_c, 6),
        round(e.degree_minutes, 6),
        e.n_readings,
        e.readings_over_40,
        e.readings_freezing,
        e.alarm,
        e.alarm_at,
    )


@dataclass(slots=True)
class ExcursionPlan:
    """What to write for one (shipment, device) after a re-evaluation."""

    insert: list[Excursion] = field(default_factory=list)
    supersede: list[tuple[StoredExcursion, str]] = field(default_factory=list)  # (row, reason)
    carried_alert: dict[tuple[str, datetime], int] = field(default_factory=dict)
    unchanged: int = 0


def plan_excursions(stored: Iterable[StoredExcursion], found: Sequence[Excursion]) -> ExcursionPlan:
    """Diff stored excursions of one device with a fresh evaluation."""
    plan = ExcursionPlan()
    by_key = {(s.direction, s.start): s for s in stored}
    seen: set[tuple[str, datetime]] = set()
    for e in found:
        key = (e.direction, e.start)
        seen.add(key)
        old = by_key.get(key)
        if old is not None and old.figures == figures(e):
            plan.unchanged += 1
            continue
        if old is not None:
            plan.supersede.append((old, "re-evaluated: figures changed"))
            if old.alert_id is not None:
                plan.carried_alert[key] = old.alert_id
        plan.insert.append(e)
    for stored_key, old in by_key.items():
        if stored_key not in seen:
            plan.supersede.append((old, "re-evaluated: no longer an excursion (merged or split)"))
    return plan


def rule_key(e: Excursion) -> str:
    """The alert rule an excursion belongs to."""
    return "temp_high" if e.direction == "high" else "temp_low"


def severity(e: Excursion) -> str:
    """Freezing is critical (often worse than warming for biologics); other excursions are major."""
    return "critical" if e.freeze_alarm else "major"


def stronger(a: str, b: str) -> str:
    """The stronger of two severities."""
    return a if SEVERITY_RANK[a] >= SEVERITY_RANK[b] else b


def title(e: Excursion, product_name: str | None) -> str:
    """A one-line alert title for people."""
    what = (
        "Freezing"
        if e.freeze_alarm
        else ("Temperature above range" if e.direction == "high" else "Temperature below range")
    )
    extreme = e.max_c if e.direction == "high" else e.min_c
    name = f" ({product_name})" if product_name else ""
    return f"{what}: {extreme:.1f} °C beyond {e.limit_c:g} °C{name}"


@dataclass(frozen=True, slots=True)
class AlertState:
    """An unresolved alert as stored."""

    alert_id: int
    rule_key: str
    severity: str
    state: str
    cleared: bool


def clear_decision(alert: AlertState, open_excursions: int) -> str | None:
    """What happens to an unresolved alert given how many of its excursions are still open.

    Returns ``"resolve"`` (acknowledged and cleared), ``"clear"`` (cleared, waits for a person),
    ``"reopen"`` (was cleared, a late reading shows it is open again) or None.
    """
    if open_excursions == 0:
        if alert.state == "acknowledged":
            return "resolve"
        return None if alert.cleared else "clear"
    return "reopen" if alert.cleared else None


def worst(excursions: Iterable[Excursion], *, key: str) -> Excursion | None:
    """The most extreme excursion of a set: highest max for high, lowest min for low."""
    items = list(excursions)
    if not items:
        return None
    if key == "temp_high":
        return max(items, key=lambda e: e.max_c)
    return min(items, key=lambda e: e.min_c)


def json_safe(value: Any) -> Any:
    """Make a value storable as JSON (datetimes as ISO 8601, non-finite floats as None)."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value
