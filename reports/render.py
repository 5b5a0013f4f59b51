"""The report as JSON and PDF bytes, from its evidence and its signed dispositions (pure); its two
CSV files (readings, summary) are :mod:`reports.csv_files`.

Every renderer is deterministic: the same evidence and dispositions give the same bytes (the PDF
carries the report's ``as_of`` as its creation date, and no random file id), which is what lets a
signed report be reproduced from its frozen snapshot. Texts in the PDF use the PDF core fonts
(Latin-1), so a few symbols are spelled out (ΔH → dH, → → ->); its page and its sections are
:mod:`reports.pdf_sections`.
"""

from __future__ import annotations

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
