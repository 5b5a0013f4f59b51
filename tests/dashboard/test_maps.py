"""The maps' figure functions (dashboard/maps.py): plain data frames in, Plotly figures out; and
the offline basemap they draw (dashboard/assets/basemap/)."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest
from hypothesis import given
from hypothesis import strategies as st

from coldchain.thermal.limits import Limits
from dashboard.figures import CONDITION_COLORS
from dashboard.maps import (
    BASEMAP_LAYERS,
    DRAW_ORDER,
    OSM_TILES,
    Place,
    _segments,
    excursion_starts,
    fleet_map,
    out_of_range,
    route_map,
)
from dashboard.pages.shipment_route import route_note

ASSETS = Path(__file__).resolve().parents[2] / "dashboard" / "assets"
T0 = datetime(2026, 11, 20, 3, 0, tzinfo=UTC)
RANGE_2_8 = Limits(low_c=2.0, high_c=8.0, freeze_c=0.0, alarm_delay=timedelta(minutes=10))


def _fleet(*rows: tuple[str, str, float | None, float | None, float | None]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "reference": r,
                "lane": "A → B",
                "condition": c,
                "current_temp_c": t,
                "lat": y,
                "lon": x,
            }
            for r, c, t, y, x in rows
        ]
    )


def _urls(value: go.Figure) -> list[str]:
    """Every string in a figure's JSON that names another origin."""
    text = value.to_json()
    return [part for part in text.split('"') if part.startswith(("http://", "https://", "//"))]


def test_alarm_markers_are_drawn_last_and_largest_in_their_colours() -> None:
    fig = fleet_map(
        _fleet(
            ("A", "alarm", 9.1, 52.0, 4.0),
            ("B", "ok", 5.0, 52.0, 4.001),
            ("C", "warning", 8.4, 48.0, 11.0),
            ("D", "offline", None, 47.0, 8.0),
            ("E", "ok", None, None, None),  # no position: not on the map
        )
    )
    assert [t.name for t in fig.data] == ["OK", "Offline", "Warning", "Alarm"]
    assert [list(t.text) for t in fig.data] == [["B"], ["D"], ["C"], ["A"]]
    sizes = [t.marker.size for t in fig.data]
    assert sizes == sorted(sizes) and sizes[-1] > sizes[-2] > sizes[0]
    assert [t.marker.color for t in fig.data] == [CONDITION_COLORS[c] for c in DRAW_ORDER]
    assert fig.layout.legend.traceorder == "reversed"  # the legend lists the alarm first


def test_the_fleet_hover_names_the_shipment_its_status_and_temperature() -> None:
    fig = fleet_map(_fleet(("A", "alarm", 9.14, 52.0, 4.0), ("D", "offline", None, 47.0, 8.0)))
    alarm = next(t for t in fig.data if t.name == "Alarm")
    offline = next(t for t in fig.data if t.name == "Offline")
    assert list(alarm.text) == ["A"]
    assert alarm.hovertemplate == "<b>%{text}</b><br>Alarm · %{hovertext}<extra></extra>"
    assert list(alarm.hovertext) == ["9.1 °C<br>A → B"]
    assert offline.hovertemplate.startswith("<b>%{text}</b><br>Offline · ")
    assert list(offline.hovertext) == ["no reading<br>A → B"]


def test_an_empty_fleet_still_draws_a_map() -> None:
    fig = fleet_map(pd.DataFrame())
    assert fig.data and fig.layout.map.style["sources"]


