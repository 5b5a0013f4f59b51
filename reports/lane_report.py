"""The weekly lane quality report as CSV and PDF bytes (pure; README "Insight").

One report is one week (:class:`coldchain.insight.weeks.Week`) of one lane or one carrier: the
figures of the shipments that arrived in that week (:mod:`coldchain.insight.lanes`) and the
carriers' scorecards, leg by leg (:mod:`coldchain.insight.carriers`). :mod:`services.lane_reports`
reads them and calls :func:`render`.

- **CSV**, one row per figure (a pivot on ``field`` gives a table back)::

      week, section, lane, carrier, field, value

  ``section`` is ``lane`` (a lane's figures and its score's parts, ``part.<name>.points``) or
  ``carrier`` (a carrier's scorecard on a lane); ``value`` is plain text, empty for none.
- **PDF**: the same figures for people, with a note for each figure that has too little data
  behind it, and what the figures mean.

Deterministic: the same figures give the same bytes (the PDF's creation date is the week's end,
and its footer carries the SHA-256 of the CSV, the report's content).
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from fpdf.enums import XPos, YPos

from coldchain.insight.carriers import CarrierScore
from coldchain.insight.lanes import WEIGHTS, LaneRisk
from coldchain.insight.weeks import Week
from reports import pdf_sections as section

CSV_HEADER = ("week", "section", "lane", "carrier", "field", "value")

ABOUT = (
    "Figures of the shipments that finished (arrived) on the lane in the week. Excursion rate: "
    "shipments with at least one excursion / shipments. Time out of range: the excursions' "
    "durations per shipment (mean, 90th percentile). Band: where 90% of the readings in transit "
    "fell (5th to 95th percentile). Delay: arrival minus planned arrival (median; share late). "
    "Alarm rate: alerts per shipment. Risk score (0-100): "
    f"{WEIGHTS['excursions']:g} x excursion rate + {WEIGHTS['time_out']:g} x min(1, mean time "
    f"out of range / 4 h) + {WEIGHTS['late']:g} x share late + {WEIGHTS['alarms']:g} x min(1, "
    "alerts per shipment), once the lane has the minimum of finished shipments. Carriers: "
    "leg by leg; on-time arrival over the legs whose arrival is recorded (a shipment's last leg)."
)


@dataclass(frozen=True, slots=True)
class LaneReport:
    """The report's files and their names."""

    name: str
    csv: bytes
    pdf: bytes

    @property
    def content_hash(self) -> str:
        return hashlib.sha256(self.csv).hexdigest()


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def csv_rows(
    week: Week, lanes: Sequence[LaneRisk], carriers: Sequence[CarrierScore]
) -> list[tuple[str, ...]]:
    """The report's figures, one row per figure (see the module docstring)."""
    rows: list[tuple[str, ...]] = []
    for lane in lanes:
        doc = lane.to_dict()
        parts = doc.pop("parts")
        for field, value in doc.items():
            if field not in ("lane", "month"):
                rows.append((week.label, "lane", lane.lane, "", field, _text(value)))
        for p in parts:
            rows.append(
                (week.label, "lane", lane.lane, "", f"part.{p['name']}.points", _text(p["points"]))
            )
    for card in carriers:
        for field, value in card.to_dict().items():
            if field not in ("lane", "carrier"):
                rows.append((week.label, "carrier", card.lane, card.carrier, field, _text(value)))
    return rows


def render_csv(week: Week, lanes: Sequence[LaneRisk], carriers: Sequence[CarrierScore]) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    writer.writerows(csv_rows(week, lanes, carriers))
    return buf.getvalue().encode("utf-8")


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.0f}%"


def _hours(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds / 3600:.1f} h"


def _band(lane: LaneRisk) -> str:
    if lane.band is None:
        return "no readings"
    return f"{lane.band.low_c:.1f} to {lane.band.high_c:.1f} C ({lane.band.readings} readings)"


def render_pdf(
    title: str,
    week: Week,
    lanes: Sequence[LaneRisk],
    carriers: Sequence[CarrierScore],
    *,
    content_hash: str,
) -> bytes:
    pdf = section.ReportPdf(content_hash, title)
    pdf.set_title(section.latin1(title))
    pdf.set_author("coldchain")
    pdf.set_creator("coldchain reports")
    pdf.set_creation_date(week.end)
    pdf.set_auto_page_break(True, margin=16)
    pdf.set_margins(14, 14, 14)
    pdf.add_page()
    pdf.set_font("helvetica", "B", 15)
    pdf.cell(0, 9, section.latin1(title), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.paragraph(
        f"Week {week.label}: shipments that arrived from {week.start:%Y-%m-%d %H:%M} UTC "
        f"to {week.end:%Y-%m-%d %H:%M} UTC."
    )
    pdf.section("Lanes")
    pdf.grid(
        (
            "Lane",
            "Mode",
            "Shipments",
            "With excursions",
            "Time out (mean / p90)",
            "Band (90%)",
            "Delay (median / late)",
            "Alarms / shipment",
            "Score",
        ),
        [
            (
                lane.lane,
                lane.mode,
                lane.shipments,
                _pct(lane.excursion_rate),
                f"{_hours(lane.time_out_mean_s)} / {_hours(lane.time_out_p90_s)}",
                _band(lane),
                f"{_hours(lane.delay_median_s)} / {_pct(lane.late_share)}",
                "-" if lane.alarm_rate is None else f"{lane.alarm_rate:.2f}",
                "-" if lane.score is None else f"{lane.score:.0f}",
            )
            for lane in lanes
        ],
        (22, 14, 16, 18, 24, 34, 26, 18, 12),
    )
    for lane in lanes:
        if lane.note:
            pdf.paragraph(lane.note)
        elif lane.parts:
            parts = ", ".join(f"{p.label} {p.points:.1f} of {p.weight:g}" for p in lane.parts)
            pdf.paragraph(f"{lane.lane}: score {lane.score:.0f} = {parts}.")
    pdf.section("Carriers, leg by leg")
    pdf.grid(
        (
            "Lane",
            "Carrier",
            "Legs",
            "Shipments",
            "On time",
            "Excursions / 100 shipments",
            "Time out / shipment",
            "Note",
        ),
        [
            (
                c.lane,
                c.carrier,
                c.legs,
                c.shipments,
                f"{_pct(c.on_time_share)} of {c.timed_legs}",
                f"{c.excursions_per_100:.0f}",
                _hours(c.time_out_per_shipment_s),
                c.note or "",
            )
            for c in carriers
        ],
        (20, 24, 10, 14, 16, 22, 18, 40),
    )
    pdf.section("What the figures mean")
    pdf.paragraph(ABOUT)
    return bytes(pdf.output())


def render(
    *,
    scope: str,
    week: Week,
    lanes: Sequence[LaneRisk],
    carriers: Sequence[CarrierScore],
) -> LaneReport:
    """The report of ``scope`` (``lane BSL-JFK`` or ``carrier SkyCargo``) for ``week``."""
    body = render_csv(week, lanes, carriers)
    title = f"Lane quality report, {scope}, {week.label}"
    pdf = render_pdf(title, week, lanes, carriers, content_hash=hashlib.sha256(body).hexdigest())
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in scope.replace(" ", "-"))
    return LaneReport(name=f"lane-report-{safe}-{week.label}", csv=body, pdf=pdf)
