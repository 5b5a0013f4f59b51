"""The shipment lifecycle's rules: every (state, transition) pair, allowed or refused."""

from __future__ import annotations

import itertools

import pytest

from coldchain.errors import ShipmentStateError
from coldchain.lifecycle import (
    DISPOSABLE,
    EVENTS,
    FINAL,
    QA_STATES,
    STATE_LABELS,
    STATES,
    allowed,
    qa_state,
    transition,
)

# Written out by hand from the issue (planned → in transit → arrived → under review → released /
# quarantined / rejected / returned; cancelled from planned only), not derived from the module
# under test. A signed disposition may supersede an earlier one, so the four decisions also leave
# from each disposed state (and from "arrived", for shipments that arrived before verdicts).
_DISPOSED = {
    "release": "released",
    "quarantine": "quarantined",
    "reject": "rejected",
    "return": "returned",
}
EXPECTED: dict[tuple[str, str], str] = {
    ("planned", "start"): "in_transit",
    ("planned", "cancel"): "cancelled",
    ("in_transit", "arrive"): "arrived",
    ("arrived", "review"): "under_review",
    **{
        (source, decision): target
        for source in ("arrived", "under_review", "released", "quarantined", "rejected", "returned")
        for decision, target in _DISPOSED.items()
    },
}


def test_the_states_and_events_are_those_of_the_issue() -> None:
    assert set(STATES) == {
        "planned", "in_transit", "arrived", "under_review", "released", "quarantined",
        "rejected", "returned", "cancelled",
    }  # fmt: skip
    assert set(EVENTS) == {
        "start",
        "arrive",
        "review",
        "release",
        "quarantine",
        "reject",
        "return",
        "cancel",
    }


@pytest.mark.parametrize(("state", "event"), sorted(EXPECTED))
def test_an_allowed_transition_leads_where_the_issue_says(state: str, event: str) -> None:
    move = transition(state, event)
    assert (move.before, move.event, move.after) == (state, event, EXPECTED[state, event])


REFUSED = sorted(set(itertools.product(STATES, EVENTS)) - set(EXPECTED))


@pytest.mark.parametrize(("state", "event"), REFUSED)
def test_every_other_transition_is_refused_naming_where_it_may_leave_from(
    state: str, event: str
) -> None:
    with pytest.raises(ShipmentStateError) as refused:
        transition(state, event)
    sources = sorted(s for (s, e) in EXPECTED if e == event)
    assert f"cannot {event} a shipment that is {state}" in str(refused.value)
    for source in sources:
        assert source in str(refused.value).split("only from ")[1]


def test_cancel_only_from_planned() -> None:
    assert [s for s in STATES if "cancel" in allowed(s)] == ["planned"]


def test_unknown_names_are_refused_clearly() -> None:
    with pytest.raises(ShipmentStateError, match="unknown transition 'teleport'"):
        transition("planned", "teleport")
    with pytest.raises(ShipmentStateError, match="delivered"):
        transition("delivered", "arrive")  # the old state name is gone


def test_only_a_cancelled_shipment_has_no_way_out() -> None:
    assert set(FINAL) == {"cancelled"}
    assert allowed("cancelled") == ()


def test_no_disposition_while_planned_or_in_transit() -> None:
    for state in ("planned", "in_transit"):
        assert not {"release", "quarantine", "reject", "return"} & set(allowed(state))


def test_the_qa_state_is_what_qa_has_to_decide_or_has_decided_in_plain_words() -> None:
    # every state a disposition may be recorded in is QA's, and only those
    assert set(QA_STATES) == set(DISPOSABLE)
    assert [qa_state(s) for s in ("planned", "in_transit", "cancelled")] == [None] * 3
    assert qa_state("under_review") == "under review"
    assert qa_state("no such state") is None
    # no code leaks into the words
    assert all("_" not in label for label in [*STATE_LABELS.values(), *QA_STATES.values()])
    assert set(STATE_LABELS) == set(STATES)
