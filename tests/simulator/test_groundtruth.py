"""Ground truth: excursions and MKT on hand-made series, and the streaming builder against them."""

from __future__ import annotations

import itertools
import json
import math
from datetime import timedelta

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.fleet import build_fleet, from_ms
from simulator.groundtruth import (
    ExcursionTracker,
    GroundTruthBuilder,
    TrueExcursion,
    find_excursions,
    mean_kinetic_temperature,
)
from simulator.scenario import scenario_from_dict
from simulator.streams import generate_chunks
from tests.simulator import START, base_scenario

T0 = 1_780_300_800_000  # an epoch-ms minute boundary
MIN = 60_000


def series(*temps: float, gaps: dict[int, int] | None = None) -> tuple[list[int], list[float]]:
    """Readings one minute apart; ``gaps`` adds extra minutes before the given index."""
    t, shift = [], 0
    for i in range(len(temps)):
        shift += (gaps or {}).get(i, 0)
        t.append(T0 + (i + shift) * MIN)
    return t, list(temps)


def excursions(t: list[int], v: list[float], **kw: float) -> list[TrueExcursion]:
    args = {"temp_min_c": 2.0, "temp_max_c": 8.0, "interval_s": 60.0, "freeze_limit_c": 0.0} | kw
    return find_excursions(t, v, **args)  # type: ignore[arg-type]


def test_a_high_excursion_that_comes_back() -> None:
    t, v = series(5, 7, 9, 12, 10, 7, 5)
    (e,) = excursions(t, v, alarm_delay_s=180)
    assert e.direction == "high"
    assert (e.start, e.last_out, e.end) == (from_ms(t[2]), from_ms(t[4]), from_ms(t[5]))
    assert (e.min_c, e.max_c, e.n_readings) == (9, 12, 3)
    assert e.duration_s == 180
    assert e.degree_minutes == pytest.approx(1 + 4 + 2)  # each reading held one minute
    assert e.alarm  # 3 min >= the 3 min delay
    assert not e.ended_by_gap


def test_short_excursion_below_the_alarm_delay_is_recorded_without_alarm() -> None:
    (e,) = excursions(*series(5, 9, 5), alarm_delay_s=15 * 60)
    assert e.duration_s == 60 and not e.alarm


def test_freezing_alarms_at_once_and_low_uses_the_low_limit() -> None:
    (e,) = excursions(*series(3, 1.5, -0.5, 1, 4), alarm_delay_s=3600)
    assert e.direction == "low" and e.alarm
    assert (e.min_c, e.max_c, e.readings_freezing) == (-0.5, 1.5, 1)
    assert e.degree_minutes == pytest.approx(0.5 + 2.5 + 1.0)


def test_high_straight_into_low_is_two_excursions_meeting_at_one_reading() -> None:
    t, v = series(5, 9, 1, 5)
    high, low = excursions(t, v)
    assert (high.direction, low.direction) == ("high", "low")
    assert high.end == low.start == from_ms(t[2])


def test_a_gap_ends_an_excursion_at_its_last_reading() -> None:
    t, v = series(5, 9, 10, 11, 11, 5, gaps={3: 5})  # 6 minutes between index 2 and 3
    first, second = excursions(t, v)
    assert first.ended_by_gap and first.end == first.last_out == from_ms(t[2])
    assert first.degree_minutes == pytest.approx(1.0)  # 10 °C is not held across the gap
    assert second.start == from_ms(t[3]) and second.end == from_ms(t[5]) and not second.ended_by_gap


def test_still_out_at_the_end_is_open_unless_the_logger_fell_silent() -> None:
    t, v = series(5, 9, 10)
    (e,) = excursions(t, v)
    assert e.end is None and e.duration_s == 60
    (silent,) = excursions(t, v, end_ms=t[-1] + 10 * MIN)
    assert silent.ended_by_gap and silent.end == from_ms(t[-1])


def test_no_excursion_in_range() -> None:
    assert excursions(*series(2, 5, 8, 2.0)) == []


@settings(max_examples=60, deadline=None)
@given(
    temps=st.lists(st.sampled_from([-1.0, 1.0, 5.0, 9.0, 41.0]), min_size=1, max_size=40),
    gaps=st.lists(st.booleans(), min_size=40, max_size=40),
    cuts=st.lists(st.integers(1, 39), max_size=4),
)
def test_feeding_in_pieces_equals_feeding_at_once(
    temps: list[float], gaps: list[bool], cuts: list[int]
) -> None:
    t, v = series(*temps, gaps={i: 3 for i, g in enumerate(gaps[: len(temps)]) if g})
    whole = excursions(t, v, alarm_delay_s=120)
    tracker = ExcursionTracker(
        temp_min_c=2.0, temp_max_c=8.0, freeze_limit_c=0.0, alarm_delay_s=120, max_gap_ms=2 * MIN
    )
    bounds = [0, *sorted({c for c in cuts if c < len(t)}), len(t)]
    for a, b in itertools.pairwise(bounds):
        tracker.feed(np.array(t[a:b], dtype=np.int64), np.array(v[a:b]))
    assert tracker.finish(t[-1]) == whole


