"""coldchain.alert_condition: an alert's condition from the rules engine's facts, with numbers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from coldchain.alert_condition import ConditionFacts, condition_ended_at, condition_of

T = datetime(2026, 11, 26, 19, 0, tzinfo=UTC)
ENDED = T - timedelta(minutes=20)


def facts(**over: object) -> ConditionFacts:
    """No excursion, no rule state, not cleared, plus ``over``."""
    base: dict[str, object] = {
        "cleared_at": None,
        "excursions": 0,
        "open_excursions": 0,
        "rule_states": 0,
        "holding": False,
        "ended_at": None,
    }
    base.update(over)
    return ConditionFacts(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("given", "condition", "ended_at"),
    [
        # an excursion without an end: under way, even if the engine had marked it cleared
        (facts(excursions=2, open_excursions=1, ended_at=ENDED), "active", None),
        (facts(excursions=1, open_excursions=1, cleared_at=T), "active", None),
        # another rule whose state still holds
        (facts(rule_states=1, holding=True), "active", None),
        # everything ended, inside the clear delay: ended, at the data's time
        (facts(excursions=1, ended_at=ENDED), "ended", ENDED),
        (facts(rule_states=1, ended_at=ENDED), "ended", ENDED),
        # the engine cleared it: cleared, at the data's time when known
        (facts(excursions=1, ended_at=ENDED, cleared_at=T), "cleared", ENDED),
        # nothing linked: the engine's word, else the safe reading (active)
        (facts(cleared_at=T), "cleared", T),
        (facts(), "active", None),
    ],
)
def test_condition(given: ConditionFacts, condition: str, ended_at: datetime | None) -> None:
    assert condition_of(given) == condition
    assert condition_ended_at(given) == ended_at
