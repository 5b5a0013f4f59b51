"""The PDF as a reader gets it, read back with pypdf: the temperature chart on the first page,
identifiers whole, one unit style, a signature block never split across pages."""

from __future__ import annotations

import dataclasses
import io
import re
from datetime import UTC, datetime
from typing import Any

import pytest
from pypdf import PdfReader

from reports.assemble import assemble, evidence_hash
from reports.pdf_chart import BAND_FILL, EXCURSION_FILL, LOGGER_COLOURS
from reports.render import disposition_records, document, render_pdf
from tests.reports.inputs import make_inputs

LONG_ID = "ELPRO-LIBERO-CB-00012345678"
MM = 72 / 25.4


def _disposition(id_: int) -> dict[str, Any]:
    return {
        "disposition_id": id_,
        "shipment_id": 7,
        "lot": None,
        "decision": "quarantine" if id_ % 2 else "release",
        "reason": f"reviewed the excursion, round {id_}",
        "meaning": "Approval: the product is released for sale or use",
        "signer_user_id": 3,
        "signer_username": "quinn.qa",
        "signer_name": "Quinn Quality",
        "signer_role": "qa",
        "signed_at": datetime(2026, 11, 26, 7, id_, tzinfo=UTC),
        "snapshot_id": 1,
        "report_hash": "a" * 64,
        "supersedes": id_ - 1 if id_ > 1 else None,
        "signature_hash": f"{id_:02d}" * 32,
    }


def _doc(n_dispositions: int = 2) -> dict[str, Any]:
    """Two loggers, one with a long serial that carries the excursion."""
    base = make_inputs()
    short = base.loggers[0]
    long = dataclasses.replace(short, device_id=LONG_ID)
    inputs = make_inputs(
        loggers=[short, long],
        excursions=[{**base.excursions[0], "device_id": LONG_ID}],
    )
    ev = assemble(inputs)
    rows = [_disposition(i) for i in range(1, n_dispositions + 1)]
    return document(ev, evidence_hash(ev), disposition_records(rows))


def _reader(doc: dict[str, Any]) -> PdfReader:
    return PdfReader(io.BytesIO(render_pdf(doc)))


def _shapes(page: Any) -> tuple[list[tuple[tuple[float, ...], tuple[float, ...]]], dict[Any, int]]:
    """The page's filled rectangles (fill colour, x y w h) and its line segments per stroke
    colour, from the content stream's operators."""
    fill: tuple[float, ...] = (0.0,)
    stroke: tuple[float, ...] = (0.0,)
    pending: list[tuple[float, ...]] = []
    rects: list[tuple[tuple[float, ...], tuple[float, ...]]] = []
    segments: dict[Any, int] = {}
    for operands, op in page.get_contents().operations:
        if op == b"rg":
            fill = tuple(round(float(v), 2) for v in operands)
        elif op == b"RG":
            stroke = tuple(round(float(v), 2) for v in operands)
        elif op == b"re":
            pending.append(tuple(float(v) for v in operands))
        elif op in (b"f", b"F", b"f*"):
            rects.extend((fill, r) for r in pending)
            pending = []
        elif op in (b"S", b"s", b"n", b"B"):
            pending = []
        elif op == b"l":
            segments[stroke] = segments.get(stroke, 0) + 1
    return rects, segments


def _rgb(colour: tuple[int, int, int]) -> tuple[float, ...]:
    return tuple(round(c / 255, 2) for c in colour)


def test_the_first_page_has_the_temperature_chart_with_band_and_excursion() -> None:
    doc = _doc()
    ev = doc["evidence"]
    page = _reader(doc).pages[0]
    rects, segments = _shapes(page)
    wide = [(colour, r) for colour, r in rects if abs(r[2]) > 10 * MM]  # not the legend's swatches
    bands = [r for colour, r in wide if colour == _rgb(BAND_FILL)]
    spans = [r for colour, r in wide if colour == _rgb(EXCURSION_FILL)]
    assert len(bands) == 1
    assert len(spans) == len(ev["excursions"]) == 1
    # the excursion (40 min of a 6 h trip) is shaded over its share of the band's width
    (band,), (span,) = bands, spans
    ratio = span[2] / band[2]
    assert ratio == pytest.approx(40 * 60 / (5 * 3600 + 55 * 60), rel=0.02)
    # one line per logger through its readings, broken at its gap
    for i, lg in enumerate(ev["loggers"]):
        drawn = segments.get(_rgb(LOGGER_COLOURS[i]), 0)
        assert drawn >= lg["readings"] - 1 - len(lg["gaps"]), lg["device_id"]
    text = page.extract_text()
    assert f"Temperature (°C, UTC), {ev['totals']['readings']} readings" in text
    assert "range 2.0 °C to 8.0 °C" in text and "excursion (shaded)" in text


def test_a_long_logger_serial_is_never_broken_across_lines() -> None:
    lines = [line for page in _reader(_doc()).pages for line in page.extract_text().splitlines()]
    with_prefix = [line for line in lines if "ELPRO-LIB" in line or "00012345678" in line]
    # the loggers, gaps, excursions, MKT (twice) and budget tables, and the chart's legend
    assert len(with_prefix) >= 7
    for line in with_prefix:
        assert LONG_ID in line, line


def test_temperatures_are_in_degrees_celsius_everywhere() -> None:
    text = "\n".join(page.extract_text() for page in _reader(_doc()).pages)
    assert re.findall(r"\d C\b", text) == []
    assert "9.5 °C" in text and "5.70 °C" in text and "°C·min" in text


def test_a_signature_block_stays_on_one_page() -> None:
    doc = _doc(n_dispositions=8)
    pages = [page.extract_text().replace("\n", " ") for page in _reader(doc).pages]
    where: dict[int, set[int]] = {}
    for d in doc["dispositions"]:
        parts = (
            f"#{d['id']}  ",
            f"round {d['id']}",
            f"Signature record SHA-256 {d['signature_hash']}",
        )
        where[d["id"]] = {i for i, text in enumerate(pages) for p in parts if p in text}
    assert all(len(found) == 1 for found in where.values()), where
    assert len(set().union(*where.values())) >= 2  # the signatures do run over a page break
