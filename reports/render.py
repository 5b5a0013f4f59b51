"""The report as JSON, CSV and PDF bytes, from its evidence and its signed dispositions (pure).

Every renderer is deterministic: the same evidence and dispositions give the same bytes (the PDF
carries the report's ``as_of`` as its creation date, and no random file id), which is what lets a
signed report be reproduced from its frozen snapshot. Texts in the PDF use the PDF core fonts
(Latin-1), so a few symbols are spelled out (ΔH → dH, → → ->); its page and its sections are
:mod:`reports.pdf_sections`.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from reports import pdf_sections as section
from reports.assemble import JsonDict, iso
from security.signatures import manifestation

HASH_NOTE = (
    "Content hash: SHA-256 over the canonical JSON of the report's evidence (keys sorted, no "
    "spaces, UTF-8), i.e. of the 'evidence' object of report.json, readings included. The same "
    "evidence gives the same hash and the same report, byte for byte."
)


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
    verdicts and their bands (evidence format 2 on), alerts, dispositions, readings."""
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
    if "verdicts" in ev:  # format 2 on: an older frozen record renders as it was signed
        verdict_cols = ("gtin", "product", "verdict", "profile_version", "judged_by",
                        "evaluated_at", "evaluated_by")  # fmt: skip
        block(
            "verdicts",
            [*verdict_cols, "reasons"],
            [
                (*(v[k] for k in verdict_cols), " | ".join(r["message"] for r in v["reasons"]))
                for v in ev["verdicts"]
            ],
        )
        band_cols = ("key", "label", "low_c", "high_c", "budget_s", "used_s", "remaining_s",
                     "share", "exceeded")  # fmt: skip
        block(
            "verdict_bands",
            ["gtin", "profile_version", *band_cols],
            [
                (v["gtin"], v["profile_version"], *(b.get(k) for k in band_cols))
                for v in ev["verdicts"]
                for b in v["bands"]
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
# PDF (fpdf2, core fonts): the page and the sections are reports.pdf_sections
# ---------------------------------------------------------------------------------------------


def render_pdf(doc: JsonDict) -> bytes:
    """The report for people and inspectors, with the signatures and the content hash."""
    title = section.report_title(doc)
    pdf = section.ReportPdf(doc["content_hash"], title)
    pdf.set_title(section.latin1(title))
    pdf.set_author("coldchain")
    pdf.set_creator("coldchain reports")
    # Reproducible bytes: the creation date is the report's as_of, not the time of rendering.
    pdf.set_creation_date(datetime.fromisoformat(doc["evidence"]["as_of"].replace("Z", "+00:00")))
    pdf.set_auto_page_break(True, margin=16)
    pdf.set_margins(14, 14, 14)
    pdf.add_page()
    section.title_block(pdf, doc)
    section.temperature_chart(pdf, doc)
    section.product_and_lots(pdf, doc)
    section.shipment(pdf, doc)
    section.loggers(pdf, doc)
    section.rules(pdf, doc)
    section.excursions(pdf, doc)
    section.mean_kinetic_temperature(pdf, doc)
    section.budget(pdf, doc)
    section.verdicts(pdf, doc)
    section.alerts(pdf, doc)
    section.dispositions(pdf, doc)
    section.about(pdf, doc, hash_note=HASH_NOTE)
    return bytes(pdf.output())
