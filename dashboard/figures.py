"""Plotly charts built from data frames: pure functions, no I/O, no clock. (The maps are in
:mod:`dashboard.maps`.)

Shapes carry a ``name`` so that tests (and readers of the figure JSON) can tell them apart:
``range`` is the band of the range the rules engine judges by (the caller passes it; see
:mod:`alerts.in_force`), ``excursion-<id>`` one excursion's shading, ``freeze-limit`` the freeze
line.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from coldchain.severity import STRONGEST_FIRST

CONDITION_ORDER = ("alarm", "warning", "offline", "ok")
CONDITION_COLORS = {
    "alarm": "#c62828",
    "warning": "#e08a00",
    "offline": "#6b7280",
    "ok": "#2e7d32",
}
CONDITION_LABELS = {"alarm": "Alarm", "warning": "Warning", "offline": "Offline", "ok": "OK"}

_DEVICE_COLORS = ("#1f5fae", "#7b3fa0", "#00838f", "#a0522d", "#455a64")
_FONT = "Inter, Segoe UI, Roboto, Helvetica, Arial, sans-serif"


def _base_layout(fig: go.Figure, *, height: int, uirevision: str | None) -> go.Figure:
    fig.update_layout(
        template="plotly_white",
        height=height,
        margin={"l": 56, "r": 16, "t": 16, "b": 40},
        font={"family": _FONT, "size": 12, "color": "#1f2937"},
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.0, "x": 0},
        hovermode="x unified",
        uirevision=uirevision,  # keep the user's zoom across live refreshes
    )
    return fig


def _empty(fig: go.Figure, message: str) -> go.Figure:
    fig.add_annotation(
        text=message,
        xref="paper",
        yref="paper",
        x=0.5,
        y=0.5,
        showarrow=False,
        font={"size": 14, "color": "#6b7280"},
    )
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return fig


def _none_for_nan(values: pd.Series) -> list[Any]:
    return [None if pd.isna(v) else v for v in values.tolist()]


def with_gaps(
    df: pd.DataFrame, *, max_gap_s: float, ts: str = "ts", values: Sequence[str] = ("temp_c",)
) -> pd.DataFrame:
    """``df`` sorted by time, with a row of missing values inside every gap.

    Two consecutive points further apart than ``max_gap_s`` enclose a data gap: a row at the
    gap's midpoint with the ``values`` columns empty makes Plotly break the line there instead
    of drawing a straight line through unknown time.
    """
    if df.empty:
        return df.copy()
    data = df.sort_values(ts, kind="stable").reset_index(drop=True)
    data[ts] = pd.to_datetime(data[ts], utc=True)
    step = data[ts].diff().dt.total_seconds()
    after = step.index[step > max_gap_s]  # the rows that follow a gap
    if len(after) == 0:
        return data
    before_ts = data[ts].loc[after - 1].reset_index(drop=True)
    after_ts = data[ts].loc[after].reset_index(drop=True)
    fillers = data.loc[after].copy()
    fillers[ts] = (before_ts + (after_ts - before_ts) / 2).array
    for col in values:
        if col in fillers.columns:
            fillers[col] = None
    fillers.index = after - 0.5  # sorts between the two points around the gap
    joined: pd.DataFrame = pd.concat([data, fillers]).sort_index(kind="stable")
    return joined.reset_index(drop=True)


def _max_gap_for(device: str, max_gap_s: float | Mapping[str, float]) -> float:
    if isinstance(max_gap_s, Mapping):
        return float(max_gap_s.get(device, math.inf))
    return float(max_gap_s)


# Shapes and their labels are collected as plain dicts and set in one layout update:
# fig.add_hrect/add_hline/add_vrect validate the whole layout again on every call, which made
# the shapes the slowest part of a shipment's chart (~25 ms for six; bench/web_pages.py).


def _limit_shapes(
    *,
    low: float | None,
    high: float | None,
    unit: str,
    name: str = "range",
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The labelled range as a band (both bounds) or a line (one bound): shapes, annotations."""
    colour = "#2e7d32"
    shapes: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    if low is not None and high is not None:
        shapes.append(
            {
                "type": "rect",
                "xref": "x domain",
                "x0": 0,
                "x1": 1,
                "yref": "y",
                "y0": low,
                "y1": high,
                "fillcolor": colour,
                "opacity": 0.09,
                "line": {"width": 0},
                "layer": "below",
                "name": name,
            }
        )
        annotations.append(
            {
                "text": f"range {low:g}–{high:g} {unit}",
                "xref": "paper",
                "yref": "y",
                "x": 1,
                "y": high,
                "xanchor": "right",
                "yanchor": "bottom",
                "showarrow": False,
                "font": {"size": 11, "color": colour},
            }
        )
    for bound, label in ((low, "min"), (high, "max")):
        if bound is not None:
            shapes.append(
                _hline(bound, {"color": colour, "width": 1, "dash": "dot"}, f"{name}-{label}")
                | {"layer": "below"}
            )
    return shapes, annotations


