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
from reports.pdf_sections import latin1
from reports.render import disposition_records, document, render_csv, render_json, render_pdf
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
    for render in (render_json, render_csv, render_pdf):
        assert render(doc) == render(doc) == render(frozen)


def test_json_carries_the_hash_that_recomputes_from_its_evidence(doc: dict[str, Any]) -> None:
    body = json.loads(render_json(doc))
    assert body["content_hash"] == evidence_hash(body["evidence"])
    assert "canonical JSON" in body["content_hash_rule"]


def test_csv_has_a_block_per_section(doc: dict[str, Any]) -> None:
    rows = list(csv.reader(io.StringIO(render_csv(doc).decode())))
    blocks = [r[0] for r in rows if r and r[0].startswith("## ")]
    assert blocks == [
        "## summary", "## lots", "## units", "## legs", "## loggers", "## gaps", "## excursions",
        "## mkt", "## budget", "## verdicts", "## verdict_bands", "## alerts", "## dispositions",
        "## readings",
    ]  # fmt: skip
    assert ["content_hash", doc["content_hash"]] in rows
    readings = rows[rows.index(["## readings"]) + 2 :]
    assert len([r for r in readings if r]) == 67


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


def _block(rows: list[list[str]], name: str) -> list[dict[str, str]]:
    """A CSV block's rows as dicts of its header."""
    start = rows.index([f"## {name}"])
    header = rows[start + 1]
    out = []
    for r in rows[start + 2 :]:
        if not r:
            break
        out.append(dict(zip(header, r, strict=True)))
    return out


def test_the_verdict_at_arrival_in_json_csv_and_pdf(doc: dict[str, Any]) -> None:
    (v,) = doc["evidence"]["verdicts"]
    assert json.loads(render_json(doc))["evidence"]["verdicts"] == [v]

    rows = list(csv.reader(io.StringIO(render_csv(doc).decode())))
    (row,) = _block(rows, "verdicts")
    assert (row["gtin"], row["verdict"], row["profile_version"], row["judged_by"]) == (
        v["gtin"], "exception", "2", "profile version 2"
    )  # fmt: skip
    assert row["reasons"] == v["reasons"][0]["message"]
    bands = _block(rows, "verdict_bands")
    assert [(b["key"], float(b["used_s"]), float(b["budget_s"])) for b in bands] == [
        (b["key"], b["used_s"], b["budget_s"]) for b in v["bands"]
    ]

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
    rows = list(csv.reader(io.StringIO(render_csv(frozen).decode())))
    blocks = [r[0] for r in rows if r and r[0].startswith("## ")]
    assert "## verdicts" not in blocks and "## verdict_bands" not in blocks
    assert blocks[-3:] == ["## alerts", "## dispositions", "## readings"]
    text = pdf_text(render_pdf(frozen))
    assert "Stability verdict" not in text
    assert "8. Alerts and acknowledgements" in text
    assert "9. Dispositions and electronic signatures" in text
    assert "Format coldchain-excursion-report/1" in text
