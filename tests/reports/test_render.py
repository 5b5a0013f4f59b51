"""JSON, CSV and PDF renderings (pure): deterministic, complete, with the signatures."""

from __future__ import annotations

import csv
import io
import json
import re
import zlib
from datetime import UTC, datetime
from typing import Any

import pytest

from coldchain.canonical import canonical_json
from reports.assemble import assemble, evidence_hash
from reports.csv_files import render_readings_csv, render_summary_csv
from reports.pdf_sections import latin1
from reports.render import disposition_records, document, render_json, render_pdf
from tests.reports.inputs import make_inputs

SIGNED_AT = datetime(2026, 11, 26, 7, 8, 9, 123456, tzinfo=UTC)


def _disposition(id_: int, decision: str, supersedes: int | None) -> dict[str, Any]:
    return {
        "disposition_id": id_,
        "shipment_id": 7,
        "lot": None,
        "decision": decision,
        "reason": "reviewed the excursion",
        "meaning": "Approval: the product is released for sale or use",
        "signer_user_id": 3,
        "signer_username": "quinn.qa",
        "signer_name": "Quinn Quality",
        "signer_role": "qa",
        "signed_at": SIGNED_AT,
        "snapshot_id": 1,
        "report_hash": "a" * 64,
        "supersedes": supersedes,
        "signature_hash": "b" * 64,
    }


@pytest.fixture
def doc() -> dict[str, Any]:
    ev = assemble(make_inputs())
    rows = [_disposition(1, "quarantine", None), _disposition(2, "release", 1)]
    return document(ev, evidence_hash(ev), disposition_records(rows))


def pdf_text(data: bytes) -> str:
    """The text drawn in a PDF made with the core fonts (content streams inflated)."""
    out = []
    for stream in re.findall(rb"stream\r?\n(.*?)\r?\nendstream", data, re.S):
        try:
            out.append(zlib.decompress(stream).decode("latin-1"))
        except zlib.error:
            out.append(stream.decode("latin-1"))
    return "".join(out).replace("\\(", "(").replace("\\)", ")")


def test_superseded_records_stay_and_say_by_which(doc: dict[str, Any]) -> None:
    first, second = doc["dispositions"]
    assert (first["current"], first["superseded_by"]) == (False, 2)
    assert (second["current"], second["supersedes"]) == (True, 1)
    assert second["signature"] == (
        "Signed by Quinn Quality (quinn.qa, qa) on 2026-11-26 07:08:09 UTC — "
        "Approval: the product is released for sale or use"
    )


def test_every_format_is_byte_for_byte_reproducible(doc: dict[str, Any]) -> None:
    # what a frozen snapshot gives back: the evidence through canonical JSON
    frozen = document(
        json.loads(canonical_json(doc["evidence"])), doc["content_hash"], doc["dispositions"]
    )
    for render in (render_json, render_readings_csv, render_summary_csv, render_pdf):
        assert render(doc) == render(doc) == render(frozen)


def test_json_carries_the_hash_that_recomputes_from_its_evidence(doc: dict[str, Any]) -> None:
    body = json.loads(render_json(doc))
    assert body["content_hash"] == evidence_hash(body["evidence"])
    assert "canonical JSON" in body["content_hash_rule"]


def test_pdf_prints_hash_signatures_and_figures(doc: dict[str, Any]) -> None:
    data = render_pdf(doc)
    assert data.startswith(b"%PDF-")
    text = pdf_text(data)
    for expected in (
        doc["content_hash"],
        "Signed by Quinn Quality (quinn.qa, qa) on 2026-11-26 07:08:09 UTC",
        "SUPERSEDED by #2",
        "RELEASE",
        "Approval: the product is released for sale or use",
        "Vaccine X 10 ml",
        "CAL-1",
        "dH = 83144 J/mol",
        "weighting 'step'",
        "L42",
    ):
        assert expected in text, expected


def _summary(doc: dict[str, Any], section: str) -> dict[str, dict[str, str]]:
    """The summary CSV's rows of one section: item → {field: value}."""
    out: dict[str, dict[str, str]] = {}
    for r in csv.DictReader(io.StringIO(render_summary_csv(doc).decode())):
        if r["section"] == section:
            out.setdefault(r["item"], {})[r["field"]] = r["value"]
    return out


def test_the_verdict_at_arrival_in_json_csv_and_pdf(doc: dict[str, Any]) -> None:
    (v,) = doc["evidence"]["verdicts"]
    assert json.loads(render_json(doc))["evidence"]["verdicts"] == [v]

    row = _summary(doc, "verdicts")[v["gtin"]]
    assert (row["verdict"], row["profile_version"], row["judged_by"]) == (
        "exception", "2", "profile version 2"
    )  # fmt: skip
    assert row["reasons.1.message"] == v["reasons"][0]["message"]
    assert [
        (row[f"bands.{i}.key"], float(row[f"bands.{i}.used_s"]), float(row[f"bands.{i}.budget_s"]))
        for i in range(1, len(v["bands"]) + 1)
    ] == [(b["key"], b["used_s"], b["budget_s"]) for b in v["bands"]]

    text = pdf_text(render_pdf(doc))
    hot = v["bands"][0]
    for expected in (
        "8. Stability verdict at arrival",
        f"EXCEPTION - judged by {v['judged_by']}",
        latin1(v["reasons"][0]["message"]),
        f"{hot['share'] * 100:.1f} %",
        "9. Alerts and acknowledgements",
        "10. Dispositions and electronic signatures",
    ):
        assert expected in text, expected


def test_a_record_frozen_in_the_first_format_renders_as_it_was_signed(
    doc: dict[str, Any],
) -> None:
    """A snapshot signed before the verdicts were evidence: no verdict section, no hole in the
    numbering, every block of its own format."""
    old = {k: v for k, v in doc["evidence"].items() if k != "verdicts"}
    old["format"] = "coldchain-excursion-report/1"
    frozen = document(old, evidence_hash(old), doc["dispositions"], snapshot_id=1)

    assert "verdicts" not in json.loads(render_json(frozen))["evidence"]
    assert _summary(frozen, "verdicts") == {}
    assert _summary(frozen, "report")[""]["format"] == "coldchain-excursion-report/1"
    # humidity and position were not evidence then: their cells are empty, the rest is there
    readings = list(csv.DictReader(io.StringIO(render_readings_csv(frozen).decode())))
    assert len(readings) == len(old["readings"])
    assert {(r["humidity_pct"], r["lat"], r["lon"]) for r in readings} == {("", "", "")}
    text = pdf_text(render_pdf(frozen))
    assert "Stability verdict" not in text
    assert "8. Alerts and acknowledgements" in text
    assert "9. Dispositions and electronic signatures" in text
    assert "Format coldchain-excursion-report/1" in text