@pytest.mark.parametrize(
    ("fig", "folder"),
    [
        # the fleet's overview draws the 1:110m basemap, a lane's route the 1:50m one
        (fleet_map(_fleet(("A", "alarm", 9.1, 52.0, 4.0))), "/assets/basemap/110m"),
        (route_map(pd.DataFrame(), limits=None), "/assets/basemap"),
    ],
    ids=["fleet", "route"],
)
def test_without_tiles_the_map_names_no_other_origin(fig: Any, folder: str) -> None:
    layout = fig.layout.map.to_plotly_json()
    style = layout["style"]
    assert isinstance(style, dict)
    assert "glyphs" not in style and "sprite" not in style  # fonts and icons come from servers
    assert {name: source["data"] for name, source in style["sources"].items()} == {
        "land": f"{folder}/land.geojson",
        "borders": f"{folder}/borders.geojson",
    }
    assert [layer["id"] for layer in style["layers"]] == list(BASEMAP_LAYERS)
    assert [layer["type"] for layer in style["layers"]] == ["background", "fill", "line", "line"]
    assert layout.get("layers", []) == []
    assert _urls(fig) == []
    # nothing is drawn as text: text needs glyphs, from a font server
    assert all("text" not in (t.mode or "") for t in fig.data)


def test_configured_tiles_are_drawn_over_the_basemap_under_the_markers() -> None:
    fig = fleet_map(_fleet(("A", "ok", 5.0, 52.0, 4.0)), tiles=OSM_TILES)
    layers = fig.layout.map.layers
    assert [layer.name for layer in layers] == ["tiles"]
    assert list(layers[0].source) == [OSM_TILES] and layers[0].below == "traces"
    assert "OpenStreetMap" in layers[0].sourceattribution
    assert fig.layout.map.style["layers"][0]["id"] == "sea"  # the basemap stays under them


@pytest.mark.parametrize("scale", ["", "110m"])
@pytest.mark.parametrize("name", ["land", "borders"])
def test_the_basemap_files_are_geojson_the_app_serves(name: str, scale: str) -> None:
    path = ASSETS / "basemap" / scale / f"{name}.geojson"
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["type"] == "FeatureCollection" and data["features"]
    coords = np.array(
        [
            point
            for feature in data["features"]
            for line in feature["geometry"]["coordinates"]
            for point in line
        ]
    )
    assert (np.abs(coords[:, 0]) <= 180).all() and (np.abs(coords[:, 1]) <= 90).all()
    if name == "land":
        # the land's outer rings are closed polygons, as GeoJSON requires
        rings = [f["geometry"]["coordinates"][0] for f in data["features"]]
        assert all(r[0] == r[-1] and len(r) >= 4 for r in rings)
        # Europe is there: some land ring passes near Rotterdam
        assert any(abs(x - 4.1) < 1 and abs(y - 52) < 1 for r in rings for x, y in r)


def _track(temps: list[float], *, device: str = "LOG-1", **extra: list[float]) -> pd.DataFrame:
    n = len(temps)
    return pd.DataFrame(
        {
            "device_id": device,
            "ts": [T0 + timedelta(minutes=10 * i) for i in range(n)],
            "temp_c": temps,
            "lat": [52.0 - 0.5 * i for i in range(n)],
            "lon": [4.0 + 0.4 * i for i in range(n)],
            **extra,
        }
    )


def test_out_of_range_is_judged_by_the_rules_engine_range_on_the_extremes() -> None:
    track = _track(
        [5.0, 7.6, 1.0, 5.0, -0.5],
        temp_min_c=[5.0, 7.1, 1.0, 4.0, -0.5],
        temp_max_c=[5.0, 8.4, 1.0, 6.0, -0.5],  # a bucket whose mean is in range, its peak not
    )
    assert out_of_range(track, RANGE_2_8).tolist() == [False, True, True, False, True]
    assert out_of_range(track, None).tolist() == [False] * 5


def test_the_track_is_green_in_range_red_out_of_range() -> None:
    track = _track([5.0, 5.0, 9.0, 9.5, 5.0, 5.0])
    fig = route_map(track, limits=RANGE_2_8)
    lines = {t.name: t for t in fig.data if t.mode == "lines"}
    assert lines["In range"].line.color == CONDITION_COLORS["ok"]
    assert lines["Out of range"].line.color == CONDITION_COLORS["alarm"]
    lat = track["lat"].tolist()
    # each stretch reaches the next point, so the line has no hole where the colour changes
    assert list(lines["In range"].lat) == [lat[0], lat[1], lat[2], None, lat[4], lat[5], None]
    assert list(lines["Out of range"].lat) == [lat[2], lat[3], lat[4], None]


