"""The dashboard's figure functions: plain data frames in, Plotly figures out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import pytest
from dash import html

from dashboard import ids
from dashboard.figures import (
    CONDITION_COLORS,
    humidity_figure,
    severity_bars,
    stability_gauges,
    temperature_figure,
    with_gaps,
)
from dashboard.pages import fmt_age, fmt_range
from dashboard.pages.fleet import next_page, next_sort, page_bounds
from dashboard.pages.shipment import reference_from_path
from dashboard.pages.shipment_stability import stability_panel

T0 = datetime(2026, 11, 20, 3, 0, tzinfo=UTC)


def _series(minutes: list[int], temps: list[float], device: str = "LOG-1") -> pd.DataFrame:
    return pd.DataFrame(
        {
            "device_id": device,
            "ts": [T0 + timedelta(minutes=m) for m in minutes],
            "temp_c": temps,
            "rh": [50.0] * len(minutes),
        }
    )


def _shape_names(fig) -> list[str]:
    return [s.name for s in fig.layout.shapes]


def test_range_is_a_band_between_the_limits() -> None:
    fig = temperature_figure(_series([0, 1, 2], [4, 5, 6]), temp_min_c=2.0, temp_max_c=8.0)
    (band,) = [s for s in fig.layout.shapes if s.name == "range"]
    assert (band.y0, band.y1) == (2.0, 8.0)
    assert band.xref == "x domain" and (band.x0, band.x1) == (0, 1)  # across the whole chart
    assert band.layer == "below"


def test_one_bound_is_a_line_not_a_band() -> None:
    fig = temperature_figure(_series([0, 1], [20, 21]), temp_min_c=None, temp_max_c=25.0)
    assert "range" not in _shape_names(fig)
    assert "range-max" in _shape_names(fig)


def test_each_excursion_is_shaded() -> None:
    excursions = pd.DataFrame(
        [
            {
                "id": 7,
                "direction": "high",
                "start_ts": T0 + timedelta(minutes=10),
                "end_ts": T0 + timedelta(minutes=30),
                "last_out_ts": T0 + timedelta(minutes=29),
            },
            {  # still open: shaded up to the last reading out of range
                "id": 8,
                "direction": "low",
                "start_ts": T0 + timedelta(minutes=50),
                "end_ts": None,
                "last_out_ts": T0 + timedelta(minutes=55),
            },
        ]
    )
    fig = temperature_figure(
        _series(list(range(60)), [5.0] * 60),
        temp_min_c=2.0,
        temp_max_c=8.0,
        excursions=excursions,
    )
    shaded = {s.name: s for s in fig.layout.shapes if s.name.startswith("excursion-")}
    assert set(shaded) == {"excursion-7", "excursion-8"}
    assert pd.Timestamp(shaded["excursion-7"].x0) == T0 + timedelta(minutes=10)
    assert pd.Timestamp(shaded["excursion-7"].x1) == T0 + timedelta(minutes=30)
    assert pd.Timestamp(shaded["excursion-8"].x1) == T0 + timedelta(minutes=55)
    assert shaded["excursion-7"].yref == "y domain"  # full height
    assert shaded["excursion-7"].fillcolor != shaded["excursion-8"].fillcolor  # high vs low


@pytest.mark.parametrize(
    ("minutes", "gap_s", "expected"),
    [
        ([0, 1, 2, 3], 120, [1.0, 2.0, 3.0, 4.0]),  # regular: no gap
        ([0, 1, 10, 11], 120, [1.0, 2.0, None, 3.0, 4.0]),  # 9 min > 2 min: a gap
        ([0, 2, 4], 120, [1.0, 2.0, 3.0]),  # exactly 2 × the interval: still no gap
        ([0, 10, 20], 120, [1.0, None, 2.0, None, 3.0]),
    ],
)
def test_none_is_inserted_at_a_gap(minutes: list[int], gap_s: float, expected: list) -> None:
    df = _series(minutes, [float(i + 1) for i in range(len(minutes))])
    fig = temperature_figure(df, temp_min_c=2.0, temp_max_c=8.0, max_gap_s=gap_s)
    (trace,) = fig.data
    assert list(trace.y) == expected
    assert trace.connectgaps is False


def test_gap_row_sits_between_its_neighbours_and_input_order_does_not_matter() -> None:
    df = _series([11, 0, 10, 1], [4.0, 1.0, 3.0, 2.0])
    out = with_gaps(df, max_gap_s=120)
    assert out["ts"].is_monotonic_increasing
    assert out["temp_c"].tolist()[2] is None
    assert out["ts"].iloc[2] == T0 + timedelta(minutes=5, seconds=30)


def test_gaps_are_judged_per_device() -> None:
    df = pd.concat([_series([0, 5, 10], [5, 5, 5], "SLOW"), _series([0, 5, 10], [6, 6, 6], "FAST")])
    fig = temperature_figure(
        df, temp_min_c=2, temp_max_c=8, max_gap_s={"SLOW": 600.0, "FAST": 120.0}
    )
    by_name = {t.name: list(t.y) for t in fig.data}
    assert None not in by_name["SLOW"]
    assert by_name["FAST"].count(None) == 2


def test_bucketed_readings_draw_an_envelope() -> None:
    df = _series([0, 10, 20], [5.0, 5.5, 6.0])
    df["temp_min_c"] = [4.0, 5.0, 5.5]
    df["temp_max_c"] = [6.0, 6.5, 7.0]
    fig = temperature_figure(df, temp_min_c=2, temp_max_c=8)
    fills = [t for t in fig.data if t.fill == "tonexty"]
    assert len(fills) == 1 and list(fills[0].y) == [4.0, 5.0, 5.5]


def test_empty_data_still_makes_a_figure() -> None:
    fig = temperature_figure(pd.DataFrame(), temp_min_c=2, temp_max_c=8)
    assert fig.layout.annotations[0].text == "No readings yet"
    assert humidity_figure(pd.DataFrame()).layout.annotations[0].text == "No humidity readings"


def test_humidity_has_gaps_too() -> None:
    fig = humidity_figure(_series([0, 1, 30], [5, 5, 5]), rh_min=30, rh_max=60, max_gap_s=120)
    assert list(fig.data[0].y) == [50.0, 50.0, None, 50.0]
    assert "rh-range" in _shape_names(fig)


def _logger_block(device: str, *, mkt_c: float, share: float, status: str = "ok") -> dict[str, Any]:
    """A logger's block of the report's evidence, with the fields the shipment page reads."""
    return {
        "device_id": device,
        "mkt": {
            "window": {
                "mkt_c": mkt_c,
                "above_limit": mkt_c > 8,
                "start": "2026-12-05T18:00:00+00:00",
                "end": "2026-12-05T19:00:00+00:00",
                "duration_covered_s": 3600.0,
            },
            "whole_trip": {"mkt_c": mkt_c + 0.5, "above_limit": False},
        },
        "budget": {
            "budget_s": 72 * 3600.0,
            "counted_s": share * 72 * 3600,
            "share_used": share,
            "status": status,
        },
    }


def _find(component: Any, component_id: str) -> Any:
    """The component with ``component_id`` in a Dash component tree, or None."""
    if getattr(component, "id", None) == component_id:
        return component
    children = getattr(component, "children", None)
    for child in children if isinstance(children, list) else [children]:
        if child is not None and not isinstance(child, str):
            found = _find(child, component_id)
            if found is not None:
                return found
    return None


def test_stability_panel_shows_the_worst_loggers_mkt_and_budget_use() -> None:
    loggers = [
        _logger_block("LOG-A", mkt_c=5.0, share=0.0139),
        _logger_block("LOG-B", mkt_c=6.456, share=0.005),
    ]
    children, fig = stability_panel(
        loggers,
        MKT_CFG | {"limit_c": 8.0},
        {"temp_min_c": 2.0, "temp_max_c": 8.0},
        warning_share=0.8,
    )
    panel = html.Div(children)
    assert _find(panel, ids.SHIPMENT_MKT).children == "6.46 °C"  # the hottest logger
    assert _find(panel, ids.SHIPMENT_BUDGET).children == "1.4 %"  # the most budget used
    mkt_gauge, budget_gauge = fig.data
    assert (mkt_gauge.value, mkt_gauge.gauge.threshold.value) == (6.456, 8.0)
    assert budget_gauge.value == pytest.approx(1.39)
    assert budget_gauge.gauge.threshold.value == 100


MKT_CFG = {"window_h": 24.0, "limit_c": None, "delta_h_j_mol": 83144.0, "weighting": "step"}


def _text(component: Any) -> str:
    """Every string in a Dash component tree, joined."""
    if isinstance(component, str):
        return component
    children = getattr(component, "children", None)
    return " ".join(
        _text(c) for c in (children if isinstance(children, list) else [children]) if c is not None
    )


def test_an_mkt_above_the_label_range_is_red_and_says_what_it_was_judged_by() -> None:
    """The issue's case: 9.79 °C over one hour for a 2–8 °C product without an MKT limit."""
    children, fig = stability_panel(
        [_logger_block("LOG-A", mkt_c=9.79, share=0.1)],
        MKT_CFG,
        {"temp_min_c": 2.0, "temp_max_c": 8.0},
        warning_share=0.8,
    )
    text = _text(html.Div(children))
    assert "MKT (over 1.0 h)" in text and "24 h window" not in text.split("MKT (over")[0]
    assert "above the label range's upper limit of 8 °C (the product has no MKT limit)" in text
    assert "ΔH 83.144 kJ/mol · step weighting" in text
    assert "window 2026-12-05 18:00 UTC → 2026-12-05 19:00 UTC (1.0 h)" in text
    assert "coverage 4 % of the 24 h window (1.0 h with data)" in text
    mkt_gauge = fig.data[0]
    assert mkt_gauge.gauge.bar.color == CONDITION_COLORS["alarm"]
    assert (mkt_gauge.gauge.threshold.value, mkt_gauge.title.text) == (8.0, "MKT (over 1.0 h)")