def _hline(y: float, line: dict[str, Any], name: str) -> dict[str, Any]:
    """A horizontal line across the plot at ``y`` (what ``fig.add_hline`` draws)."""
    return {
        "type": "line",
        "xref": "x domain",
        "x0": 0,
        "x1": 1,
        "yref": "y",
        "y0": y,
        "y1": y,
        "line": line,
        "name": name,
    }


def temperature_figure(
    readings: pd.DataFrame,
    *,
    temp_min_c: float | None,
    temp_max_c: float | None,
    freeze_limit_c: float | None = None,
    excursions: pd.DataFrame | None = None,
    max_gap_s: float | Mapping[str, float] = math.inf,
    uirevision: str | None = None,
) -> go.Figure:
    """Temperature over time, one line per logger, with the product range as a band.

    ``readings`` has ``device_id, ts, temp_c`` and, for down-sampled data, ``temp_min_c`` and
    ``temp_max_c`` (drawn as an envelope when they differ from ``temp_c``). ``excursions`` has
    ``id, direction, start_ts`` and ``end_ts`` (or ``last_out_ts`` while open): each becomes a
    shaded vertical band. Points further apart than ``max_gap_s`` (per device when a mapping)
    are drawn as a gap.
    """
    fig = _base_layout(go.Figure(), height=380, uirevision=uirevision)
    fig.update_yaxes(title_text="°C", zeroline=False)
    if readings.empty:
        _empty(fig, "No readings yet")
        readings = pd.DataFrame(columns=["device_id", "ts", "temp_c"])
    values = ("temp_c", "temp_min_c", "temp_max_c")
    for i, (device, group) in enumerate(readings.groupby("device_id", sort=True)):
        colour = _DEVICE_COLORS[i % len(_DEVICE_COLORS)]
        data = with_gaps(group, max_gap_s=_max_gap_for(str(device), max_gap_s), values=values)
        envelope = {"temp_min_c", "temp_max_c"} <= set(data.columns) and bool(
            (data["temp_max_c"] - data["temp_min_c"]).fillna(0).gt(0).any()
        )
        if envelope:
            fig.add_trace(
                go.Scatter(
                    x=data["ts"],
                    y=_none_for_nan(data["temp_max_c"]),
                    mode="lines",
                    line={"width": 0},
                    hoverinfo="skip",
                    showlegend=False,
                    legendgroup=str(device),
                    name=f"{device} max",
                )
            )
            fig.add_trace(
                go.Scatter(
                    x=data["ts"],
                    y=_none_for_nan(data["temp_min_c"]),
                    mode="lines",
                    line={"width": 0},
                    fill="tonexty",
                    fillcolor="rgba(31, 95, 174, 0.15)",
                    hoverinfo="skip",
                    showlegend=False,
                    legendgroup=str(device),
                    name=f"{device} min",
                )
            )
        fig.add_trace(
            go.Scatter(
                x=data["ts"],
                y=_none_for_nan(data["temp_c"]),
                mode="lines",
                line={"color": colour, "width": 2},
                name=str(device),
                legendgroup=str(device),
                connectgaps=False,
                hovertemplate="%{y:.1f} °C<extra>" + str(device) + "</extra>",
            )
        )
    shapes, annotations = _limit_shapes(low=temp_min_c, high=temp_max_c, unit="°C")
    if freeze_limit_c is not None:
        shapes.append(
            _hline(freeze_limit_c, {"color": "#1565c0", "width": 1, "dash": "dash"}, "freeze-limit")
        )
        annotations.append(
            {
                "text": "freeze limit",
                "xref": "x domain",
                "yref": "y",
                "x": 1,
                "y": freeze_limit_c,
                "xanchor": "right",
                "yanchor": "top",
                "showarrow": False,
            }
        )
    if excursions is not None:
        shapes += [_excursion_shape(exc) for exc in excursions.itertuples(index=False)]
    fig.update_layout(shapes=shapes, annotations=[*fig.layout.annotations, *annotations])
    return fig


