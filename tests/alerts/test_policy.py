"""Tests for the pure alert decisions of alerts.policy (no database)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from alerts.conditions.states import ConditionState
from alerts.policy import (
    AlertState,
    StoredState,
    clear_decision,
    plan_rule_alert,
    quiet_enough,
)
from coldchain.severity import strongest

T0 = datetime(2026, 5, 1, tzinfo=UTC)
MIN = timedelta(minutes=1)
DELAY = 5 * MIN


def t(m: float) -> datetime:
    return T0 + m * MIN


def alert(state: str = "open", *, cleared: bool = False, severity: str = "warning") -> AlertState:
    return AlertState(1, "battery_low", severity, state, cleared)


def stored(
    device: str = "LOG-1",
    *,
    holding: bool = True,
    since: float = 0,
    ended: float | None = None,
    as_of: float = 10,
    severity: str = "warning",
    trigger: float | None = None,
    alert_id: int | None = None,
) -> StoredState:
    return StoredState(
        device_id=device,
        state=ConditionState(
            "battery_low",
            holding=holding,
            as_of=t(as_of),
            since=t(since),
            alarm_at=t(since),
            ended_at=None if ended is None else t(ended),
            severity=severity,
            value=0.1,
            trigger_at=None if trigger is None else t(trigger),
        ),
        alert_id=alert_id,
        alerted_since=None if alert_id is None else t(since),
    )


@pytest.mark.parametrize(
    ("state", "cleared", "holding", "quiet", "auto", "expected"),
    [
        ("open", False, True, False, False, None),
        ("open", True, True, False, False, "reopen"),
        ("open", True, False, False, False, "reopen"),  # cleared, but not quiet any more
        ("open", False, False, False, False, None),  # inside the clear delay: nothing
        ("open", False, False, True, False, "clear"),  # waits for a person
        ("open", True, False, True, False, None),
        ("acknowledged", False, False, True, False, "resolve"),
        ("acknowledged", True, False, True, False, "resolve"),
        ("acknowledged", False, True, False, False, None),
        ("open", False, False, True, True, "resolve"),  # auto-resolving rules
    ],
)
def test_clear_decision(
    state: str, cleared: bool, holding: bool, quiet: bool, auto: bool, expected: str | None
) -> None:
    decision = clear_decision(
        alert(state, cleared=cleared), holding=holding, quiet=quiet, auto_resolve=auto
    )
    assert decision == expected


def test_quiet_is_measured_on_the_data_time() -> None:
    assert not quiet_enough(holding=True, last_end=t(0), as_of=t(99), clear_delay=DELAY)
    assert not quiet_enough(holding=False, last_end=t(0), as_of=t(4), clear_delay=DELAY)
    assert quiet_enough(holding=False, last_end=t(0), as_of=t(5), clear_delay=DELAY)
    assert quiet_enough(holding=False, last_end=None, as_of=None, clear_delay=DELAY)


def test_a_pending_episode_opens_one_alert_at_its_alarm() -> None:
    plan = plan_rule_alert(
        None,
        [stored("LOG-2", trigger=3), stored("LOG-1", trigger=2, severity="major")],
        clear_delay=DELAY,
        auto_resolve=False,
    )
    assert plan.open is not None
    assert (plan.open.triggered_at, plan.open.device_id, plan.open.severity) == (
        t(2),
        "LOG-1",
        "major",
    )
    assert [s.device_id for s in plan.take] == ["LOG-2", "LOG-1"]
    assert plan.transition is None


def test_a_new_episode_joins_and_upgrades_the_unresolved_alert() -> None:
    plan = plan_rule_alert(
        alert(),
        [stored(alert_id=1), stored("LOG-2", trigger=5, severity="critical")],
        clear_delay=DELAY,
        auto_resolve=False,
    )
    assert plan.open is None and [s.device_id for s in plan.take] == ["LOG-2"]
    assert plan.upgrade_to == "critical"


def test_severity_never_goes_down() -> None:
    plan = plan_rule_alert(
        alert(severity="critical"), [stored(alert_id=1)], clear_delay=DELAY, auto_resolve=False
    )
    assert plan.upgrade_to is None


def test_clearing_waits_for_every_device_and_the_delay() -> None:
    one_still_holding = [
        stored(alert_id=1, holding=False, ended=5, as_of=20),
        stored("LOG-2", alert_id=1),
    ]
    assert (
        plan_rule_alert(alert(), one_still_holding, clear_delay=DELAY, auto_resolve=True).transition
        is None
    )
    too_soon = [stored(alert_id=1, holding=False, ended=5, as_of=8)]
    assert (
        plan_rule_alert(alert(), too_soon, clear_delay=DELAY, auto_resolve=True).transition is None
    )
    calm = [stored(alert_id=1, holding=False, ended=5, as_of=10)]
    assert (
        plan_rule_alert(alert(), calm, clear_delay=DELAY, auto_resolve=True).transition == "resolve"
    )
    assert (
        plan_rule_alert(alert(), calm, clear_delay=DELAY, auto_resolve=False).transition == "clear"
    )


def test_an_alert_opened_from_data_that_already_cleared_opens_cleared() -> None:
    late = [stored(holding=False, ended=5, as_of=60, trigger=1)]
    plan = plan_rule_alert(None, late, clear_delay=DELAY, auto_resolve=False)
    assert plan.open is not None and plan.transition == "clear"


def test_states_of_an_older_alert_are_not_held_by_the_current_one() -> None:
    plan = plan_rule_alert(
        alert(), [stored(alert_id=99, holding=True)], clear_delay=DELAY, auto_resolve=False
    )
    assert not plan.holding and plan.transition == "clear"


def test_strongest() -> None:
    assert strongest(["warning", None, "critical", "major"]) == "critical"
    assert strongest([None]) is None
