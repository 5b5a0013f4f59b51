"""Is an alert's condition still under way? What on-call needs beside the alert's own state.

An alert's *state* (open, acknowledged, resolved) is what people did with it; its *condition*
is what the data says: the excursion (or the other rule's episode) that raised it is still
under way, has ended, or has cleared. The two are independent: an unacknowledged alert whose
excursion ended stays open (the rules engine does not let a medicine's excursion vanish unseen),
and an alert someone resolved by hand may still have its logger out of range.

The facts come from the rules engine's own rows (excursions and rule states linked to the alert,
and ``alerts.cleared_at``, which the engine sets once the condition has stayed clear for the
rule's clear delay); this module only reads them:

* ``active``: an excursion of the alert has no end yet, or a rule state it took still holds;
* ``ended``: nothing holds any more, but the clear delay has not passed (it may still re-open);
* ``cleared``: the engine has marked it cleared.

An alert with no linked excursion or rule state (written before the engine linked them, or by
hand) is ``cleared`` when the engine marked it so, ``active`` otherwise: the safe reading.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

Condition = Literal["active", "ended", "cleared"]


@dataclass(frozen=True, slots=True)
class ConditionFacts:
    """What the rules engine recorded for one alert (plain values, one query's columns)."""

    cleared_at: datetime | None
    excursions: int  # current (not superseded) excursions linked to the alert
    open_excursions: int  # of which without an end
    rule_states: int  # rule states (other rules than the temperature range) that it took
    holding: bool  # one of them still holds
    ended_at: datetime | None  # when the last of them ended (the data's time)


def condition_of(facts: ConditionFacts) -> Condition:
    """``active``, ``ended`` or ``cleared`` (see the module docstring)."""
    if facts.open_excursions > 0 or facts.holding:
        return "active"
    if facts.cleared_at is not None:
        return "cleared"
    if facts.excursions or facts.rule_states:
        return "ended"
    return "active"


def condition_ended_at(facts: ConditionFacts) -> datetime | None:
    """When the condition ended (the data's time when known, else when the engine cleared it);
    None while it is active."""
    if condition_of(facts) == "active":
        return None
    return facts.ended_at or facts.cleared_at
