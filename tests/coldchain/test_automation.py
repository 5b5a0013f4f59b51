"""The rules that start and arrive a shipment on their own (coldchain/automation.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from coldchain.automation import Fix, arrive_trigger, start_trigger
from coldchain.geo import Geofence, distance_m

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
ORIGIN = Geofence(47.5596, 7.5886, 500.0)  # a depot
DESTINATION = Geofence(45.4642, 9.1900, 800.0)  # a hospital
NEAR_ORIGIN = (47.5597, 7.5887)
FAR = (46.5, 8.4)  # on the road between them


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def fix(minutes: float, where: tuple[float, float] | None = None, device: str = "L1") -> Fix:
    lat, lon = where if where else (None, None)
    return Fix(at(minutes), device, lat, lon)


def test_the_premise_of_these_tests() -> None:
    assert distance_m(*NEAR_ORIGIN, ORIGIN.lat, ORIGIN.lon) < ORIGIN.radius_m
    assert distance_m(*FAR, ORIGIN.lat, ORIGIN.lon) > 100_000


def test_the_first_reading_at_or_after_the_departure_starts_it() -> None:
    fixes = [fix(-10), fix(-1), fix(0, device="L2"), fix(1)]
    trigger = start_trigger(fixes, departure=at(0), origin=None)
    assert trigger is not None
    assert (trigger.rule, trigger.at, trigger.device_id) == ("departure", at(0), "L2")
    assert "first reading after departure" in trigger.reason
    assert start_trigger(fixes[:2], departure=at(0), origin=None) is None


def test_nothing_starts_a_shipment_without_a_departure_or_an_origin_geofence() -> None:
    assert start_trigger([fix(5, FAR)], departure=None, origin=None) is None


def test_leaving_the_origin_means_in_then_out() -> None:
    # Outside first (switched on elsewhere): nothing; then inside, then outside: the start.
    fixes = [fix(0, FAR), fix(5, NEAR_ORIGIN), fix(6), fix(7, FAR), fix(8, FAR)]
    trigger = start_trigger(fixes, departure=None, origin=ORIGIN, origin_site="GLN 123")
    assert trigger is not None
    assert (trigger.rule, trigger.at) == ("left_origin", at(7))
    assert "left origin geofence GLN 123" in trigger.reason
    assert start_trigger(fixes[:3], departure=None, origin=ORIGIN) is None  # in, not yet out


def test_the_earlier_rule_wins_and_a_tie_goes_to_the_departure() -> None:
    fixes = [fix(0, NEAR_ORIGIN), fix(3, FAR), fix(10, FAR)]
    early = start_trigger(fixes, departure=at(10), origin=ORIGIN)
    assert early is not None and (early.rule, early.at) == ("left_origin", at(3))
    tie = start_trigger(fixes, departure=at(3), origin=ORIGIN)
    assert tie is not None and (tie.rule, tie.at) == ("departure", at(3))


def test_arrival_is_the_first_position_inside_the_destination_after_the_start() -> None:
    inside = (DESTINATION.lat, DESTINATION.lon + 0.001)
    fixes = [fix(-5, inside), fix(10, FAR), fix(20, inside), fix(21, inside)]
    trigger = arrive_trigger(fixes, started_at=at(0), destination=DESTINATION, site="GLN 9")
    assert trigger is not None
    assert (trigger.rule, trigger.at) == ("entered_destination", at(20))
    assert "entered destination geofence GLN 9" in trigger.reason
    assert arrive_trigger(fixes, started_at=at(0), destination=None) is None
    assert arrive_trigger(fixes[:2], started_at=at(0), destination=DESTINATION) is None


@given(st.permutations(list(range(12))))
def test_the_order_readings_come_in_does_not_change_the_answer(order: list[int]) -> None:
    """Late data gives the same answer: the decision depends on the readings, not their order."""
    route = [NEAR_ORIGIN] * 3 + [FAR] * 5 + [(DESTINATION.lat, DESTINATION.lon)] * 4
    fixes = [fix(i, route[i]) for i in range(12)]
    shuffled = [fixes[i] for i in order]
    started = start_trigger(shuffled, departure=at(4), origin=ORIGIN)
    assert started == start_trigger(fixes, departure=at(4), origin=ORIGIN)
    assert started is not None and started.at == at(3)
    arrived = arrive_trigger(shuffled, started_at=started.at, destination=DESTINATION)
    assert arrived is not None and arrived.at == at(8)
