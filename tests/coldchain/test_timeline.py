"""The shipment timeline's assembly (pure): every source turned into entries, in time order, at
the same instant in the order things happen, with the words and the people shown."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from coldchain.timeline import KIND_ORDER, assemble_timeline, latest

T0 = datetime(2026, 12, 5, 18, 0, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def excursion(**over: Any) -> dict[str, Any]:
    row = {
        "direction": "high",
        "device_id": "LOG-1",
        "start_ts": at(67),
        "end_ts": None,
        "alarm": True,
        "alarm_at": at(77),
        "min_c": 8.3,
        "max_c": 12.8,
        "degree_minutes": 61.4,
        "ended_by_gap": False,
        "alert_shown": True,
    }
    return row | over


def alert_event(kind: str, minutes: float, **over: Any) -> dict[str, Any]:
    row = {
        "at": at(minutes),
        "kind": kind,
        "actor": "system",
        "comment": None,
        "data": {},
        "severity": "critical",
        "title": "Temperature above 8 °C for 10 min",
    }
    return row | over


def lifecycle(event: str, minutes: float, **over: Any) -> dict[str, Any]:
    row = {"at": at(minutes), "event": event, "actor": "ana.ruiz", "reason": None, "data": {}}
    return row | over


def test_the_story_of_an_excursion_in_order() -> None:
    """Given out of order, the sources come back as what happened, oldest first."""
    entries = assemble_timeline(
        created_at=at(0),
        lifecycle=[lifecycle("start", 5), lifecycle("arrive", 200)],
        excursions=[excursion(end_ts=at(120))],
        alert_events=[
            alert_event("acknowledged", 81, actor="ana.ruiz", comment="door closed"),
            alert_event("opened", 77),
            alert_event("escalated", 80, data={"from": 0, "to": 1, "tiers": ["duty manager"]}),
            alert_event("cleared", 121),
        ],
        dispositions=[
            {
                "signed_at": at(300),
                "decision": "release",
                "lot": None,
                "meaning": "approval",
                "reason": "within the stability budget",
                "signer_name": "Quinn Quality",
                "signer_username": "quinn",
                "superseded": False,
            }
        ],
    )
    assert [e.kind for e in entries] == [
        "created",
        "started",
        "excursion_start",
        "alarm_raised",
        "escalated",
        "acknowledged",
        "excursion_end",
        "condition_cleared",
        "arrived",
        "signed",
    ]
    assert [e.at for e in entries] == sorted(e.at for e in entries)
    ack = latest(entries, "acknowledged")
    assert ack is not None and (ack.actor, ack.detail) == ("ana.ruiz", "door closed")
    escalated = latest(entries, "escalated")
    assert escalated is not None and escalated.detail == "to tier 1 (duty manager notified)"
    end = latest(entries, "excursion_end")
    assert end is not None and end.detail == "back in range; peak 12.8 °C, 61 °C·min"
    signed = latest(entries, "signed")
    assert signed is not None
    assert (signed.title, signed.actor, signed.tone) == (
        "Signed: release (whole shipment)",
        "Quinn Quality (quinn)",
        "ok",
    )


def test_same_instant_sorts_in_the_order_things_happen() -> None:
    same = at(10)
    entries = assemble_timeline(
        created_at=None,
        lifecycle=[lifecycle("arrive", 10), lifecycle("create", 10), lifecycle("verdict", 10)],
        excursions=[excursion(start_ts=same, alarm_at=same, alert_shown=False)],
    )
    kinds = [e.kind for e in entries]
    assert kinds == sorted(kinds, key=KIND_ORDER.index)
    assert kinds[0] == "created" and kinds.index("excursion_start") < kinds.index("alarm_raised")


def test_a_create_entry_replaces_the_booking_time() -> None:
    with_create = assemble_timeline(created_at=at(-5), lifecycle=[lifecycle("create", 0)])
    without = assemble_timeline(created_at=at(-5), lifecycle=[lifecycle("start", 0)])
    assert [(e.kind, e.at) for e in with_create] == [("created", at(0))]
    assert [(e.kind, e.at) for e in without] == [("created", at(-5)), ("started", at(0))]


@pytest.mark.parametrize(("alert_shown", "alarms"), [(True, 0), (False, 1)])
def test_the_excursion_alarm_shows_once(alert_shown: bool, alarms: int) -> None:
    """An excursion's alarm is the alert's "opened" entry when the alert's history is there;
    otherwise the excursion's own alarm time stands for it."""
    entries = assemble_timeline(created_at=None, excursions=[excursion(alert_shown=alert_shown)])
    assert sum(e.kind == "alarm_raised" for e in entries) == alarms


def test_a_low_excursion_ended_by_a_gap_says_so() -> None:
    (start, end) = assemble_timeline(
        created_at=None,
        excursions=[
            excursion(direction="low", min_c=-1.5, alarm=False, end_ts=at(90), ended_by_gap=True)
        ],
    )
    assert start.title == "Out of range (too cold) on LOG-1" and start.tone == "warning"
    assert end.title == "Excursion on LOG-1 ended by a data gap"
    assert end.detail is not None and "peak -1.5 °C" in end.detail


def test_a_verdict_names_its_outcome_and_what_judged_it() -> None:
    (entry,) = assemble_timeline(
        created_at=None,
        lifecycle=[
            lifecycle(
                "verdict",
                0,
                actor="engine",
                data={"gtin": "09506000134352", "verdict": "exception", "profile_version": 2},
            )
        ],
    )
    assert entry.title == "Arrival verdict: exception" and entry.tone == "warning"
    assert entry.detail == "GTIN 09506000134352, judged by profile version 2"
