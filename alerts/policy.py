"""Pure decisions of the rules engine: what changes in the stored excursions and alerts.

Given what is stored and what a fresh evaluation found, these functions say what to write.
No I/O and no clock: ``now`` is a parameter. :mod:`alerts.evaluate` and :mod:`alerts.reconcile`
do the reading and writing.

Excursion history: an excursion is identified by ``(device, direction, start)``. A re-evaluation
(for example after late readings arrive) that finds the same excursion with different figures
*supersedes* the stored row and inserts the new one; a stored excursion that no longer exists
(two excursions merged by a filled gap, say) is superseded with no successor. Nothing is edited
in place, so the history of what was reported stays visible.

Alert policy (one unresolved alert per (shipment, rule); rule keys in :data:`alerts.rules.RULE_KEYS`):

* **Open or join.** A temperature excursion that reached its alarm (alarm delay exceeded, or
  freezing), or a rule episode that alarmed (:mod:`alerts.conditions`), belongs to an alert: if
  the (shipment, rule) has an unresolved alert it joins it, else a new alert opens at the alarm's
  time (the reading's time, not the server's).
* **Upgrade, never duplicate.** The alert takes the strongest severity of what it holds: a
  freezing excursion (``critical`` by default) upgrades a ``major`` low-temperature alert, an
  exhausted budget upgrades the budget warning. Severities never go down.
* **Clear without flapping.** The condition has cleared when nothing the alert holds still holds
  *and* it has stayed so for the rule's clear delay, measured on the data's own time (for
  "offline", on the clock). A value hovering at a limit therefore does not clear and re-open an
  alert at every reading: while the delay runs nothing changes, and a new breach inside it joins.
  "Cleared" is always what the data says: a cleared alert whose condition is no longer quiet
  (a new breach, or late readings) is re-opened.
* **Resolve.** A cleared alert that somebody acknowledged resolves by itself. An unacknowledged
  one stays open, marked cleared, until somebody acknowledges it: an excursion of a medicine that
  happened must be looked at by a person even when it is over (EU GDP), and acknowledging it
  then resolves it. Rules with ``auto_resolve`` (device offline, low battery, predicted breach by
  default: operational conditions with no product impact of their own) resolve when cleared.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from alerts.conditions.states import ConditionState
from coldchain.severity import RANK, stronger, strongest
from coldchain.thermal.excursions import Excursion

Transition = Literal["clear", "reopen", "resolve"]


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


def excursion_severity(freeze_alarm: bool, thresholds: Mapping[str, Any]) -> str:
    """An alarmed excursion's severity under the rule it was judged by (freezing: stronger)."""
    if freeze_alarm:
        return str(thresholds.get("freeze_severity") or "critical")
    return str(thresholds.get("severity") or "major")


def excursion_title(
    direction: str,
    freeze_alarm: bool,
    extreme_c: float,
    limit_c: float | None,
    product_name: str | None,
) -> str:
    """A one-line alert title for a temperature excursion."""
    what = (
        "Freezing"
        if freeze_alarm
        else ("Temperature above range" if direction == "high" else "Temperature below range")
    )
    limit = f", limit {limit_c:g} °C" if limit_c is not None else ""
    name = f" ({product_name})" if product_name else ""
    return f"{what}: {extreme_c:.1f} °C{limit}{name}"


def rule_title(key: str, state: ConditionState, device_id: str, product_name: str | None) -> str:
    """A one-line alert title for a rule other than the temperature range."""
    d = state.details
    v = state.value
    name = f" ({product_name})" if product_name else ""
    if key == "budget":
        share = f"{100 * v:.0f} %" if v is not None else "?"
        exhausted = d.get("exhausted_at") is not None
        what = "Stability budget exhausted" if exhausted else "Stability budget running out"
        return f"{what}: {share} used{name}"
    if key == "mkt":
        limit = d.get("limit_c")
        return f"MKT above limit: {v:.2f} °C over {d.get('window_h'):g} h, limit {limit:g} °C{name}"
    if key == "humidity":
        return f"Humidity out of range: {v:.0f} %RH, limit {d.get('limit_rh'):g} %RH{name}"
    if key == "device_offline":
        return f"No data from {device_id} for {v:.0f} min{name}"
    if key == "battery_low":
        return f"Battery low on {device_id}: {100 * (v or 0):.0f} %{name}"
    if key == "predicted_breach":
        limit = d.get("limit_c")
        when = f" in {v:.0f} min" if v is not None else ""
        return f"Breach of {limit:g} °C predicted{when} ({device_id}){name}"
    if key == "excursion_risk":
        chance = f"{100 * v:.0f} %" if v is not None else "?"
        past = d.get("history_n")
        lane = d.get("lane")
        return f"Excursion risk before arrival: {chance} (lane {lane}, {past} past shipments){name}"
    return f"{key}{name}"


