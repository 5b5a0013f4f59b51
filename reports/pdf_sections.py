"""The PDF form of the report: its page (footer, headings, tables) and one renderer per section.

:func:`reports.render.render_pdf` sets the document up and calls the renderers in order; each
takes the page and the report document and draws its section, so a section is read and changed on
its own. Texts use the PDF core fonts (Latin-1), so a few symbols are spelled out (ΔH → dH,
→ → ->); "°C" is Latin-1 and printed as such, the one unit style of the report. An identifier
too wide for its table column is set smaller rather than broken, and a signature block is kept
on one page. Nothing here reads a clock: the bytes depend on the document only.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from fpdf import FPDF
from fpdf.enums import XPos, YPos
from fpdf.fonts import FontFace

from reports import pdf_chart
from reports.assemble import JsonDict

DECISION_LABELS = {
    "release": "RELEASE",
    "quarantine": "QUARANTINE",
    "reject": "REJECT",
    "return": "RETURN",
}

GRID_FONT_PT = 7.5
#: The smallest size an identifier is shrunk to in a table cell (still legible when printed).
MIN_FONT_PT = 4.5

_REPLACEMENTS = {
    "Δ": "d",
    "→": "->",
    "–": "-",
    "—": "-",
    "≤": "<=",
    "≥": ">=",
    "…": "...",
    "×": "x",
    "’": "'",
    "“": '"',
    "”": '"',
}


def latin1(text: Any) -> str:
    """Text the PDF core fonts can print."""
    s = "-" if text is None else str(text)
    for a, b in _REPLACEMENTS.items():
        s = s.replace(a, b)
    return s.encode("latin-1", "replace").decode("latin-1")


def _when(value: str | None) -> str:
    """ISO text → ``2026-11-26 03:04 UTC``."""
    if not value:
        return "-"
    if "T" not in value:
        return value
    dt = datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)
    return dt.strftime("%Y-%m-%d %H:%M UTC")


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    minutes = int(seconds // 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes:02d} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h"


def _temp(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} °C"


class ReportPdf(FPDF):
    """An A4 page in the core fonts, its footer naming the report and its content hash."""

    def __init__(self, content_hash: str, title: str) -> None:
        super().__init__(orientation="P", unit="mm", format="A4")
        self._hash = content_hash
        self._title = title
        self._sections = 0

    def footer(self) -> None:
        self.set_y(-12)
        self.set_font("helvetica", size=7)
        self.set_text_color(90, 90, 90)
        self.cell(
            0,
            5,
            latin1(f"{self._title} - content SHA-256 {self._hash} - page {self.page_no()}/{{nb}}"),
            align="C",
        )
        self.set_text_color(0, 0, 0)

    def heading(self, text: str) -> None:
        """A numbered section's heading, on the page of what follows it (never alone at the
        bottom of a page)."""
        self.ln(2)
        if self.will_page_break(7 + 12):
            self.add_page()
        self.set_font("helvetica", "B", 11)
        self.cell(0, 7, latin1(text), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.set_font("helvetica", size=8.5)

    def section(self, title: str) -> None:
        """The next numbered section's heading: numbered as drawn, so a section that an older
        evidence format lacks leaves no hole and its record renders as it was signed."""
        self._sections += 1
        self.heading(f"{self._sections}. {title}")

    def paragraph(self, text: str, *, bold: bool = False) -> None:
        """Text that wraps to the page width."""
        self.set_font("helvetica", "B" if bold else "", 8.5)
        self.multi_cell(0, 4.4, latin1(text), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.set_font("helvetica", size=8.5)

    def grid(
        self, header: Sequence[str], rows: Sequence[Sequence[Any]], widths: Sequence[float]
    ) -> None:
        """A table with a header row, or ``(none)`` when there is no row."""
        if not rows:
            self.paragraph("(none)")
            return
        self.set_font("helvetica", size=GRID_FONT_PT)
        widths = self._widened(rows, widths)
        scale = self.epw / sum(widths)  # the table spans the page width, columns in proportion
        with self.table(col_widths=tuple(widths), line_height=4.2, text_align="LEFT") as t:
            head = t.row()
            for h in header:
                head.cell(latin1(h))
            for r in rows:
                row = t.row()
                for v, w in zip(r, widths, strict=True):
                    text = latin1(v)
                    row.cell(text, style=self._fitting(text, w * scale - 2 * self.c_margin))
        self.set_font("helvetica", size=8.5)

    def _widened(self, rows: Sequence[Sequence[Any]], widths: Sequence[float]) -> tuple[float, ...]:
        """The columns' widths (mm, summing to the page width), a column widened, at the others'
        expense, when one of its words would not fit even at :data:`MIN_FONT_PT`."""
        scale = self.epw / sum(widths)
        pad = 2 * self.c_margin + 0.5
        need = [w * scale for w in widths]
        for r in rows:
            for i, v in enumerate(r):
                text = latin1(v)
                if " " not in text:
                    at_min = self.get_string_width(text) * MIN_FONT_PT / GRID_FONT_PT + pad
                    need[i] = max(need[i], at_min)
        extra = sum(need) - self.epw
        if extra <= 0:
            return tuple(w * scale for w in widths)
        # take the room from the columns that did not grow, in proportion to their width
        donors = [i for i, w in enumerate(widths) if need[i] == w * scale]
        room = sum(need[i] for i in donors)
        if room <= extra:
            return tuple(need)  # nothing to take: wider than the page, the table scales down
        return tuple(n * (1 - extra / room) if i in donors else n for i, n in enumerate(need))

    def _fitting(self, text: str, room_mm: float) -> FontFace | None:
        """A smaller font for one word too wide for its column (a logger serial, a lot, an
        EPC), so an identifier is never broken mid-string; None when it fits as it is."""
        if " " in text:
            return None  # words wrap whole
        width = self.get_string_width(text)
        if width <= room_mm:
            return None
        return FontFace(size_pt=max(MIN_FONT_PT, GRID_FONT_PT * room_mm / width * 0.98))


def report_title(doc: JsonDict) -> str:
    """The title on the first page, in the PDF's metadata and in every footer."""
    return f"Excursion report {doc['evidence']['shipment']['reference']}"