def _excursion_shape(exc: Any) -> dict[str, Any]:
    """An excursion as a shaded band over its duration (what ``fig.add_vrect`` draws)."""
    end = getattr(exc, "end_ts", None)
    if end is None or pd.isna(end):
        end = getattr(exc, "last_out_ts", None)
    if end is None or pd.isna(end):
        end = exc.start_ts
    colour = "#c62828" if getattr(exc, "direction", "high") == "high" else "#1565c0"
    return {
        "type": "rect",
        "xref": "x",
        "x0": exc.start_ts,
        "x1": end,
        "yref": "y domain",
        "y0": 0,
        "y1": 1,
        "fillcolor": colour,
        "opacity": 0.16,
        "line": {"width": 0},
        "layer": "below",
        "name": f"excursion-{exc.id}",
    }


def humidity_figure(
    readings: pd.DataFrame,
    *,
    rh_min: float | None = None,
    rh_max: float | None = None,
    max_gap_s: float | Mapping[str, float] = math.inf,
    uirevision: str | None = None,
) -> go.Figure:
    """Relative humidity over time, one line per logger, gaps as gaps, optional range band."""
    fig = _base_layout(go.Figure(), height=260, uirevision=uirevision)
    fig.update_yaxes(title_text="%RH", zeroline=False)
    has_rh = not readings.empty and "rh" in readings.columns and readings["rh"].notna().any()
    if not has_rh:
        return _empty(fig, "No humidity readings")
    for i, (device, group) in enumerate(readings.groupby("device_id", sort=True)):
        data = with_gaps(group, max_gap_s=_max_gap_for(str(device), max_gap_s), values=("rh",))
        fig.add_trace(
            go.Scatter(
                x=data["ts"],
                y=_none_for_nan(data["rh"]),
                mode="lines",
                line={"color": _DEVICE_COLORS[i % len(_DEVICE_COLORS)], "width": 1.5},
                name=str(device),
                connectgaps=False,
                hovertemplate="%{y:.0f} %RH<extra>" + str(device) + "</extra>",
            )
        )
    shapes, annotations = _limit_shapes(low=rh_min, high=rh_max, unit="%RH", name="rh-range")
    fig.update_layout(shapes=shapes, annotations=[*fig.layout.annotations, *annotations])
    return fig


