"""The report's temperature chart, drawn as vector paths on the PDF page (pure: bytes depend on
the report document only).

Drawn with fpdf2's own lines and rectangles rather than an image from a plotting library: the
report already depends on fpdf2, the paths are exact at any zoom, and the bytes are the same on
every machine and every version of a plotting library, which is what keeps a signed record's
PDF reproducible from its frozen evidence (:mod:`reports.render`).

What it shows, all from the evidence: each logger's readings (a line per logger, broken at its
data gaps), the range the excursions were judged against (``rules.temperature``, else the
product's labelled range) as a green band, and every excursion as a red shaded span from its
start to its end (to ``as_of`` while it is open).

:func:`plan` computes the chart (scales, ticks, segments, spans) as plain numbers; :func:`draw`
puts it on the page.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from fpdf import FPDF
from fpdf.enums import XPos, YPos

from reports.assemble import JsonDict

#: Line colours of the loggers, in the order of the evidence's loggers (RGB, dark enough to read
#: on white and on the band; the same blue-first order as the dashboard's devices).
LOGGER_COLOURS: tuple[tuple[int, int, int], ...] = (
    (31, 95, 174),
    (123, 63, 160),
    (0, 131, 143),
    (160, 82, 45),
    (69, 90, 100),
)
BAND_FILL = (220, 240, 222)  # the range band: pale green
EXCURSION_FILL = (250, 212, 212)  # an excursion's span: pale red
LIMIT_LINE = (46, 125, 50)  # the band's edges
HEIGHT_MM = 62.0
_LEFT_AXIS_MM = 12.0
_BOTTOM_AXIS_MM = 7.0


@dataclass(frozen=True, slots=True)
class Series:
    """One logger's line: its colour index and its runs of (seconds from start, °C)."""

    device_id: str
    colour: int
    runs: tuple[tuple[tuple[float, float], ...], ...]


@dataclass(frozen=True, slots=True)
class ChartPlan:
    """The chart in plain numbers: time in seconds from ``start``, temperatures in °C."""

    start: datetime
    span_s: float
    low_c: float
    high_c: float
    band: tuple[float | None, float | None]
    series: tuple[Series, ...]
    excursions: tuple[tuple[float, float], ...]
    y_ticks: tuple[float, ...]
    x_ticks: tuple[float, ...] = field(default=())


