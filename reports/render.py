"""The report as JSON, CSV and PDF bytes, from its evidence and its signed dispositions (pure).

Every renderer is deterministic: the same evidence and dispositions give the same bytes (the PDF
carries the report's ``as_of`` as its creation date, and no random file id), which is what lets a
signed report be reproduced from its frozen snapshot. Texts in the PDF use the PDF core fonts
(Latin-1), so a few symbols are spelled out (ΔH → dH, → → ->).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from fpdf import FPDF
from fpdf.enums import XPos, YPos

from reports.assemble import iso
from security.signatures import manifestation

JsonDict = dict[str, Any]

HASH_NOTE = (
    "Content hash: SHA-256 over the canonical JSON of the report's evidence (keys sorted, no "
    "spaces, UTF-8), i.e. of the 'evidence' object of report.json, readings included. The same "
    "evidence gives the same hash and the same report, byte for byte."
)

DECISION_LABELS = {
    "release": "RELEASE",
    "quarantine": "QUARANTINE",
    "reject": "REJECT",
    "return": "RETURN",
}


def disposition_record(row: Mapping[str, Any], superseded_by: int | None = None) -> JsonDict:
    """A signed disposition as JSON values, with the signature as people read it."""
    return {
        "id": row["disposition_id"],
        "shipment_id": row["shipment_id"],
        "lot": row["lot"],
        "decision": row["decision"],
        "reason": row["reason"],
        "meaning": row["meaning"],
        "signer_username": row["signer_username"],
        "signer_name": row["signer_name"],
        "signer_role": row["signer_role"],
        "signed_at": iso(row["signed_at"]),
        "report_hash": row["report_hash"],
        "snapshot_id": row["snapshot_id"],
        "supersedes": row["supersedes"],
        "superseded_by": superseded_by,
        "current": superseded_by is None,
        "signature_hash": row["signature_hash"],
        "signature": manifestation(row),
    }


def disposition_records(rows: Sequence[Mapping[str, Any]]) -> list[JsonDict]:
    """Every disposition, oldest first, each marked current or superseded (by which)."""
    successor = {r["supersedes"]: r["disposition_id"] for r in rows if r["supersedes"] is not None}
    ordered = sorted(rows, key=lambda r: r["disposition_id"])
    return [disposition_record(r, successor.get(r["disposition_id"])) for r in ordered]


def document(
    evidence: JsonDict,
    content_hash: str,
    dispositions: Sequence[JsonDict],
    *,
    snapshot_id: int | None = None,
) -> JsonDict:
    """The whole report: evidence, its hash, the dispositions, and whether it is frozen."""
    return {
        "format": evidence["format"],
        "content_hash": content_hash,
        "content_hash_rule": HASH_NOTE,
        "frozen_snapshot_id": snapshot_id,
        "dispositions": list(dispositions),
        "evidence": evidence,
    }


def render_json(doc: JsonDict) -> bytes:
    """Readable, stable JSON (sorted keys, two-space indent)."""
    return (json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")


# ---------------------------------------------------------------------------------------------
# CSV: one file, a block per section (a "## section" row, a header row, the rows)
# ---------------------------------------------------------------------------------------------


def _scalar(value: Any) -> Any:
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    if value is None:
        return ""
    return value


def render_csv(doc: JsonDict) -> bytes:
    """The report as CSV blocks: summary, lots, legs, loggers, gaps, excursions, MKT, budget,
    alerts, dispositions, readings."""
    ev = doc["evidence"]
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")

    def block(name: str, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        w.writerow([f"## {name}"])
        w.writerow(header)
        for r in rows:
            w.writerow([_scalar(v) for v in r])
        w.writerow([])

    product = ev["product"] or {}
    ship = ev["shipment"]
    summary = [
        ("format", ev["format"]),
        ("content_hash", doc["content_hash"]),
        ("content_hash_rule", doc["content_hash_rule"]),
        ("frozen_snapshot_id", doc["frozen_snapshot_id"]),
        ("as_of", ev["as_of"]),
        ("shipment", ship["reference"]),
        ("lane", ship["lane"]),
        ("status", ship["status"]),
        ("carrier", ship["carrier"]),
        ("product", product.get("name")),
        ("gtin", product.get("gtin")),
        ("labelled_range", product.get("labelled_range")),
        *((f"rules.{k}", v) for k, v in sorted(ev["rules"].items()) if k != "in_force"),
        *((f"totals.{k}", v) for k, v in sorted(ev["totals"].items())),
    ]
    block("summary", ["field", "value"], summary)
    block(
        "lots",
        ["gtin", "lot", "expiry", "units"],
        [(x["gtin"], x["lot"], x["expiry"], x["units"]) for x in ev["lots"]],
    )
    block(
        "units",
        ["epc", "kind", "gtin", "serial", "sscc", "lot", "expiry"],
        [
            tuple(u[k] for k in ("epc", "kind", "gtin", "serial", "sscc", "lot", "expiry"))
            for u in ev["units"]
        ],
    )
    block(
        "legs",
        ["seq", "mode", "origin", "destination", "carrier", "planned_departure", "planned_arrival"],
        [
            tuple(
                leg.get(k)
                for k in (
                    "seq",
                    "mode",
                    "origin",
                    "destination",
                    "carrier",
                    "planned_departure",
                    "planned_arrival",
                )
            )
            for leg in ev["legs"]
        ],
    )
    logger_cols = (
        "device_id",
        "model",
        "calibration_cert",
        "calibration_due",
        "calibration_overdue",
        "readings_after_calibration_due",
        "interval_s",
        "assigned_from",
        "assigned_to",
        "readings",
        "expected_readings",
        "completeness",
        "first_reading",
        "last_reading",
        "min_c",
        "max_c",
        "time_in_gaps_s",
    )
    # .get: evidence frozen before a column existed (a signed snapshot) shows it empty
    block("loggers", logger_cols, [tuple(lg.get(k) for k in logger_cols) for lg in ev["loggers"]])
    block(
        "gaps",
        ["device_id", "start", "end", "duration_s", "open"],
        [
            (lg["device_id"], g["start"], g["end"], g["duration_s"], g["open"])
            for lg in ev["loggers"]
            for g in lg["gaps"]
        ],
    )
    exc_cols = (
        "id",
        "device_id",
        "direction",
        "start",
        "end",
        "open",
        "ended_by_gap",
        "duration_s",
        "min_c",
        "max_c",
        "degree_minutes",
        "n_readings",
        "readings_over_40",
        "readings_freezing",
        "alarm",
        "alarm_at",
        "freeze_alarm",
        "rule_key",
        "thresholds_as_evaluated",
    )
    block("excursions", exc_cols, [tuple(e[k] for k in exc_cols) for e in ev["excursions"]])
    mkt_cfg = ev["rules"]["mkt"]
    mkt_rows = []
    for lg in ev["loggers"]:
        for scope in ("window", "whole_trip"):
            m = lg["mkt"][scope]
            if m is None:
                continue
            mkt_rows.append(
                (
                    lg["device_id"],
                    scope,
                    m["start"],
                    m["end"],
                    m["mkt_c"],
                    m["time_weighted_mean_c"],
                    m["n_readings"],
                    m["duration_covered_s"],
                    mkt_cfg["delta_h_j_mol"],
                    mkt_cfg["weighting"],
                    mkt_cfg["window_h"],
                    mkt_cfg["limit_c"],
                    m["above_limit"],
                )
            )
    block(
        "mkt",
        [
            "device_id",
            "scope",
            "start",
            "end",
            "mkt_c",
            "time_weighted_mean_c",
            "n_readings",
            "duration_covered_s",
            "delta_h_j_mol",
            "weighting",
            "window_h",
            "limit_c",
            "above_limit",
        ],
        mkt_rows,
    )
    budget_cols = (
        "budget_s",
        "time_in_range_s",
        "time_out_of_range_s",
        "time_in_gaps_s",
        "counted_s",
        "remaining_s",
        "share_used",
        "status",
        "warning_at",
        "exhausted_at",
    )
    block(
        "budget",
        ["device_id", *budget_cols],
        [
            (lg["device_id"], *(lg["budget"][k] for k in budget_cols))
            for lg in ev["loggers"]
            if lg["budget"] is not None
        ],
    )
    block(
        "alerts",
        [
            "id",
            "rule_key",
            "severity",
            "state_as_of",
            "title",
            "device_id",
            "triggered_at",
            "value",
            "acknowledged",
        ],
        [
            (
                a["id"],
                a["rule_key"],
                a["severity"],
                a["state_as_of"],
                a["title"],
                a["device_id"],
                a["triggered_at"],
                a["value"],
                a["acknowledged"],
            )
            for a in ev["alerts"]
        ],
    )
    disp_cols = (
        "id",
        "lot",
        "decision",
        "reason",
        "meaning",
        "signer_name",
        "signer_username",
        "signer_role",
        "signed_at",
        "report_hash",
        "supersedes",
        "superseded_by",
        "current",
        "signature_hash",
    )
    block("dispositions", disp_cols, [tuple(d[k] for k in disp_cols) for d in doc["dispositions"]])
    block(
        "readings",
        ["device_id", "ts", "temp_c"],
        [(r["device_id"], r["ts"], r["temp_c"]) for r in ev["readings"]],
    )
    return out.getvalue().encode("utf-8")


# ---------------------------------------------------------------------------------------------
# PDF (fpdf2, core fonts)
# ---------------------------------------------------------------------------------------------

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
    return "-" if value is None else f"{value:.1f} C"


class _Pdf(FPDF):
    def __init__(self, content_hash: str, title: str) -> None:
        super().__init__(orientation="P", unit="mm", format="A4")
        self._hash = content_hash
        self._title = title

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


def render_pdf(doc: JsonDict) -> bytes:
    """The report for people and inspectors, with the signatures and the content hash."""
    ev = doc["evidence"]
    ship = ev["shipment"]
    product = ev["product"]
    title = f"Excursion report {ship['reference']}"
    pdf = _Pdf(doc["content_hash"], title)
    pdf.set_title(latin1(title))
    pdf.set_author("coldchain")
    pdf.set_creator("coldchain reports")
    # Reproducible bytes: the creation date is the report's as_of, not the time of rendering.
    pdf.set_creation_date(datetime.fromisoformat(ev["as_of"].replace("Z", "+00:00")))
    pdf.set_auto_page_break(True, margin=16)
    pdf.set_margins(14, 14, 14)
    pdf.add_page()

    def heading(text: str) -> None:
        pdf.ln(2)
        pdf.set_font("helvetica", "B", 11)
        pdf.cell(0, 7, latin1(text), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.set_font("helvetica", size=8.5)

    def line(text: str, *, bold: bool = False) -> None:
        pdf.set_font("helvetica", "B" if bold else "", 8.5)
        pdf.multi_cell(0, 4.4, latin1(text), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.set_font("helvetica", size=8.5)

    def table(
        header: Sequence[str], rows: Sequence[Sequence[Any]], widths: Sequence[float]
    ) -> None:
        if not rows:
            line("(none)")
            return
        pdf.set_font("helvetica", size=7.5)
        with pdf.table(col_widths=tuple(widths), line_height=4.2, text_align="LEFT") as t:
            head = t.row()
            for h in header:
                head.cell(latin1(h))
            for r in rows:
                row = t.row()
                for v in r:
                    row.cell(latin1(v))
        pdf.set_font("helvetica", size=8.5)

    pdf.set_font("helvetica", "B", 15)
    pdf.cell(0, 9, latin1(title), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    line(f"Evidence as of {_when(ev['as_of'])} ({ev['as_of']}). Format {ev['format']}.")
    line(f"Content SHA-256: {doc['content_hash']}", bold=True)
    if doc["frozen_snapshot_id"] is not None:
        line(f"Frozen record: snapshot {doc['frozen_snapshot_id']} (as signed).")

    heading("1. Product and lots")
    if product is None:
        line("No product is recorded for this shipment.")
    else:
        line(
            f"{product['name']} - GTIN {product['gtin']} - labelled range {product['labelled_range']}"
        )
        line(
            f"Freeze limit {_temp(product['freeze_limit_c'])}; alarm delay "
            f"{_duration(product['alarm_delay_s'])}; stability budget "
            f"{_duration(product['stability_budget_s'])}"
        )
    table(
        ["GTIN", "Lot", "Expiry", "Units"],
        [(x["gtin"], x["lot"], x["expiry"], x["units"]) for x in ev["lots"]],
        [40, 50, 40, 52],
    )
    ssccs = [u["sscc"] for u in ev["units"] if u["kind"] == "sscc"]
    serials = [u["serial"] for u in ev["units"] if u["kind"] == "sgtin"]
    line(
        f"Units on board: {len(ssccs)} SSCC ({', '.join(ssccs[:6])}{' ...' if len(ssccs) > 6 else ''}), "
        f"{len(serials)} serialised items (all listed in the JSON/CSV report)."
    )

    heading("2. Shipment")
    line(
        f"{ship['reference']}: {ship['lane']}; status {ship['status']}; carrier {ship['carrier'] or '-'}; "
        f"planned {_when(ship['planned_departure'])} to {_when(ship['planned_arrival'])}"
    )
    table(
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

    heading("3. Loggers and data completeness")
    table(
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
        line("Data gaps (unknown time, never counted as in range):")
        table(
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
            line(f"... and {len(gaps) - 40} more gaps (JSON/CSV report).")

    heading("4. Rules and thresholds")
    rules = ev["rules"]
    t = rules["temperature"]
    if t is None:
        line("No temperature rule: nothing to judge excursions against.")
    else:
        line(
            f"Range {_temp(t['low_c'])} to {_temp(t['high_c'])}; freeze limit {_temp(t['freeze_c'])}; "
            f"alarm delay {_duration(t['alarm_delay_s'])}; gap rule: silence longer than "
            f"{rules['gap_factor']} x the logging interval."
        )
    m = rules["mkt"]
    line(
        f"MKT: dH = {m['delta_h_j_mol']:g} J/mol, R = 8.3144 J/(mol K), weighting '{m['weighting']}', "
        f"window {m['window_h']:g} h, limit {_temp(m['limit_c'])} ({m['source']})."
    )
    b = rules["budget"]
    line(
        "Stability budget: none."
        if b is None
        else f"Stability budget: {b['hours']:g} h out of range; warning at {b['warning_share'] * 100:.0f} %; "
        f"gaps counted as out of range: {'yes' if b['count_gaps_as_out'] else 'no'}."
    )
    sources = rules["in_force"].get("sources") if isinstance(rules["in_force"], dict) else None
    if sources:
        line("Rule layers in force: " + "; ".join(str(s) for s in sources))
    line("Each excursion below also lists the thresholds it was evaluated against (JSON/CSV).")

    heading("5. Excursions")
    totals = ev["totals"]
    line(
        f"{totals['excursions']} excursion(s), {totals['alarmed_excursions']} alarmed; "
        f"{_duration(totals['time_out_of_range_s'])} out of range; "
        f"{totals['degree_minutes']:g} degree-minutes in all."
    )
    table(
        ["Logger", "Dir", "Start", "End", "Duration", "Min", "Max", "C.min", "Alarm"],
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

    heading("6. Mean kinetic temperature")
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
                    f"{mk['mkt_c']:.2f} C",
                    _temp(mk["time_weighted_mean_c"]),
                    mk["n_readings"],
                    _duration(mk["duration_covered_s"]),
                    verdict,
                )
            )
    table(
        ["Logger", "Window", "From - to", "MKT", "Mean", "Readings", "Covered", "vs limit"],
        rows,
        [20, 20, 52, 16, 16, 16, 22, 20],
    )

    heading("7. Cumulative exposure against the stability budget")
    table(
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

    heading("8. Alerts and acknowledgements")
    table(
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

    heading("9. Dispositions and electronic signatures")
    if not doc["dispositions"]:
        line("No disposition has been signed.")
    for d in doc["dispositions"]:
        scope = f"lot {d['lot']}" if d["lot"] else "whole shipment"
        status = "current" if d["current"] else f"SUPERSEDED by #{d['superseded_by']}"
        line(
            f"#{d['id']}  {DECISION_LABELS.get(d['decision'], d['decision'])} - {scope} - {status}",
            bold=True,
        )
        line(f"Reason: {d['reason']}")
        line(d["signature"])
        line(
            f"Signer: {d['signer_name']} (printed name), user {d['signer_username']}, role "
            f"{d['signer_role']}; signed {d['signed_at']}; meaning: {d['meaning']}"
        )
        extra = f"; supersedes #{d['supersedes']}" if d["supersedes"] else ""
        line(f"Signed report hash {d['report_hash']}{extra}")
        line(f"Signature record SHA-256 {d['signature_hash']}")
        pdf.ln(1.5)

    heading("About this report")
    line(HASH_NOTE)
    line(
        f"{totals['readings']} readings are part of the evidence; they are listed in the JSON and "
        "CSV forms of this report. Times are UTC, on the loggers' own measurement clocks."
    )
    return bytes(pdf.output())