def _steps(lat: list[float | None]) -> list[tuple[float, float]]:
    """The consecutive pairs of points a None-separated line draws."""
    steps: list[tuple[float, float]] = []
    run: list[float] = []
    for v in [*lat, None]:
        if v is None:
            steps += list(itertools.pairwise(run))
            run = []
        else:
            run.append(v)
    return steps


@given(st.lists(st.booleans(), min_size=1, max_size=40))
def test_the_two_colours_draw_every_step_of_the_track_once(keep: list[bool]) -> None:
    mask = np.array(keep)
    idx = np.arange(len(keep), dtype=float)
    green, red = _steps(_segments(idx, idx, mask)[0]), _steps(_segments(idx, idx, ~mask)[0])
    assert sorted(green + red) == [(float(i), float(i + 1)) for i in range(len(keep) - 1)]
    # each step takes the colour of the point it starts from
    assert all(mask[int(a)] for a, _ in green) and not any(mask[int(a)] for a, _ in red)


def test_the_route_marks_the_excursion_start_the_ends_and_the_latest_position() -> None:
    track = pd.concat(
        [_track([5.0, 5.0, 9.0, 9.5, 5.0]), _track([5.0, 5.0, 5.0, 9.2, 5.0], device="LOG-2")]
    )
    excursions = pd.DataFrame(
        [
            {
                "id": 7,
                "device_id": "LOG-1",
                "direction": "high",
                "start_ts": T0 + timedelta(minutes=15),
            },
            {"id": 8, "device_id": "LOG-9", "direction": "low", "start_ts": T0},  # no track
        ]
    )
    fig = route_map(
        track,
        limits=RANGE_2_8,
        excursions=excursions,
        origin=Place("Rotterdam DC", 51.9, 4.45),
        destination=Place("Basel hub", 47.56, 7.59),
        time_label=lambda ts: ts.strftime("%H:%M"),
    )
    by_name = {t.name: t for t in fig.data}
    start = by_name["Excursion start"]
    # the first point of LOG-1 at or after the start: its third, at 03:20
    assert (list(start.lat), list(start.lon)) == ([51.0], [4.8])
    assert list(start.hovertext) == ["Excursion (too warm) began 03:15"]
    assert fig.data[-1].name == "Excursion start"  # on top of everything
    assert list(by_name["Origin"].hovertext) == ["Origin: Rotterdam DC"]
    assert list(by_name["Destination"].hovertext) == ["Destination: Basel hub"]
    assert by_name["Origin"].marker.color != by_name["Destination"].marker.color
    assert "03:40" in by_name["Latest position"].hovertext[0]
    # the two loggers' tracks are drawn apart (a None between them), not joined
    assert list(by_name["Out of range"].lat).count(None) == 2


def test_excursion_starts_fall_back_to_the_last_point_before_them() -> None:
    track = _track([5.0, 5.0])
    late = pd.DataFrame(
        [{"id": 1, "device_id": "LOG-1", "direction": "low", "start_ts": T0 + timedelta(hours=5)}]
    )
    starts = excursion_starts(track, late)
    assert starts[["lat", "lon"]].values.tolist() == [[51.5, 4.4]]


def test_a_route_without_positions_says_so() -> None:
    fig = route_map(pd.DataFrame(), limits=RANGE_2_8)
    assert fig.data and fig.layout.map.style["sources"]
    assert route_note(0, 0, 2.0, 8.0) == "No logger of this shipment has reported a position yet."
    assert route_note(300, 4000, 2.0, 8.0) == (
        "4000 positions, drawn as 300 points, red where the temperature was outside 2–8 °C."
    )
    assert "No temperature range" in route_note(5, 5, None, None)