def test_the_budget_shown_is_the_profiles_once_a_verdict_has_counted_it() -> None:
    verdict = {
        "profile_version": 3,
        "evaluated_at": datetime(2026, 12, 6, 8, 0, tzinfo=UTC),
        "figures": {
            "bands": [
                {"label": "8–25 °C", "used_s": 5400.0, "budget_s": 7200.0, "share": 0.75,
                 "exceeded": False},
                {"label": "25–30 °C", "used_s": 0.0, "budget_s": 3600.0, "share": 0.0,
                 "exceeded": False},
            ]
        },
    }  # fmt: skip
    loggers = [_logger_block("LOG-A", mkt_c=5.0, share=0.02)]
    args = (loggers, MKT_CFG, {"temp_min_c": 2.0, "temp_max_c": 8.0})
    live, _ = stability_panel(*args, warning_share=0.8)
    judged, fig = stability_panel(*args, warning_share=0.8, verdicts=[verdict])
    assert _find(html.Div(live), ids.SHIPMENT_BUDGET).children == "2.0 %"
    assert "the product's stability budget, live" in _text(html.Div(live))
    assert _find(html.Div(judged), ids.SHIPMENT_BUDGET).children == "75.0 %"
    assert "8–25 °C band of the stability profile v3" in _text(html.Div(judged))
    assert fig.data[1].value == pytest.approx(75.0)


