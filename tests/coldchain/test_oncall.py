"""On-call rotations: who is on call, hand-overs on the wall clock across DST, overrides."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from coldchain.oncall import (
    Override,
    Rotation,
    handover_at,
    shift_index,
    upcoming_shifts,
    who_is_on_call,
)

BERLIN = ZoneInfo("Europe/Berlin")
MEMBERS = ["ana", "ben", "cleo"]


def rotation(**changes: object) -> Rotation:
    base: dict[str, object] = {
        "name": "cold-chain-tower",
        "team": "Control tower",
        "time_zone": "Europe/Berlin",
        "handover_time": time(9, 0),
        "shift_days": 1,
        "start_date": date(2026, 3, 1),
    }
    return Rotation(**{**base, **changes})  # type: ignore[arg-type]


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=BERLIN)  # type: ignore[arg-type, misc]


def test_daily_rotation_hands_over_at_nine_local_time() -> None:
    r = rotation()
    assert who_is_on_call(r, MEMBERS, [], local(2026, 3, 1, 9, 0)) == "ana"
    assert who_is_on_call(r, MEMBERS, [], local(2026, 3, 2, 8, 59)) == "ana"
    assert who_is_on_call(r, MEMBERS, [], local(2026, 3, 2, 9, 0)) == "ben"
    assert who_is_on_call(r, MEMBERS, [], local(2026, 3, 3, 23, 0)) == "cleo"
    assert who_is_on_call(r, MEMBERS, [], local(2026, 3, 4, 10, 0)) == "ana"  # round again


def test_nobody_before_the_start_or_without_members() -> None:
    r = rotation()
    assert who_is_on_call(r, MEMBERS, [], local(2026, 3, 1, 8, 59)) is None
    assert who_is_on_call(r, [], [], local(2026, 3, 5, 12, 0)) is None


def test_the_hand_over_stays_at_nine_on_the_wall_clock_across_both_dst_changes() -> None:
    # Berlin: clocks go forward on 2026-03-29 (02:00 → 03:00) and back on 2026-10-25.
    r = rotation()
    spring = [handover_at(r, i) for i in range(27, 30)]  # 28, 29, 30 March
    assert [h.astimezone(BERLIN).time() for h in spring] == [time(9, 0)] * 3
    assert [h.hour for h in spring] == [8, 7, 7]  # 09:00 CET is 08:00 UTC, CEST 07:00 UTC
    assert spring[1] - spring[0] == timedelta(hours=23)  # the short shift
    autumn = [handover_at(r, (date(2026, 10, d) - r.start_date).days) for d in (24, 25, 26)]
    assert [h.astimezone(BERLIN).time() for h in autumn] == [time(9, 0)] * 3
    assert autumn[1] - autumn[0] == timedelta(hours=25)  # the long shift (back at 03:00)
    assert autumn[2] - autumn[1] == timedelta(hours=24)
    # One second before and at the hand-over on the day of the change, in UTC.
    change_day = handover_at(r, 28)
    before = who_is_on_call(r, MEMBERS, [], change_day - timedelta(seconds=1))
    after = who_is_on_call(r, MEMBERS, [], change_day)
    assert (before, after) == (MEMBERS[27 % 3], MEMBERS[28 % 3])


def test_a_weekly_rotation_and_a_handover_in_the_spring_gap() -> None:
    weekly = rotation(shift_days=7, start_date=date(2026, 3, 2))  # a Monday
    assert who_is_on_call(weekly, MEMBERS, [], local(2026, 3, 8, 23, 0)) == "ana"
    assert who_is_on_call(weekly, MEMBERS, [], local(2026, 3, 9, 9, 0)) == "ben"
    # 02:30 does not exist on 2026-03-29 in Berlin: it falls at 03:30 CEST (01:30 UTC).
    gap = rotation(handover_time=time(2, 30))
    h = handover_at(gap, 28)
    assert h == datetime(2026, 3, 29, 1, 30, tzinfo=UTC)


def test_an_override_wins_while_it_lasts_and_the_last_created_wins_an_overlap() -> None:
    r = rotation()
    sick = Override("dan", local(2026, 3, 2, 12, 0), local(2026, 3, 3, 12, 0), "ben is ill")
    swap = Override("cleo", local(2026, 3, 2, 18, 0), local(2026, 3, 2, 20, 0), "swap")
    overrides = [sick, swap]
    assert who_is_on_call(r, MEMBERS, overrides, local(2026, 3, 2, 11, 59)) == "ben"
    assert who_is_on_call(r, MEMBERS, overrides, local(2026, 3, 2, 12, 0)) == "dan"
    assert who_is_on_call(r, MEMBERS, overrides, local(2026, 3, 2, 19, 0)) == "cleo"
    assert who_is_on_call(r, MEMBERS, overrides, local(2026, 3, 3, 11, 0)) == "dan"
    assert who_is_on_call(r, MEMBERS, overrides, local(2026, 3, 3, 12, 0)) == "cleo"
    # Even before the start or without members, an override names someone.
    assert who_is_on_call(r, [], [sick], local(2026, 3, 2, 13, 0)) == "dan"


def test_upcoming_shifts_are_contiguous_and_begin_with_the_one_under_way() -> None:
    r = rotation()
    shifts = upcoming_shifts(r, MEMBERS, local(2026, 3, 28, 12, 0), 4)
    assert [s.username for s in shifts] == [MEMBERS[i % 3] for i in range(27, 31)]
    assert shifts[0].starts_at <= local(2026, 3, 28, 12, 0) < shifts[0].ends_at
    assert all(a.ends_at == b.starts_at for a, b in itertools.pairwise(shifts))
    assert upcoming_shifts(r, [], local(2026, 3, 28, 12, 0), 4) == []


@given(
    zone=st.sampled_from(["Europe/Berlin", "America/New_York", "Australia/Sydney", "UTC"]),
    shift_days=st.integers(1, 14),
    minutes=st.integers(0, 24 * 60 - 1),
    offset_h=st.integers(0, 24 * 400),
)
def test_the_shift_under_way_contains_the_instant(
    zone: str, shift_days: int, minutes: int, offset_h: int
) -> None:
    r = rotation(
        time_zone=zone, shift_days=shift_days, handover_time=time(minutes // 60, minutes % 60)
    )
    at = handover_at(r, 0) + timedelta(hours=offset_h, minutes=7)
    i = shift_index(r, at)
    assert handover_at(r, i) <= at < handover_at(r, i + 1)
    assert who_is_on_call(r, MEMBERS, [], at) == MEMBERS[i % 3]