# --- MKT ----------------------------------------------------------------------------------


def test_mkt_of_a_constant_series_is_that_constant() -> None:
    assert mean_kinetic_temperature([5.0] * 10) == pytest.approx(5.0, abs=1e-9)


def test_mkt_of_two_temperatures_by_hand() -> None:
    e = 83_144 / 8.3144  # ΔH/R = 10 000 K
    t1, t2 = 20 + 273.15, 30 + 273.15
    expected = e / -math.log((math.exp(-e / t1) + math.exp(-e / t2)) / 2) - 273.15
    assert mean_kinetic_temperature([20.0, 30.0]) == pytest.approx(expected, abs=1e-9)
    assert expected > 25.0  # the warm reading weighs more


@given(
    st.lists(st.floats(-20, 50), min_size=1, max_size=30),
    st.lists(st.floats(0.1, 10), min_size=30, max_size=30),
)
def test_mkt_is_at_least_the_weighted_mean(temps: list[float], weights: list[float]) -> None:
    w = weights[: len(temps)]
    mean = float(np.average(temps, weights=w))
    assert mean_kinetic_temperature(temps, w) >= mean - 1e-9


# --- the builder over a whole run ---------------------------------------------------------


def test_builder_matches_the_plain_functions_over_a_run_with_gaps() -> None:
    data = base_scenario(
        duration_h=6,
        fleet={"shipments": 3, "loggers_per_shipment": 2, "interval_s": 120, "id_prefix": "GT"},
        events=[
            {
                "kind": "reefer_failure",
                "shipments": [1, 3],
                "at_min": 30,
                "duration_min": 90,
                "temp_c": 18.0,
            },
            {"kind": "power_loss", "shipments": [1], "logger": 1, "at_min": 60, "duration_min": 40},
            {
                "kind": "cold_exposure",
                "shipments": [2],
                "at_min": 200,
                "duration_min": 60,
                "temp_c": -8.0,
            },
            {"kind": "logger_death", "shipments": [3], "logger": 2, "at_min": 100},
        ],
    )
    fleet = build_fleet(scenario_from_dict(data), start=START)
    builder = GroundTruthBuilder(fleet)
    rows: dict[int, tuple[list[int], list[float]]] = {
        d: ([], []) for d in range(len(fleet.devices))
    }
    for chunk in generate_chunks(fleet):
        builder.observe(chunk)
        for d in range(len(fleet.devices)):
            keep = chunk.recorded[d]
            rows[d][0].extend(chunk.t_ms[d, keep].tolist())
            rows[d][1].extend(chunk.temp_true_c[d, keep].tolist())
    truth = builder.finish()
    devices = [dev for s in truth.shipments for dev in s.devices]
    assert sum(len(d.excursions) for d in devices) >= 5
    for d, dev in enumerate(devices):
        t, v = rows[d]
        product = fleet.product_of_device(d)
        expected = find_excursions(
            t,
            v,
            temp_min_c=2.0,
            temp_max_c=8.0,
            freeze_limit_c=0.0,
            interval_s=120,
            alarm_delay_s=product.alarm_delay_s,
            end_ms=fleet.end_ms,
        )
        assert list(dev.excursions) == expected
        assert dev.n_readings == len(t)
        # step weights: each reading holds until the next, none across a gap (> 2 intervals)
        dt = np.diff(t)
        w = np.where(dt <= 240_000, dt, 0)
        assert dev.mkt_c == pytest.approx(mean_kinetic_temperature(v[:-1], w), abs=1e-9)
    gappy = devices[0]  # the logger that lost power: its excursion is split by the gap
    assert any(e.ended_by_gap for e in gappy.excursions)
    dead = devices[5]
    assert dead.dies_at == START + timedelta(minutes=100)
    assert dead.last_reading is not None and dead.last_reading < dead.dies_at


def test_ground_truth_json_carries_rules_excursions_and_faults() -> None:
    data = base_scenario(
        events=[
            {
                "kind": "reefer_failure",
                "shipments": [1],
                "at_min": 10,
                "duration_min": 60,
                "temp_c": 15.0,
            }
        ],
        faults={"duplicate_rate": 0.01},
    )
    from simulator import simulate

    _, messages, truth = simulate(scenario_from_dict(data), start=START)
    doc = json.loads(truth.to_json())
    assert doc["scenario"] == "unit" and doc["complete"] is True
    assert "step" in doc["rules"]["weighting"]
    first = doc["shipments"][0]["devices"][0]
    assert first["excursions"][0]["direction"] == "high"
    assert first["excursions"][0]["start"].endswith("Z")
    assert doc["faults"]["summary"]["duplicates"] == sum(m.kind == "duplicate" for m in messages)
    assert doc["shipments"][0]["events"][0]["kind"] == "reefer_failure"