def title_block(pdf: ReportPdf, doc: JsonDict) -> None:
    """The title, the evidence's instant and format, the content hash, the frozen record."""
    ev = doc["evidence"]
    title = report_title(doc)
    pdf.set_font("helvetica", "B", 15)
    pdf.cell(0, 9, latin1(title), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.paragraph(f"Evidence as of {_when(ev['as_of'])} ({ev['as_of']}). Format {ev['format']}.")
    pdf.paragraph(f"Content SHA-256: {doc['content_hash']}", bold=True)
    if doc["frozen_snapshot_id"] is not None:
        pdf.paragraph(f"Frozen record: snapshot {doc['frozen_snapshot_id']} (as signed).")


def temperature_chart(pdf: ReportPdf, doc: JsonDict) -> None:
    """The readings over the trip against the range, excursions shaded (:mod:`reports.pdf_chart`),
    unnumbered, under the title: what a reader looks at first."""
    ev = doc["evidence"]
    chart = pdf_chart.plan(ev)
    if chart is None:
        pdf.paragraph("Temperature chart: no reading to draw.")
        return
    low, high = pdf_chart.band_of(ev)
    pdf_chart.draw(
        pdf,
        chart,
        title=f"Temperature (°C, UTC), {ev['totals']['readings']} readings",
        band_label=f"range {_band_range(low, high)}",
        text=latin1,
    )


def product_and_lots(pdf: ReportPdf, doc: JsonDict) -> None:
    """1. The product, its limits, the lots and the units on board."""
    ev = doc["evidence"]
    product = ev["product"]
    pdf.section("Product and lots")
    if product is None:
        pdf.paragraph("No product is recorded for this shipment.")
    else:
        pdf.paragraph(
            f"{product['name']} - GTIN {product['gtin']} - labelled range {product['labelled_range']}"
        )
        pdf.paragraph(
            f"Freeze limit {_temp(product['freeze_limit_c'])}; alarm delay "
            f"{_duration(product['alarm_delay_s'])}; stability budget "
            f"{_duration(product['stability_budget_s'])}"
        )
    pdf.grid(
        ["GTIN", "Lot", "Expiry", "Units"],
        [(x["gtin"], x["lot"], x["expiry"], x["units"]) for x in ev["lots"]],
        [40, 50, 40, 52],
    )
    ssccs = [u["sscc"] for u in ev["units"] if u["kind"] == "sscc"]
    serials = [u["serial"] for u in ev["units"] if u["kind"] == "sgtin"]
    pdf.paragraph(
        f"Units on board: {len(ssccs)} SSCC ({', '.join(ssccs[:6])}{' ...' if len(ssccs) > 6 else ''}), "
        f"{len(serials)} serialised items (all listed in the JSON/CSV report)."
    )


def shipment(pdf: ReportPdf, doc: JsonDict) -> None:
    """2. The shipment and its legs."""
    ev = doc["evidence"]
    ship = ev["shipment"]
    pdf.section("Shipment")
    pdf.paragraph(
        f"{ship['reference']}: {ship['lane']}; status {ship['status']}; carrier {ship['carrier'] or '-'}; "
        f"planned {_when(ship['planned_departure'])} to {_when(ship['planned_arrival'])}"
    )
    pdf.grid(
        ["Leg", "Mode", "From", "To", "Carrier", "Departure", "Arrival"],
        [
            (
                leg["seq"],
                leg["mode"],
                leg["origin"],
                leg["destination"],
                leg.get("carrier"),
                _when(leg.get("planned_departure")),
                _when(leg.get("planned_arrival")),
            )
            for leg in ev["legs"]
        ],
        [10, 16, 30, 30, 30, 33, 33],
    )


def loggers(pdf: ReportPdf, doc: JsonDict) -> None:
    """3. Each logger's calibration, assignment and data completeness, and the gaps."""
    ev = doc["evidence"]
    pdf.section("Loggers and data completeness")
    pdf.grid(
        ["Serial", "Calibration", "Due", "Interval", "Assigned", "Readings", "Complete", "Gaps"],
        [
            (
                lg["device_id"],
                lg["calibration_cert"],
                f"{lg['calibration_due'] or '-'}{' OVERDUE' if lg['calibration_overdue'] else ''}"
                + (
                    f" ({lg['readings_after_calibration_due']} readings after it, EU GDP 9.3)"
                    if lg.get("readings_after_calibration_due")
                    else ""
                ),
                f"{lg['interval_s']} s",
                f"{_when(lg['assigned_from'])} - {_when(lg['assigned_to'])}",
                f"{lg['readings']} / {lg['expected_readings']}",
                "-" if lg["completeness"] is None else f"{lg['completeness'] * 100:.1f} %",
                f"{len(lg['gaps'])} ({_duration(lg['time_in_gaps_s'])})",
            )
            for lg in ev["loggers"]
        ],
        [24, 24, 22, 14, 44, 20, 16, 18],
    )
    gaps = [(lg["device_id"], g) for lg in ev["loggers"] for g in lg["gaps"]]
    if gaps:
        pdf.paragraph("Data gaps (unknown time, never counted as in range):")
        pdf.grid(
            ["Logger", "From", "To", "Duration", "Still open"],
            [
                (
                    d,
                    _when(g["start"]),
                    _when(g["end"]),
                    _duration(g["duration_s"]),
                    "yes" if g["open"] else "no",
                )
                for d, g in gaps[:40]
            ],
            [30, 40, 40, 36, 36],
        )
        if len(gaps) > 40:
            pdf.paragraph(f"... and {len(gaps) - 40} more gaps (JSON/CSV report).")


def rules(pdf: ReportPdf, doc: JsonDict) -> None:
    """4. The thresholds the excursions were judged against."""
    ev = doc["evidence"]
    pdf.section("Rules and thresholds")
    rules = ev["rules"]
    t = rules["temperature"]
    if t is None:
        pdf.paragraph("No temperature rule: nothing to judge excursions against.")
    else:
        pdf.paragraph(
            f"Range {_temp(t['low_c'])} to {_temp(t['high_c'])}; freeze limit {_temp(t['freeze_c'])}; "
            f"alarm delay {_duration(t['alarm_delay_s'])}; gap rule: silence longer than "
            f"{rules['gap_factor']} x the logging interval."
        )
    m = rules["mkt"]
    pdf.paragraph(
        f"MKT: dH = {m['delta_h_j_mol']:g} J/mol, R = 8.3144 J/(mol K), weighting '{m['weighting']}', "
        f"window {m['window_h']:g} h, limit {_temp(m['limit_c'])} ({m['source']})."
    )
    b = rules["budget"]
    pdf.paragraph(
        "Stability budget: none."
        if b is None
        else f"Stability budget: {b['hours']:g} h out of range; warning at {b['warning_share'] * 100:.0f} %; "
        f"gaps counted as out of range: {'yes' if b['count_gaps_as_out'] else 'no'}."
    )
    sources = rules["in_force"].get("sources") if isinstance(rules["in_force"], dict) else None
    if sources:
        pdf.paragraph("Rule layers in force: " + "; ".join(str(s) for s in sources))
    pdf.paragraph(
        "Each excursion below also lists the thresholds it was evaluated against (JSON/CSV)."
    )


def excursions(pdf: ReportPdf, doc: JsonDict) -> None:
    """5. Every excursion, with the totals."""
    ev = doc["evidence"]
    pdf.section("Excursions")
    totals = ev["totals"]
    pdf.paragraph(
        f"{totals['excursions']} excursion(s), {totals['alarmed_excursions']} alarmed; "
        f"{_duration(totals['time_out_of_range_s'])} out of range; "
        f"{totals['degree_minutes']:g} °C·min in all (degree-minutes)."
    )
    pdf.grid(
        ["Logger", "Dir", "Start", "End", "Duration", "Min", "Max", "°C·min", "Alarm"],
        [
            (
                e["device_id"],
                e["direction"],
                _when(e["start"]),
                "open" if e["open"] else _when(e["end"]) + (" (gap)" if e["ended_by_gap"] else ""),
                _duration(e["duration_s"]),
                _temp(e["min_c"]),
                _temp(e["max_c"]),
                f"{e['degree_minutes']:g}",
                ("freeze " if e["freeze_alarm"] else "")
                + (_when(e["alarm_at"]) if e["alarm"] else "no"),
            )
            for e in ev["excursions"]
        ],
        [20, 10, 28, 30, 18, 14, 14, 14, 34],
    )


def mean_kinetic_temperature(pdf: ReportPdf, doc: JsonDict) -> None:
    """6. MKT per logger, over the window and the whole trip."""
    ev = doc["evidence"]
    m = ev["rules"]["mkt"]
    pdf.section("Mean kinetic temperature")
    rows = []
    for lg in ev["loggers"]:
        for scope, label in (("window", f"last {m['window_h']:g} h"), ("whole_trip", "whole trip")):
            mk = lg["mkt"][scope]
            if mk is None:
                continue
            verdict = (
                "-"
                if mk["above_limit"] is None
                else ("ABOVE LIMIT" if mk["above_limit"] else "within")
            )
            rows.append(
                (
                    lg["device_id"],
                    label,
                    f"{_when(mk['start'])} - {_when(mk['end'])}",
                    f"{mk['mkt_c']:.2f} °C",
                    _temp(mk["time_weighted_mean_c"]),
                    mk["n_readings"],
                    _duration(mk["duration_covered_s"]),
                    verdict,
                )
            )
    pdf.grid(
        ["Logger", "Window", "From - to", "MKT", "Mean", "Readings", "Covered", "vs limit"],
        rows,
        [20, 20, 52, 16, 16, 16, 22, 20],
    )


def budget(pdf: ReportPdf, doc: JsonDict) -> None:
    """7. Cumulative exposure against the stability budget."""
    ev = doc["evidence"]
    pdf.section("Cumulative exposure against the stability budget")
    pdf.grid(
        [
            "Logger",
            "Out of range",
            "In gaps",
            "Counted",
            "Budget",
            "Used",
            "Status",
            "Exhausted at",
        ],
        [
            (
                lg["device_id"],
                _duration(bu["time_out_of_range_s"]),
                _duration(bu["time_in_gaps_s"]),
                _duration(bu["counted_s"]),
                _duration(bu["budget_s"]),
                f"{bu['share_used'] * 100:.1f} %",
                bu["status"],
                _when(bu["exhausted_at"]),
            )
            for lg in ev["loggers"]
            if (bu := lg["budget"]) is not None
        ],
        [20, 22, 20, 22, 22, 16, 18, 42],
    )


def verdicts(pdf: ReportPdf, doc: JsonDict) -> None:
    """8. The stability verdict at arrival of each product (evidence format 2 on; an older
    record has no such section and none is drawn)."""
    ev = doc["evidence"]
    if "verdicts" not in ev:
        return
    pdf.section("Stability verdict at arrival")
    if not ev["verdicts"]:
        pdf.paragraph("No product has been judged at arrival (yet) as of this report.")
    for v in ev["verdicts"]:
        pdf.paragraph(
            f"{v['product'] or v['gtin']} (GTIN {v['gtin']}): {v['verdict'].upper()} - judged by "
            f"{v['judged_by']}; evaluated {_when(v['evaluated_at'])} by {v['evaluated_by']}",
            bold=True,
        )
        for r in v["reasons"]:
            pdf.paragraph(f"- {r['message']}")
        if not v["reasons"]:
            pdf.paragraph("- No reason for an exception: every budget, limit and cycle held.")
        pdf.grid(
            ["Band", "Range", "Used", "Budget", "Share", "Exceeded"],
            [
                (
                    b.get("label") or b.get("key"),
                    _band_range(b.get("low_c"), b.get("high_c")),
                    _duration(b.get("used_s")),
                    _duration(b.get("budget_s")),
                    "-" if b.get("share") is None else f"{b['share'] * 100:.1f} %",
                    "YES" if b.get("exceeded") else "no",
                )
                for b in v["bands"]
            ],
            [50, 36, 24, 24, 20, 28],
        )


def _band_range(low: float | None, high: float | None) -> str:
    if low is None and high is None:
        return "outside the range"
    return f"{_temp(low) if low is not None else '...'} to {_temp(high) if high is not None else '...'}"


def alerts(pdf: ReportPdf, doc: JsonDict) -> None:
    """9. The alerts and who acknowledged them."""
    ev = doc["evidence"]
    pdf.section("Alerts and acknowledgements")
    pdf.grid(
        ["Id", "Severity", "Alert", "Triggered", "State then", "Acknowledged"],
        [
            (
                a["id"],
                a["severity"],
                a["title"],
                _when(a["triggered_at"]),
                a["state_as_of"],
                "; ".join(
                    f"{k['by']} {_when(k['at'])}: {k['comment'] or ''}" for k in a["acknowledged"]
                )
                or "-",
            )
            for a in ev["alerts"]
        ],
        [10, 16, 52, 28, 18, 58],
    )


def dispositions(pdf: ReportPdf, doc: JsonDict) -> None:
    """10. The signed dispositions, current and superseded."""
    pdf.section("Dispositions and electronic signatures")
    if not doc["dispositions"]:
        pdf.paragraph("No disposition has been signed.")
    for d in doc["dispositions"]:
        scope = f"lot {d['lot']}" if d["lot"] else "whole shipment"
        status = "current" if d["current"] else f"SUPERSEDED by #{d['superseded_by']}"
        # A signature block is kept on one page (a page break before it when it would not fit):
        # the decision, the signer and the hashes they bind are read together.
        with pdf.unbreakable() as block:
            block.paragraph(
                f"#{d['id']}  {DECISION_LABELS.get(d['decision'], d['decision'])} - {scope} - "
                f"{status}",
                bold=True,
            )
            block.paragraph(f"Reason: {d['reason']}")
            block.paragraph(d["signature"])
            block.paragraph(
                f"Signer: {d['signer_name']} (printed name), user {d['signer_username']}, role "
                f"{d['signer_role']}; signed {d['signed_at']}; meaning: {d['meaning']}"
            )
            extra = f"; supersedes #{d['supersedes']}" if d["supersedes"] else ""
            block.paragraph(f"Signed report hash {d['report_hash']}{extra}")
            block.paragraph(f"Signature record SHA-256 {d['signature_hash']}")
            block.ln(1.5)


def about(pdf: ReportPdf, doc: JsonDict, *, hash_note: str) -> None:
    """How the hash is made and where the readings are listed."""
    totals = doc["evidence"]["totals"]
    pdf.heading("About this report")
    pdf.paragraph(hash_note)
    pdf.paragraph(
        f"{totals['readings']} readings are part of the evidence; they are listed in the JSON and "
        "CSV forms of this report. Times are UTC, on the loggers' own measurement clocks."
    )