def _dt(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


def _nice_step(span: float, count: int) -> float:
    """A round step (1, 2, 5 × 10^n) giving about ``count`` ticks over ``span``."""
    raw = span / max(count, 1)
    power = 10.0 ** math.floor(math.log10(raw))
    return next(float(m * power) for m in (1, 2, 5, 10) if m * power >= raw)


_TIME_STEPS_S = (300, 600, 900, 1800, 3600, 2 * 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400)


def _time_ticks(span_s: float, start: datetime) -> tuple[float, ...]:
    """Round UTC times (5 min … days) within the span, about six of them."""
    step = next((s for s in _TIME_STEPS_S if span_s / s <= 7), None)
    if step is None:
        step = 86400 * math.ceil(span_s / 86400 / 7)
    first = math.ceil(start.timestamp() / step) * step - start.timestamp()
    return tuple(first + i * step for i in range(int((span_s - first) // step) + 1))


def band_of(ev: JsonDict) -> tuple[float | None, float | None]:
    """The range drawn as the band: the rules as evaluated, else the product's labelled range."""
    rule = ev["rules"].get("temperature") or {}
    product = ev.get("product") or {}
    low = rule.get("low_c", product.get("temp_min_c"))
    high = rule.get("high_c", product.get("temp_max_c"))
    return low, high


def plan(ev: JsonDict) -> ChartPlan | None:
    """The chart of the evidence's readings, or None when there is no reading to draw."""
    points = [r for r in ev["readings"] if r["temp_c"] is not None]
    if not points:
        return None
    times = [_dt(r["ts"]) for r in points]
    start, end = min(times), max(times)
    excursion_spans = []
    for e in ev["excursions"]:
        e_start = _dt(e["start"])
        e_end = _dt(e["end"]) if e["end"] else max(end, _dt(ev["as_of"]))
        excursion_spans.append((e_start, e_end))
        end = max(end, e_end)
    span_s = max((end - start).total_seconds(), 60.0)
    low, high = band_of(ev)
    temps = [float(r["temp_c"]) for r in points]
    values = [*temps, *(v for v in (low, high) if v is not None)]
    lo, hi = min(values), max(values)
    span = max(hi - lo, 1.0)
    step = _nice_step(span, 6)
    lo, hi = lo - span * 0.08, hi + span * 0.08  # a margin, so no line runs along the frame
    y_ticks = tuple(
        round(v, 6)
        for v in (math.ceil(lo / step) * step + i * step for i in range(int((hi - lo) / step) + 1))
        if v <= hi
    )
    order = [lg["device_id"] for lg in ev["loggers"]]
    gap_starts = {(lg["device_id"], g["start"]) for lg in ev["loggers"] for g in lg["gaps"]}
    series = []
    for device_id in sorted({r["device_id"] for r in points}, key=lambda d: (d not in order, d)):
        runs: list[list[tuple[float, float]]] = [[]]
        for r in sorted((r for r in points if r["device_id"] == device_id), key=lambda r: r["ts"]):
            runs[-1].append(((_dt(r["ts"]) - start).total_seconds(), float(r["temp_c"])))
            if (device_id, r["ts"]) in gap_starts:  # silence follows: no line across it
                runs.append([])
        colour = order.index(device_id) if device_id in order else len(order)
        series.append(
            Series(device_id, colour % len(LOGGER_COLOURS), tuple(tuple(r) for r in runs if r))
        )
    return ChartPlan(
        start=start,
        span_s=span_s,
        low_c=lo,
        high_c=hi,
        band=(low, high),
        series=tuple(series),
        excursions=tuple(
            ((a - start).total_seconds(), (b - start).total_seconds()) for a, b in excursion_spans
        ),
        y_ticks=y_ticks,
        x_ticks=_time_ticks(span_s, start),
    )


def _tick_label(start: datetime, offset_s: float, span_s: float) -> str:
    when = datetime.fromtimestamp(start.timestamp() + offset_s, UTC)
    return when.strftime("%m-%d %H:%M") if span_s <= 3 * 86400 else when.strftime("%Y-%m-%d")


def draw(
    pdf: FPDF, chart: ChartPlan, *, title: str, band_label: str, text: Callable[[Any], str] = str
) -> None:
    """The chart at the current position, full width, with its caption and legend below;
    ``text`` makes a label printable in the page's font (:func:`reports.pdf_sections.latin1`)."""
    if pdf.will_page_break(HEIGHT_MM + 14):
        pdf.add_page()
    pdf.set_font("helvetica", "B", 9)
    pdf.cell(0, 5, text(title), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    x0 = pdf.l_margin + _LEFT_AXIS_MM
    y0 = pdf.get_y() + 1
    width = pdf.epw - _LEFT_AXIS_MM
    height = HEIGHT_MM - _BOTTOM_AXIS_MM

    def px(offset_s: float) -> float:
        return x0 + width * offset_s / chart.span_s

    def py(temp_c: float) -> float:
        clamped = min(max(temp_c, chart.low_c), chart.high_c)
        return y0 + height * (chart.high_c - clamped) / (chart.high_c - chart.low_c)

    band_low, band_high = chart.band
    top = py(band_high if band_high is not None else chart.high_c)
    bottom = py(band_low if band_low is not None else chart.low_c)
    if band_low is not None or band_high is not None:
        pdf.set_fill_color(*BAND_FILL)
        pdf.rect(x0, top, width, bottom - top, style="F")
    pdf.set_fill_color(*EXCURSION_FILL)
    for a, b in chart.excursions:
        pdf.rect(px(a), y0, max(px(b) - px(a), 0.4), height, style="F")
    # axes, grid and tick labels
    pdf.set_draw_color(200, 200, 200)
    pdf.set_line_width(0.1)
    pdf.set_font("helvetica", size=6.5)
    pdf.set_text_color(60, 60, 60)
    for t in chart.y_ticks:
        pdf.line(x0, py(t), x0 + width, py(t))
        pdf.set_xy(pdf.l_margin, py(t) - 1.5)
        pdf.cell(_LEFT_AXIS_MM - 1, 3, text(f"{t:g} °C"), align="R")
    for tick in chart.x_ticks:
        pdf.line(px(tick), y0 + height, px(tick), y0 + height + 1)
        pdf.set_xy(px(tick) - 10, y0 + height + 1.2)
        pdf.cell(20, 3, _tick_label(chart.start, tick, chart.span_s), align="C")
    # the range's edges, over the grid
    pdf.set_draw_color(*LIMIT_LINE)
    pdf.set_line_width(0.3)
    pdf.set_dash_pattern(dash=1.2, gap=0.8)
    for edge in (band_low, band_high):
        if edge is not None:
            pdf.line(x0, py(edge), x0 + width, py(edge))
    pdf.set_dash_pattern()
    pdf.set_draw_color(90, 90, 90)
    pdf.rect(x0, y0, width, height)
    # the readings, one line per logger
    pdf.set_line_width(0.35)
    for s in chart.series:
        pdf.set_draw_color(*LOGGER_COLOURS[s.colour])
        for run in s.runs:
            coords = [(px(t), py(v)) for t, v in run]
            if len(coords) == 1:
                coords.append((coords[0][0] + 0.3, coords[0][1]))
            pdf.polyline(coords)
    pdf.set_draw_color(0, 0, 0)
    pdf.set_line_width(0.2)
    # legend
    pdf.set_xy(pdf.l_margin, y0 + HEIGHT_MM - 1)
    legend: list[tuple[tuple[int, int, int], str]] = [
        (LOGGER_COLOURS[s.colour], text(f"logger {s.device_id}")) for s in chart.series
    ]
    legend.append((BAND_FILL, text(band_label)))
    if chart.excursions:
        legend.append((EXCURSION_FILL, "excursion (shaded)"))
    _legend(pdf, legend)
    pdf.set_text_color(0, 0, 0)
    pdf.set_fill_color(255, 255, 255)  # the tables after it are filled with the current colour
    pdf.set_font("helvetica", size=8.5)
    pdf.ln(5)


def _legend(pdf: FPDF, items: Sequence[tuple[tuple[int, int, int], str]]) -> None:
    pdf.set_font("helvetica", size=7)
    for colour, label in items:
        width = pdf.get_string_width(label) + 8
        if pdf.get_x() + width > pdf.l_margin + pdf.epw:
            pdf.ln(4)
        x, y = pdf.get_x(), pdf.get_y()
        pdf.set_fill_color(*colour)
        pdf.rect(x, y + 0.9, 4, 2.2, style="F")
        pdf.set_x(x + 5)
        pdf.cell(width - 5, 4, label)