@dataclass(frozen=True, slots=True)
class AlertState:
    """An unresolved alert as stored."""

    alert_id: int
    rule_key: str
    severity: str
    state: str
    cleared: bool


def quiet_enough(
    *,
    holding: bool,
    last_end: datetime | None,
    as_of: datetime | None,
    clear_delay: timedelta,
) -> bool:
    """Has the condition been clear for the clear delay (measured from its end to ``as_of``)?

    Nothing holding and nothing ended (the episode vanished on re-evaluation) is clear at once.
    """
    if holding:
        return False
    if last_end is None:
        return True
    if as_of is None:
        return False
    return as_of - last_end >= clear_delay


def clear_decision(
    alert: AlertState, *, holding: bool, quiet: bool, auto_resolve: bool = False
) -> Transition | None:
    """What happens to an unresolved alert given whether its condition holds (module policy).

    ``quiet``: the condition has been clear for the clear delay. Returns ``"resolve"``,
    ``"clear"`` (cleared, waits for a person), ``"reopen"`` (it was cleared and is not any
    more) or None.
    """
    if holding or not quiet:
        # Inside the clear delay nothing is cleared (no flapping); an alert marked cleared whose
        # data no longer is (late readings, a new breach) is re-opened, so that "cleared" is
        # always what the data says, whatever order it came in.
        return "reopen" if alert.cleared else None
    if alert.state == "acknowledged" or auto_resolve:
        return "resolve"
    return None if alert.cleared else "clear"


@dataclass(frozen=True, slots=True)
class StoredState:
    """A rule's stored state for one device of a shipment, with the alert that took it."""

    device_id: str
    state: ConditionState
    alert_id: int | None
    alerted_since: datetime | None


@dataclass(frozen=True, slots=True)
class NewAlert:
    """An alert to open."""

    triggered_at: datetime
    severity: str
    device_id: str
    state: ConditionState


@dataclass(slots=True)
class RuleAlertPlan:
    """What to do with the alert of one (shipment, rule)."""

    open: NewAlert | None = None
    take: list[StoredState] = field(default_factory=list)  # episodes the alert takes now
    upgrade_to: str | None = None
    strongest: StoredState | None = None  # what the alert holds with the strongest severity
    transition: Transition | None = None
    holding: bool = False


def plan_rule_alert(
    alert: AlertState | None,
    states: Sequence[StoredState],
    *,
    clear_delay: timedelta,
    auto_resolve: bool,
) -> RuleAlertPlan:
    """Open/join, upgrade and clear the alert of one (shipment, rule) from its devices' states."""
    plan = RuleAlertPlan()
    pending = [s for s in states if s.state.trigger_at is not None]
    plan.take = pending
    if pending and alert is None:
        first = min(pending, key=lambda s: (s.state.trigger_at, s.device_id))
        assert first.state.trigger_at is not None
        severity = strongest(s.state.severity for s in pending) or "major"
        plan.open = NewAlert(first.state.trigger_at, severity, first.device_id, first.state)
    alert_id = alert.alert_id if alert is not None else None
    held = [s for s in states if s.alert_id is not None and s.alert_id == alert_id] + pending
    plan.holding = any(s.state.holding for s in held)
    if alert is None:
        if plan.open is not None and not plan.holding:
            ends = [s.state.ended_at for s in held if s.state.ended_at is not None]
            as_of = max((s.state.as_of for s in held), default=None)
            quiet = quiet_enough(
                holding=False,
                last_end=max(ends, default=None),
                as_of=as_of,
                clear_delay=clear_delay,
            )
            if quiet:
                # Opened from data that has already cleared (a late upload): it opens cleared.
                plan.transition = "resolve" if auto_resolve else "clear"
        return plan
    rated = [s for s in held if s.state.severity is not None]
    if rated:
        plan.strongest = max(rated, key=lambda s: RANK[s.state.severity or "info"])
        top = plan.strongest.state.severity
        assert top is not None
        if stronger(top, alert.severity) != alert.severity:
            plan.upgrade_to = top
    ends = [s.state.ended_at for s in held if s.state.ended_at is not None]
    as_of = max((s.state.as_of for s in held), default=None)
    plan.transition = clear_decision(
        alert,
        holding=plan.holding,
        quiet=quiet_enough(
            holding=plan.holding,
            last_end=max(ends, default=None),
            as_of=as_of,
            clear_delay=clear_delay,
        ),
        auto_resolve=auto_resolve,
    )
    return plan


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
