"""Scenario files: validation errors name the file and the field; bundled scenarios are sound."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from coldchain.errors import ConfigError
from simulator import simulate
from simulator.fleet import build_fleet
from simulator.scenario import bundled_scenarios, load_scenario, scenario_from_dict
from tests.simulator import START, base_scenario

MINIMAL_TOML = """
name = "file-test"
start = 2026-06-01T06:00:00Z
duration_h = 2
[fleet]
shipments = 2
{fleet_extra}
[[products]]
gtin = "{gtin}"
name = "Vaccine"
temp_min_c = 2.0
temp_max_c = 8.0
[[routes]]
name = "r"
legs = [{{ from = "Basel", {to_key} = "Frankfurt", mode = "road" }}]
"""


def write(
    tmp_path: Path, *, fleet_extra: str = "", gtin: str = "00614141000012", to_key: str = "to"
) -> Path:
    path = tmp_path / "my_scenario.toml"
    path.write_text(MINIMAL_TOML.format(fleet_extra=fleet_extra, gtin=gtin, to_key=to_key))
    return path


def error_of(data: dict[str, object]) -> str:
    with pytest.raises(ConfigError) as info:
        scenario_from_dict(data, source="case.toml")
    return str(info.value)


def test_a_valid_file_loads(tmp_path: Path) -> None:
    sc = load_scenario(write(tmp_path))
    assert sc.name == "file-test"
    assert sc.routes[0].legs[0].destination == "Frankfurt"


def test_typo_in_a_field_name_names_file_field_and_suggestion(tmp_path: Path) -> None:
    path = write(tmp_path, fleet_extra="logers_per_shipment = 2")
    with pytest.raises(ConfigError) as info:
        load_scenario(path)
    msg = str(info.value)
    assert str(path) in msg
    assert "fleet.logers_per_shipment" in msg
    assert "did you mean 'loggers_per_shipment'" in msg


def test_typo_inside_a_leg_names_its_position(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_scenario(write(tmp_path, to_key="too"))
    msg = str(info.value)
    assert "my_scenario.toml" in msg
    assert "routes[0].legs[0].too" in msg
    assert "routes[0].legs[0].to" in msg  # and the now missing field


def test_bad_gtin_check_digit_is_reported_on_the_field(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_scenario(write(tmp_path, gtin="00614141000013"))
    msg = str(info.value)
    assert "products[0].gtin" in msg
    assert "check digit is 3, expected 2" in msg


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        (
            {
                "routes": [
                    {"name": "r", "legs": [{"from": "Basle", "to": "Frankfurt", "mode": "road"}]}
                ]
            },
            "case.toml: routes[0].legs[0].from: unknown city 'Basle'; did you mean 'Basel'?",
        ),
        (
            {
                "routes": [
                    {
                        "name": "r",
                        "legs": [
                            {"from": "Basel", "to": "Frankfurt", "mode": "road", "speed_kmh": 400}
                        ],
                    }
                ]
            },
            "speed_kmh 400 is not plausible for road",
        ),
        (
            {
                "routes": [
                    {"name": "r", "legs": [{"from": "Basel", "to": "Chicago", "mode": "road"}]}
                ]
            },
            "case.toml: routes[0].legs[0].mode: 7056 km by road is not plausible",
        ),
        (
            {
                "routes": [
                    {
                        "name": "r",
                        "legs": [
                            {"from": "Basel", "to": "Frankfurt", "mode": "road"},
                            {"from": "Paris", "to": "Chicago", "mode": "air"},
                        ],
                    }
                ]
            },
            "legs[1].from is 'Paris' but legs[0].to is 'Frankfurt'",
        ),
        (
            {"events": [{"kind": "door_opening", "shipments": [1], "fraction": 0.5}]},
            "events[0]: give exactly one of 'shipments' (a list) or 'fraction'",
        ),
        (
            {"events": [{"kind": "door_opening", "shipments": [9]}]},
            "events[0].shipments: 9 > fleet.shipments (3)",
        ),
        ({"events": [{"kind": "explosion", "shipments": [1]}]}, "events[0].kind"),
        ({"start": "2026-06-01T06:00:00"}, "start: Value error, start needs a UTC offset"),
        ({"ambient": "tropical"}, "ambient: unknown profile 'tropical'"),
        (
            {"fleet": {"shipments": 0}},
            "fleet.shipments: Input should be greater than or equal to 1",
        ),
    ],
)
def test_invalid_values_name_their_field(override: dict[str, object], expected: str) -> None:
    msg = error_of(base_scenario(**override))
    assert msg.startswith("invalid scenario case.toml:")
    assert expected.replace("Value error, ", "") in msg


def test_reefer_failure_on_passive_packaging_is_refused() -> None:
    data = base_scenario(events=[{"kind": "reefer_failure", "shipments": [1]}])
    data["routes"][0]["packaging"] = "passive_box"
    assert "shipment 1 travels in passive_box, which has no reefer to fail" in error_of(data)


def test_unknown_bundled_name_lists_the_bundled_ones() -> None:
    with pytest.raises(ConfigError, match="bundled: demo, history, load_test"):
        load_scenario("no_such_scenario")


def test_yaml_and_a_csv_profile_next_to_the_file(tmp_path: Path) -> None:
    (tmp_path / "lane.csv").write_text("# illustrative\nduration_min,temp_c\n60,30\n")
    (tmp_path / "s.yaml").write_text(
        """
