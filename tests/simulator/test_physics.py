"""The thermal model, ambient profiles, day/night cycle and route geometry, with plain numbers."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from simulator.fleet import build_fleet
from simulator.physics import (
    AmbientProfile,
    Segment,
    battery_level,
    coolant_step,
    diurnal_phase,
    lag_factor,
    lag_response,
    lag_step,
    load_profile_csv,
)
from simulator.routes import (
    CITIES,
    DRIVE_BLOCK_S,
    DRIVE_BREAK_S,
    City,
    LegInput,
    great_circle_km,
    interpolate_great_circle,
    plan_route,
)
from simulator.scenario import scenario_from_dict
from simulator.streams import generate_chunks
from tests.simulator import START, base_scenario

# --- first-order lag ------------------------------------------------------------------------


def test_step_response_gap_after_one_time_constant_is_e_to_minus_one() -> None:
    tau_s, dt_s = 600.0, 60.0
    temps = lag_response(np.full(30, 20.0), initial=5.0, dt_s=dt_s, tau_s=tau_s)
    gap_after_tau = 20.0 - temps[int(tau_s / dt_s)]
    assert gap_after_tau == pytest.approx(15.0 * math.exp(-1), rel=1e-9)
    assert 20.0 - temps[20] == pytest.approx(15.0 * math.exp(-2), rel=1e-9)


def test_step_response_does_not_depend_on_the_step_size() -> None:
    coarse = lag_step(4.0, 12.0, 900.0, 900.0)
    fine = 4.0
    for _ in range(90):
        fine = float(lag_step(fine, 12.0, 10.0, 900.0))
    assert coarse == pytest.approx(fine, rel=1e-12)
    assert 12.0 - coarse == pytest.approx(8.0 / math.e)


def test_zero_time_constant_jumps_to_the_target() -> None:
    assert lag_factor(60.0, 0.0) == 0.0
    assert float(lag_step(5.0, 12.0, 60.0, 0.0)) == 12.0


@given(
    temp=st.floats(-50, 50),
    target=st.floats(-50, 50),
    dt=st.floats(1, 86_400),
    tau=st.floats(1, 86_400),
)
def test_lag_step_stays_between_start_and_target(
    temp: float, target: float, dt: float, tau: float
) -> None:
    out = float(lag_step(temp, target, dt, tau))
    assert min(temp, target) - 1e-9 <= out <= max(temp, target) + 1e-9


def test_fleet_reefer_failure_follows_the_configured_time_constant() -> None:
    """The generator itself: a reefer failure is a step; one τ later the gap is e^-1 of it."""
    data = base_scenario(
        fleet={"shipments": 1, "interval_s": 60, "id_prefix": "TAU"},
        routes=[
            {
                "name": "r",
                "packaging": "reefer_container",
                "tau_min": 12,
                "legs": [{"from": "Basel", "to": "Frankfurt", "mode": "road"}],
            }
        ],
        events=[
            {
                "kind": "reefer_failure",
                "shipments": [1],
                "at_min": 30,
                "duration_min": 120,
                "temp_c": 20.0,
            }
        ],
    )
    fleet = build_fleet(scenario_from_dict(data), start=START)
    chunk = next(generate_chunks(fleet))
    t, temp = chunk.t_ms[0], chunk.temp_true_c[0]
    k0 = int(np.argmax(t >= fleet.events[0].start_ms))  # first sample that sees the failure
    assert temp[k0] == pytest.approx(5.0)  # the setpoint, the middle of 2–8 °C
    gap0 = 20.0 - temp[k0]
    assert 20.0 - temp[k0 + 12] == pytest.approx(gap0 * math.exp(-1), rel=1e-9)


# --- coolant, ambient, day/night, battery -------------------------------------------------------


def test_passive_coolant_holds_until_its_capacity_is_spent() -> None:
    cap = np.array([10.0])
    targets = []
    for _ in range(4):
        target, cap = coolant_step(cap, np.array([5.0]), np.array([25.0]), 900.0)  # 20 K x 0.25 h
        targets.append(float(target[0]))
    assert targets == [5.0, 5.0, 25.0, 25.0]  # 5 K·h per step: two steps, then the ambient
    assert float(cap[0]) == 0.0


def test_ambient_profile_segments_repeat() -> None:
    prof = AmbientProfile("p", (Segment(3600, 10.0, 40.0), Segment(1800, 30.0, 20.0)))
    temps, rhs = prof.at(np.array([0.0, 3599.0, 3600.0, 5399.0, 5400.0, -1.0]))
    assert temps.tolist() == [10.0, 10.0, 30.0, 30.0, 10.0, 30.0]
    assert rhs.tolist() == [40.0, 40.0, 20.0, 20.0, 40.0, 20.0]


def test_profile_csv_with_comments_and_header() -> None:
    text = "# illustrative\nduration_min,temp_c,rh\n60,25,50\n30,35\n"
    prof = load_profile_csv("x", text)
    assert prof.segments == (Segment(3600.0, 25.0, 50.0), Segment(1800.0, 35.0, 60.0))
    with pytest.raises(ValueError, match="row 2"):
        load_profile_csv("x", "60,25\n-5,30\n")


def test_day_night_peaks_at_15h_local_solar_time() -> None:
    noon_utc = 12 * 3600.0
    assert float(diurnal_phase(np.array(15 * 3600.0), np.array(0.0))) == pytest.approx(1.0)
    assert float(diurnal_phase(np.array(3 * 3600.0), np.array(0.0))) == pytest.approx(-1.0)
    # 45° east is three hours ahead: 12:00 UTC is 15:00 there
    assert float(diurnal_phase(np.array(noon_utc), np.array(45.0))) == pytest.approx(1.0)


def test_battery_drains_linearly_and_stops_at_zero() -> None:
    levels = battery_level(np.array([0.5]), np.array([0.0, 86_400.0, 30 * 86_400.0]), 0.1)
    assert levels.tolist() == pytest.approx([0.5, 0.4, 0.0])


# --- routes -------------------------------------------------------------------------------


def test_great_circle_distances_of_known_city_pairs() -> None:
    assert great_circle_km(CITIES["London"], CITIES["New York"]) == pytest.approx(5570, rel=0.01)
    assert great_circle_km(CITIES["Amsterdam"], CITIES["Frankfurt"]) == pytest.approx(365, rel=0.02)


def test_great_circle_interpolation_endpoints_and_midpoint() -> None:
    a, b = City("a", 0.0, 0.0), City("b", 0.0, 90.0)
    lat, lon = interpolate_great_circle(a, b, np.array([0.0, 0.5, 1.0]))
    assert lat.tolist() == pytest.approx([0.0, 0.0, 0.0], abs=1e-9)
    assert lon.tolist() == pytest.approx([0.0, 45.0, 90.0])
    # On a meridian the midpoint of 0°N and 60°N is 30°N.
    lat, _ = interpolate_great_circle(City("s", 0.0, 10.0), City("n", 60.0, 10.0), np.array([0.5]))
    assert float(lat[0]) == pytest.approx(30.0)


def test_road_legs_take_breaks_and_hold_position_during_them() -> None:
    plan = plan_route([LegInput(CITIES["Basel"], CITIES["Madrid"], "road")], handoff_s=0)
    leg = plan.legs[0]
    breaks = math.ceil(leg.moving_s / DRIVE_BLOCK_S) - 1
    assert breaks >= 2
    assert leg.arrive_s == pytest.approx(leg.moving_s + breaks * DRIVE_BREAK_S)
    in_break = np.array([DRIVE_BLOCK_S + 60.0, DRIVE_BLOCK_S + DRIVE_BREAK_S - 60.0])
    lat, lon = plan.position_at(in_break)
    assert lat[0] == lat[1] and lon[0] == lon[1]


def test_route_positions_before_during_and_after() -> None:
    legs = [
        LegInput(CITIES["Basel"], CITIES["Frankfurt"], "road"),
        LegInput(CITIES["Frankfurt"], CITIES["Chicago"], "air"),
    ]
    plan = plan_route(legs, handoff_s=3 * 3600)
    air = plan.legs[1]
    assert air.depart_s == pytest.approx(plan.legs[0].arrive_s + 3 * 3600)
    assert 8 * 3600 < air.arrive_s - air.depart_s < 12 * 3600  # a transatlantic flight
    lat, lon = plan.position_at(np.array([-100.0, plan.legs[0].arrive_s + 60, 1e9]))
    assert (lat[0], lon[0]) == (CITIES["Basel"].lat, CITIES["Basel"].lon)
    assert (lat[1], lon[1]) == (CITIES["Frankfurt"].lat, CITIES["Frankfurt"].lon)  # hand-off
    assert (lat[2], lon[2]) == (CITIES["Chicago"].lat, CITIES["Chicago"].lon)