def test_stability_gauges_leave_out_what_is_not_known() -> None:
    fig = stability_gauges(mkt_c=None, mkt_limit_c=8.0, share_used=None)
    assert not fig.data
    assert [a.text for a in fig.layout.annotations] == ["No MKT yet", "No stability budget"]
    over = stability_gauges(mkt_c=9.0, mkt_limit_c=8.0, share_used=1.25)
    assert over.data[0].gauge.bar.color == over.data[1].gauge.bar.color  # both alarm red
    assert over.data[1].gauge.axis.range == (0, 125.0)  # the bar stays on the dial


def test_severity_bars_split_by_age() -> None:
    df = pd.DataFrame(
        {"severity": ["critical", "critical", "warning"], "age_s": [60.0, 90_000.0, 7200.0]}
    )
    fig = severity_bars(df)
    counts = {t.name: dict(zip(t.x, t.y, strict=True)) for t in fig.data}
    assert counts["< 1 h"]["critical"] == 1
    assert counts["> 24 h"]["critical"] == 1
    assert counts["1–24 h"]["warning"] == 1


def test_small_pure_helpers() -> None:
    assert fmt_range(2, 8) == "2–8 °C" and fmt_range(None, 25) == "≤ 25 °C"
    assert fmt_age(T0 - timedelta(minutes=3), T0) == "3 min ago"
    assert fmt_age(None, T0) == "never"
    assert reference_from_path("/shipments/SHP%201") == "SHP 1"
    assert reference_from_path("/alerts") is None
    assert next_sort({"col": "reference", "desc": False}, "reference") == {
        "col": "reference",
        "desc": True,
    }
    # the fleet table's pages: clamped to the rows there are; a new filter or order restarts
    assert page_bounds(60, 1, size=25) == (1, 25, 50)
    assert page_bounds(60, 9, size=25) == (2, 50, 60)
    assert page_bounds(0, 3, size=25) == (0, 0, 0)
    assert next_page(2, ids.FLEET_NEXT) == 3 and next_page(0, ids.FLEET_PREV) == 0
    assert next_page(4, ids.FLEET_SEARCH) == 0