name: yaml-test
start: 2026-06-01T06:00:00+00:00
duration_h: 1
ambient: lane
fleet: {shipments: 1}
products: [{gtin: "00614141000012", name: V, temp_min_c: 2, temp_max_c: 8}]
routes: [{name: r, legs: [{from: Basel, to: Zurich, mode: road}]}]
"""
    )
    sc = load_scenario(tmp_path / "s.yaml")
    assert sc.ambient_profiles["lane"].segments == [(60.0, 30.0, 60.0)]


def test_a_broken_csv_profile_names_file_and_field(tmp_path: Path) -> None:
    (tmp_path / "lane.csv").write_text("60,hot\n")
    path = write(tmp_path)
    path.write_text(path.read_text().replace("duration_h = 2", 'duration_h = 2\nambient = "lane"'))
    with pytest.raises(
        ConfigError, match=r"my_scenario\.toml: ambient: profile table 'lane': row 1"
    ):
        load_scenario(path)


@pytest.mark.parametrize("name", bundled_scenarios())
def test_bundled_scenarios_load_and_build(name: str) -> None:
    sc = load_scenario(name)
    fleet = build_fleet(sc, start=START)
    assert len(fleet.devices) == sc.fleet.shipments * sc.fleet.loggers_per_shipment
    if name == "load_test":
        assert len(fleet.devices) >= 10_000
        assert fleet.interval_s == 60


def test_demo_has_an_early_reefer_failure_and_one_that_alarms_live() -> None:
    sc = load_scenario("demo")
    assert sc.fleet.interval_s == 60 and 5 <= sc.fleet.shipments <= 8
    _, _, truth = simulate(sc, start=START)
    with_excursions = [s for s in truth.shipments if s.excursions]
    assert len(with_excursions) == 2
    (_, exc), *rest = with_excursions[0].excursions
    assert not rest
    assert exc.direction == "high"
    assert (exc.start - START).total_seconds() < 30 * 60
    assert 11.5 <= exc.max_c <= 13.5  # "an excursion to ~12 °C"
    assert exc.duration_s > 15 * 60  # longer than the 15 min alarm delay
    assert exc.alarm
    assert exc.end is not None and (exc.end - START).total_seconds() < 90 * 60  # it recovers
    # The second one's alarm (15 min after it leaves the range) falls in the first two minutes
    # after the fast-played history: a new user sees it raised live.
    (_, live), *rest = with_excursions[1].excursions
    assert not rest and live.alarm
    history = timedelta(hours=sc.history_h or 0)
    alarm_at = live.start + timedelta(minutes=15) - START
    assert history < alarm_at < history + timedelta(minutes=2)
    assert live.end is not None and live.end - START > history + timedelta(minutes=20)


def test_a_scenario_city_names_its_time_zone() -> None:
    good = base_scenario()
    good["cities"] = {"Depot X": {"lat": 47.0, "lon": 8.0, "time_zone": "Europe/Zurich"}}
    assert scenario_from_dict(good).city("Depot X").time_zone == "Europe/Zurich"
    bad = base_scenario()
    bad["cities"] = {"Depot X": {"lat": 47.0, "lon": 8.0, "time_zone": "Europe/Nowhere"}}
    with pytest.raises(ConfigError, match=r"time_zone[\s\S]*Europe/Nowhere"):
        scenario_from_dict(bad)
