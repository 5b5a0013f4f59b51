"""Maps (Plotly ``map`` traces, drawn by MapLibre): the fleet map and a shipment's route map.
Pure functions of data frames, no I/O, no clock.

Offline first. The basemap is land, coastlines and country borders from Natural Earth, served
by the app itself (``/assets/basemap/``: dashboard/assets/basemap/PROVENANCE.md), as a style
with no external source at all (:func:`offline_style`): no tiles, no fonts (``glyphs``), no
sprites. So a browser with no internet draws a real map and its console stays clean; Plotly's
built-in styles (even ``white-bg``) name a font server, and raster tiles that cannot load make
MapLibre throw ``Map error`` on every refresh. Raster tiles (``web.map_tiles``, e.g. OpenStreetMap) are drawn
above the basemap only when configured, for installations that can reach them. Nothing on the
maps is drawn as text (text would need glyphs): names go in the hover and the legend.

Markers are drawn in :data:`DRAW_ORDER`, the most urgent last, so an alarm is never hidden
under an OK shipment next to it, and larger (:data:`MARKER_SIZES`). The colours are the
conditions' own (:data:`dashboard.figures.CONDITION_COLORS`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from coldchain.thermal.limits import Limits, temperature_limits
from dashboard.figures import CONDITION_COLORS, CONDITION_LABELS
from dashboard.pages import fmt_ts

#: Where the app serves the basemap's GeoJSON (Dash's assets folder), from its own origin:
#: Natural Earth 1:50m for the route maps (a lane's scale), 1:110m for the fleet's overview
#: (a continent's scale, where 1:50m's detail is not seen: a tenth of the data to load and draw
#: under 5,000 markers).
BASEMAP_URL = "/assets/basemap"
OVERVIEW_BASEMAP_URL = "/assets/basemap/110m"
#: The basemap's layers in the style, bottom to top (the sea is the background).
BASEMAP_LAYERS = ("sea", "land", "coast", "borders")

#: Raster tiles one may configure (``COLDCHAIN_WEB__MAP_TILES``) when browsers can reach them.
OSM_TILES = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
OSM_ATTRIBUTION = "© OpenStreetMap contributors"

_SEA = "#dce8f1"
_LAND = "#f7f6f2"
_COAST = "#8fa3b5"
_BORDER = "#b9c2cc"
_FONT = "Inter, Segoe UI, Roboto, Helvetica, Arial, sans-serif"

#: Conditions in the order their markers are drawn: the most urgent last, on top.
DRAW_ORDER = ("ok", "offline", "warning", "alarm")
#: Marker diameter (px) per condition: the more urgent, the larger.
MARKER_SIZES = {"ok": 10, "offline": 11, "warning": 14, "alarm": 19}

_IN_RANGE = CONDITION_COLORS["ok"]
_OUT_OF_RANGE = CONDITION_COLORS["alarm"]
_ORIGIN_COLOR = "#1f2937"
_DESTINATION_COLOR = "#7b3fa0"
_LATEST_COLOR = "#1f5fae"

_MAP_TILE_PX = 512  # MapLibre's world is 512 px wide at zoom 0


def offline_style(*, base_url: str = BASEMAP_URL) -> dict[str, Any]:
    """The basemap as a MapLibre style whose only sources are the app's own GeoJSON: the sea
    (background), the land, its coastline and the borders between countries. No ``glyphs`` and
    no ``sprite``: nothing is drawn as text or icon, so no font or icon server is asked.

    The basemap is the style (not ``layout.map.layers``) so that the style always has sources:
    Plotly drops an empty ``sources`` from a style on a live update, and MapLibre then refuses
    the style (``missing required property "sources"``, a ``Map error``)."""
    land = {"type": "geojson", "data": f"{base_url}/land.geojson"}
    borders = {"type": "geojson", "data": f"{base_url}/borders.geojson"}
    return {
        "version": 8,
        "name": "coldchain-offline",
        "sources": {"land": land, "borders": borders},
        "layers": [
            {"id": "sea", "type": "background", "paint": {"background-color": _SEA}},
            {"id": "land", "type": "fill", "source": "land", "paint": {"fill-color": _LAND}},
            {
                "id": "coast",
                "type": "line",
                "source": "land",
                "paint": {"line-color": _COAST, "line-width": 0.8},
            },
            {
                "id": "borders",
                "type": "line",
                "source": "borders",
                "paint": {"line-color": _BORDER, "line-width": 0.7},
            },
        ],
    }


def tile_layers(tiles: str | None) -> list[dict[str, Any]]:
    """The raster ``tiles`` as a layer over the basemap and under the traces, when configured
    (where they load, they cover the basemap; where they do not, the basemap shows)."""
    if not tiles:
        return []
    return [
        {
            "name": "tiles",
            "sourcetype": "raster",
            "sourceattribution": OSM_ATTRIBUTION if "openstreetmap" in tiles else "",
            "source": [tiles],
            "below": "traces",
        }
    ]


def _mercator_y(lat: float) -> float:
    lat = max(-85.0, min(85.0, lat))
    return math.log(math.tan(math.pi / 4 + math.radians(lat) / 2))


def map_view(
    lats: Sequence[float], lons: Sequence[float], *, width_px: int = 800, height_px: int = 360
) -> tuple[dict[str, float], float]:
    """Center and zoom that fit the points into a map of about ``width_px`` × ``height_px``.

    Web Mercator: at zoom z the world is 512·2^z px wide, longitude is linear, latitude goes
    through the Mercator y; half a zoom level of margin keeps markers off the edges.
    """
    if not lats:
        return {"lat": 48.0, "lon": 10.0}, 2.5
    y_lo, y_hi = _mercator_y(min(lats)), _mercator_y(max(lats))
    y_mid = (y_lo + y_hi) / 2
    center = {
        "lat": math.degrees(2 * math.atan(math.exp(y_mid)) - math.pi / 2),
        "lon": (min(lons) + max(lons)) / 2,
    }
    lon_span = max(max(lons) - min(lons), 1e-6)
    y_span = max(y_hi - y_lo, 1e-6)
    zoom_x = math.log2(width_px * 360 / (_MAP_TILE_PX * lon_span))
    zoom_y = math.log2(height_px * 2 * math.pi / (_MAP_TILE_PX * y_span))
    return center, max(0.5, min(9.0, min(zoom_x, zoom_y) - 0.6))


def _map_layout(
    fig: go.Figure,
    *,
    lats: Sequence[float],
    lons: Sequence[float],
    tiles: str | None,
    height: int,
    uirevision: str,
    basemap: str = BASEMAP_URL,
) -> go.Figure:
    center, zoom = map_view(lats, lons, height_px=height)
    fig.update_layout(
        map={
            "style": offline_style(base_url=basemap),
            "layers": tile_layers(tiles),
            "center": center,
            "zoom": zoom,
        },
        margin={"l": 0, "r": 0, "t": 0, "b": 0},
        height=height,
        font={"family": _FONT, "size": 12},
        legend={
            "orientation": "h",
            "x": 0.01,
            "y": 0.99,
            "bgcolor": "rgba(255,255,255,0.85)",
            "traceorder": "reversed",  # the most urgent (drawn last) listed first
        },
        uirevision=uirevision,
    )
    return fig


def placeholder(*, height: int = 360) -> go.Figure:
    """What a map's Graph shows until its first data arrives: a blank frame that says so, and
    no map yet. Plotly creates a map once and draws its traces when the map has loaded (the
    basemap's GeoJSON included); a figure that arrives meanwhile is drawn, then overwritten by
    the first figure's traces (plotly.js ``createMap``). An empty first map would so hide the
    markers of the first real figure until the data changes: the first map has the data."""
    fig = go.Figure()
    fig.add_annotation(
        text="Loading the map…",
        xref="paper",
        yref="paper",
        x=0.5,
        y=0.5,
        showarrow=False,
        font={"size": 14, "color": "#6b7280"},
    )
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    fig.update_layout(
        height=height,
        margin={"l": 0, "r": 0, "t": 0, "b": 0},
        plot_bgcolor=_SEA,
        paper_bgcolor=_SEA,
    )
    return fig


def _temp_text(value: Any) -> str:
    return "no reading" if value is None or pd.isna(value) else f"{float(value):.1f} °C"


def fleet_map(shipments: pd.DataFrame, *, tiles: str | None = None) -> go.Figure:
    """Shipments on a map, one trace per condition in :data:`DRAW_ORDER` (alarm on top and
    largest); ``shipments`` has ``reference, lane, condition, current_temp_c, lat, lon``. Rows
    without a position are left out. The hover names the shipment, its condition, its
    temperature and its lane."""
    located = shipments.dropna(subset=["lat", "lon"]) if not shipments.empty else shipments
    fig = go.Figure()
    for condition in DRAW_ORDER:
        sub = located[located["condition"] == condition] if not located.empty else located
        if sub.empty:
            continue
        label = CONDITION_LABELS[condition]
        # Arrays and one hover text per marker, not per-point tuples: a fleet of thousands is
        # built and serialised in milliseconds (plotly validates lists of tuples one by one).
        # The condition is the trace's, in its template: not repeated in every marker's text.
        hover = [
            f"{_temp_text(t)}<br>{lane}"
            for lane, t in zip(sub["lane"], sub["current_temp_c"], strict=True)
        ]
        fig.add_trace(
            go.Scattermap(
                lat=sub["lat"].to_numpy(dtype=float).round(5),
                lon=sub["lon"].to_numpy(dtype=float).round(5),
                mode="markers",
                marker={
                    "size": MARKER_SIZES[condition],
                    "color": CONDITION_COLORS[condition],
                    "opacity": 0.95 if condition == "alarm" else 0.85,
                },
                name=label,
                text=sub["reference"].to_numpy(dtype=object),
                hovertext=np.array(hover, dtype=object),
                hovertemplate=f"<b>%{{text}}</b><br>{label} · %{{hovertext}}<extra></extra>",
            )
        )
    if not fig.data:  # an empty trace keeps the map (and its frame) on screen
        fig.add_trace(go.Scattermap(lat=[], lon=[], mode="markers", showlegend=False))
    lats = [] if located.empty else [float(v) for v in located["lat"]]
    lons = [] if located.empty else [float(v) for v in located["lon"]]
    return _map_layout(
        fig,
        lats=lats,
        lons=lons,
        tiles=tiles,
        height=360,
        uirevision="fleet-map",
        basemap=OVERVIEW_BASEMAP_URL,
    )


@dataclass(frozen=True, slots=True)
class Place:
    """A named position on a map (a shipment's origin or destination site)."""

    name: str
    lat: float
    lon: float


def out_of_range(track: pd.DataFrame, limits: Limits | None) -> np.ndarray[Any, np.dtype[np.bool_]]:
    """Per track point, whether it was outside the range: above ``high_c`` at its highest
    reading, or below ``low_c`` (or freezing) at its lowest; a down-sampled point carries both
    (``temp_min_c``, ``temp_max_c``). The judgement is the rules engine's own
    (:meth:`coldchain.thermal.excursions.TempLimits.out_masks`)."""
    if limits is None or track.empty:
        return np.zeros(len(track), dtype=bool)
    # The gap length plays no part in judging one temperature; TempLimits only requires one.
    judge = temperature_limits(limits, max_gap=timedelta(days=1))
    temp = track["temp_c"].to_numpy(dtype=float)
    highest = track.get("temp_max_c", track["temp_c"]).to_numpy(dtype=float)
    lowest = track.get("temp_min_c", track["temp_c"]).to_numpy(dtype=float)
    high, _ = judge.out_masks(np.where(np.isnan(highest), temp, highest))
    _, low = judge.out_masks(np.where(np.isnan(lowest), temp, lowest))
    return high | low


def _segments(
    lats: np.ndarray[Any, Any], lons: np.ndarray[Any, Any], keep: np.ndarray[Any, Any]
) -> tuple[list[float | None], list[float | None]]:
    """The stretches of a path between points where ``keep`` holds, each with the next point
    so that consecutive stretches of both kinds meet; stretches are separated by None."""
    out_lat: list[float | None] = []
    out_lon: list[float | None] = []
    n = len(keep)
    i = 0
    while i < n:
        if not keep[i]:
            i += 1
            continue
        j = i
        while j + 1 < n and keep[j + 1]:
            j += 1
        end = min(j + 1, n - 1)  # reach the next point: no hole in the line
        if end > i:
            out_lat += [float(v) for v in lats[i : end + 1]] + [None]
            out_lon += [float(v) for v in lons[i : end + 1]] + [None]
        i = j + 1
    return out_lat, out_lon


def excursion_starts(track: pd.DataFrame, excursions: pd.DataFrame) -> pd.DataFrame:
    """Where each excursion began: the first track point of its logger at or after its
    ``start_ts`` (the nearest point before it when the track ends earlier). Columns ``id,
    direction, start_ts, lat, lon``; excursions with no track point of their logger are left
    out."""
    columns = ["id", "direction", "start_ts", "lat", "lon"]
    if track.empty or excursions.empty:
        return pd.DataFrame(columns=columns)
    rows = []
    for exc in excursions.itertuples(index=False):
        points = track[track["device_id"] == exc.device_id] if "device_id" in track else track
        if points.empty:
            continue
        after = points[points["ts"] >= exc.start_ts]
        point = after.iloc[0] if not after.empty else points.iloc[-1]
        rows.append([exc.id, exc.direction, exc.start_ts, point["lat"], point["lon"]])
    return pd.DataFrame(rows, columns=columns)


def route_map(
    track: pd.DataFrame,
    *,
    limits: Limits | None,
    excursions: pd.DataFrame | None = None,
    origin: Place | None = None,
    destination: Place | None = None,
    tiles: str | None = None,
    time_label: Callable[[datetime], str] = fmt_ts,
    uirevision: str = "route-map",
) -> go.Figure:
    """A shipment's route: its loggers' track coloured by temperature (in range green, out of
    range red, by ``limits``), where each excursion began, the origin and destination sites,
    and the latest position.

    ``track`` has ``device_id, ts, temp_c, lat, lon`` (and ``temp_min_c, temp_max_c`` for
    down-sampled points), sorted by logger and time; ``excursions`` has ``id, device_id,
    direction, start_ts``.
    """
    fig = go.Figure()
    track = track.dropna(subset=["lat", "lon"]) if not track.empty else track
    out = out_of_range(track, limits)
    for keep, name, colour in ((~out, "In range", _IN_RANGE), (out, "Out of range", _OUT_OF_RANGE)):
        lats: list[float | None] = []
        lons: list[float | None] = []
        if not track.empty:
            for _device, idx in track.groupby("device_id", sort=True).indices.items():
                part = track.iloc[idx]
                a, b = _segments(
                    part["lat"].to_numpy(dtype=float),
                    part["lon"].to_numpy(dtype=float),
                    keep[idx],
                )
                lats += a
                lons += b
        if lats:
            fig.add_trace(
                go.Scattermap(
                    lat=lats,
                    lon=lons,
                    mode="lines",
                    line={"width": 4, "color": colour},
                    name=name,
                    hoverinfo="skip",
                    connectgaps=False,
                )
            )
    if not track.empty:  # the points themselves, for the hover: time and temperature
        fig.add_trace(
            go.Scattermap(
                lat=track["lat"].to_numpy(dtype=float).round(5),
                lon=track["lon"].to_numpy(dtype=float).round(5),
                mode="markers",
                marker={"size": 5, "color": np.where(out, _OUT_OF_RANGE, _IN_RANGE)},
                hovertext=np.array(
                    [
                        f"{time_label(ts)}<br>{_temp_text(t)} · {device}"
                        for ts, t, device in zip(
                            track["ts"], track["temp_c"], track["device_id"], strict=True
                        )
                    ],
                    dtype=object,
                ),
                hovertemplate="%{hovertext}<extra></extra>",
                name="Readings",
                showlegend=False,
            )
        )
    # name, hover, lat, lon, colour, size; the sites larger than the latest position, so that a
    # shipment at its origin or destination leaves a ring of the site's colour around it
    places: list[tuple[str, str, float, float, str, int]] = []
    for label, place, colour in (
        ("Origin", origin, _ORIGIN_COLOR),
        ("Destination", destination, _DESTINATION_COLOR),
    ):
        if place is not None:
            places.append((label, f"{label}: {place.name}", place.lat, place.lon, colour, 17))
    if not track.empty:
        last = track.sort_values("ts", kind="stable").iloc[-1]
        places.append(
            (
                "Latest position",
                f"Latest position, {time_label(last['ts'])}<br>{_temp_text(last['temp_c'])}",
                float(last["lat"]),
                float(last["lon"]),
                _LATEST_COLOR,
                11,
            )
        )
    for label, hover, lat, lon, colour, size in places:
        fig.add_trace(
            go.Scattermap(
                lat=[lat],
                lon=[lon],
                mode="markers",
                marker={"size": size, "color": colour},
                name=label,
                hovertext=[hover],
                hovertemplate="%{hovertext}<extra></extra>",
            )
        )
    starts = excursion_starts(track, excursions if excursions is not None else pd.DataFrame())
    if not starts.empty:  # last: on top of the track and the other markers
        fig.add_trace(
            go.Scattermap(
                lat=starts["lat"].to_numpy(dtype=float),
                lon=starts["lon"].to_numpy(dtype=float),
                mode="markers",
                marker={"size": 18, "color": _OUT_OF_RANGE},
                name="Excursion start",
                hovertext=np.array(
                    [
                        f"Excursion ({'too warm' if d == 'high' else 'too cold'}) "
                        f"began {time_label(ts)}"
                        for d, ts in zip(starts["direction"], starts["start_ts"], strict=True)
                    ],
                    dtype=object,
                ),
                hovertemplate="%{hovertext}<extra></extra>",
            )
        )
    if not fig.data:
        fig.add_trace(go.Scattermap(lat=[], lon=[], mode="markers", showlegend=False))
    all_lats = [p[2] for p in places] + ([] if track.empty else track["lat"].astype(float).tolist())
    all_lons = [p[3] for p in places] + ([] if track.empty else track["lon"].astype(float).tolist())
    fig = _map_layout(
        fig, lats=all_lats, lons=all_lons, tiles=tiles, height=420, uirevision=uirevision
    )
    fig.update_layout(legend={"traceorder": "normal"})
    return fig