def stability_gauges(
    *,
    mkt_c: float | None,
    mkt_limit_c: float | None,
    mkt_above: bool | None = None,
    mkt_title: str = "MKT",
    temp_min_c: float | None = None,
    temp_max_c: float | None = None,
    share_used: float | None,
    warning_share: float = 0.8,
) -> go.Figure:
    """Two gauges side by side: the MKT against the limit it is judged by (``mkt_above``, the
    verdict: :func:`coldchain.thermal.mkt_judgement.judge_mkt`; None: above ``mkt_limit_c``),
    titled ``mkt_title`` (which says the window the MKT covers), and the share of the stability
    budget used (100 % is the whole budget). A value that is None leaves its gauge out with a
    note; the values are computed elsewhere (:func:`reports.assemble.logger_evidence`)."""
    fig = go.Figure()
    fig.update_layout(
        height=210,
        margin={"l": 36, "r": 40, "t": 36, "b": 8},
        font={"family": _FONT, "size": 12, "color": "#1f2937"},
        paper_bgcolor="rgba(0,0,0,0)",
    )
    if mkt_c is not None:
        ceiling = next((v for v in (mkt_limit_c, temp_max_c) if v is not None), mkt_c)
        low = min(temp_min_c if temp_min_c is not None else 0.0, mkt_c) - 2.0
        high = max(ceiling, mkt_c) + 4.0
        above = (
            (mkt_limit_c is not None and mkt_c > mkt_limit_c) if mkt_above is None else mkt_above
        )
        fig.add_trace(
            go.Indicator(
                mode="gauge+number",
                value=mkt_c,
                number={"suffix": " °C", "valueformat": ".2f"},
                title={"text": mkt_title, "font": {"size": 13}},
                domain={"x": [0.0, 0.46], "y": [0.0, 1.0]},
                gauge={
                    "axis": {"range": [low, high]},
                    "bar": {"color": CONDITION_COLORS["alarm" if above else "ok"]},
                    "threshold": {
                        "line": {"color": CONDITION_COLORS["alarm"], "width": 3},
                        "value": mkt_limit_c if mkt_limit_c is not None else high,
                        "thickness": 0.85,
                    },
                },
                name="mkt",
            )
        )
    if share_used is not None:
        percent = 100.0 * share_used
        status = "alarm" if share_used >= 1 else "warning" if share_used >= warning_share else "ok"
        fig.add_trace(
            go.Indicator(
                mode="gauge+number",
                value=percent,
                number={"suffix": " %", "valueformat": ".1f"},
                title={"text": "Stability budget used", "font": {"size": 13}},
                domain={"x": [0.54, 1.0], "y": [0.0, 1.0]},
                gauge={
                    "axis": {"range": [0, max(100.0, percent)]},
                    "bar": {"color": CONDITION_COLORS[status]},
                    "steps": [
                        {"range": [100 * warning_share, 100], "color": "rgba(224, 138, 0, 0.18)"}
                    ],
                    "threshold": {
                        "line": {"color": CONDITION_COLORS["alarm"], "width": 3},
                        "value": 100,
                        "thickness": 0.85,
                    },
                },
                name="budget",
            )
        )
    for x, missing, note in ((0.23, mkt_c is None, "No MKT yet"),
                             (0.77, share_used is None, "No stability budget")):  # fmt: skip
        if missing:
            fig.add_annotation(
                text=note, x=x, y=0.5, xref="paper", yref="paper", showarrow=False,
                font={"size": 13, "color": "#6b7280"},
            )  # fmt: skip
    return fig


def severity_bars(alerts: pd.DataFrame) -> go.Figure:
    """Unresolved alerts per severity, split by age (under 1 h, 1–24 h, over 24 h).

    ``alerts`` has ``severity`` and ``age_s``.
    """
    order = list(STRONGEST_FIRST)
    buckets = [("< 1 h", 0, 3600), ("1–24 h", 3600, 86400), ("> 24 h", 86400, math.inf)]
    # Age in shades of one blue (older: darker), not in yellow/orange/red: on the alerts page
    # those are the severities' colours (assets/style.css), and age is not severity.
    colours = ["#93c5fd", "#3b82f6", "#1e3a8a"]
    fig = _base_layout(go.Figure(), height=220, uirevision="alert-ages")
    fig.update_layout(barmode="stack", hovermode="closest")
    for (label, lo, hi), colour in zip(buckets, colours, strict=True):
        if alerts.empty:
            counts = [0] * len(order)
        else:
            in_bucket = alerts[(alerts["age_s"] >= lo) & (alerts["age_s"] < hi)]
            counts = [int((in_bucket["severity"] == s).sum()) for s in order]
        fig.add_trace(go.Bar(x=order, y=counts, name=label, marker_color=colour))
    fig.update_yaxes(title_text="alerts", rangemode="tozero", dtick=1)
    return fig
