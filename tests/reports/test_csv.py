"""The report's two CSV files (pure): tidy readings, one row per reading; a summary, one row per
figure; both read by the csv module and by pandas, no JSON in any cell, nothing of the report
lost."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import pytest

from reports.assemble import assemble, evidence_hash
from reports.csv_files import (
    READINGS_HEADER,
    SUMMARY_HEADER,
    render_readings_csv,
    render_summary_csv,
)
from reports.render import document
from tests.reports.inputs import T0, make_inputs


def _doc() -> dict[str, Any]:
    base = make_inputs()
    logger = base.loggers[0]
    # humidity and position on every other reading (a logger without GPS fix sends none)
    details = {
        ts: (40.0 + i % 5, 51.9 + i / 1000, 4.4)
        for i, (ts, _t) in enumerate(logger.readings)
        if i % 2 == 0
    }
    ev = assemble(make_inputs(loggers=[dataclasses.replace(logger, details=details)]))
    return document(ev, evidence_hash(ev), [])


@pytest.fixture
def doc() -> dict[str, Any]:
    return _doc()


def _rows(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode("utf-8"))))


def test_one_row_per_reading_with_its_range_and_excursion(doc: dict[str, Any]) -> None:
    ev = doc["evidence"]
    data = render_readings_csv(doc)
    rows = _rows(data)
    assert tuple(rows[0]) == READINGS_HEADER
    assert len(rows) == ev["totals"]["readings"] == len(ev["readings"]) == 67
    frame = pd.read_csv(io.BytesIO(data))
    assert len(frame) == len(rows) and list(frame.columns) == list(READINGS_HEADER)
    assert frame["temperature_c"].dtype.kind == "f"
    times = pd.to_datetime(frame["time_utc"], utc=True, format="ISO8601")
    assert times.is_monotonic_increasing and times.iloc[0] == pd.Timestamp(T0)
    (exc,) = ev["excursions"]
    start = datetime.fromisoformat(exc["start"].replace("Z", "+00:00"))
    end = datetime.fromisoformat(exc["end"].replace("Z", "+00:00"))
    for r in rows:
        ts = datetime.fromisoformat(r["time_utc"].replace("Z", "+00:00"))
        assert ts.tzinfo is not None and ts.utcoffset() == timedelta(0)
        assert r["logger"] == "LOG-1"
        temp = float(r["temperature_c"])
        assert r["in_range"] == ("yes" if 2.0 <= temp <= 8.0 else "no")
        assert r["excursion_id"] == (str(exc["id"]) if start <= ts < end else "")
    assert sum(r["in_range"] == "no" for r in rows) == exc["n_readings"] == 8
    assert sum(r["excursion_id"] != "" for r in rows) == exc["n_readings"]


def test_humidity_and_position_where_the_logger_sent_them(doc: dict[str, Any]) -> None:
    rows = _rows(render_readings_csv(doc))
    with_fix = [r for r in rows if r["lat"]]
    assert len(with_fix) == (len(rows) + 1) // 2
    first = rows[0]
    assert (float(first["humidity_pct"]), float(first["lat"]), float(first["lon"])) == (
        40.0, 51.9, 4.4
    )  # fmt: skip
    assert (rows[1]["humidity_pct"], rows[1]["lat"], rows[1]["lon"]) == ("", "", "")


def test_no_json_in_any_cell(doc: dict[str, Any]) -> None:
    for data in (render_readings_csv(doc), render_summary_csv(doc)):
        for row in csv.reader(io.StringIO(data.decode())):
            for cell in row:
                assert not cell.startswith(("{", "[")), cell


def _flat(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            out |= _flat(v, f"{prefix}.{k}" if prefix else k)
        return out
    if isinstance(value, list) and value:
        out = {}
        for i, v in enumerate(value, start=1):
            out |= _flat(v, f"{prefix}.{i}")
        return out
    return {prefix: None if value == [] else value}


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def test_the_summary_holds_every_figure_of_the_report(doc: dict[str, Any]) -> None:
    ev = doc["evidence"]
    data = render_summary_csv(doc)
    rows = _rows(data)
    assert tuple(rows[0]) == SUMMARY_HEADER
    frame = pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False)
    assert len(frame) == len(rows)
    got = {(r["section"], r["item"], r["field"]): r["value"] for r in rows}
    assert len(got) == len(rows)  # one row per figure
    # the figures people look for first
    assert got[("totals", "", "readings")] == str(ev["totals"]["readings"]) == "67"
    assert got[("excursions", "1", "max_c")] == "9.5"
    assert got[("loggers", "LOG-1", "mkt.window.mkt_c")] == str(
        ev["loggers"][0]["mkt"]["window"]["mkt_c"]
    )
    assert got[("loggers", "LOG-1", "budget.share_used")] == str(
        ev["loggers"][0]["budget"]["share_used"]
    )
    assert got[("alerts", "3", "acknowledged.1.by")] == "ana.ruiz"
    assert got[("report", "", "content_hash")] == doc["content_hash"]
    # and every other: each leaf of the JSON report, readings aside, is a row with its value
    expected = 0
    for section, body in ev.items():
        if section in ("format", "as_of", "readings"):
            continue
        elements = body if isinstance(body, list) else [body]
        for element in elements:
            for name, value in _flat(element).items():
                matches = [v for (s, _i, f), v in got.items() if s == section and f == name]
                assert _cell(value) in matches, (section, name)
                expected += 1
    assert expected + 5 == len(rows)  # the 5 rows of the "report" section: format, hash …
    units = {r["field"]: r["unit"] for r in rows if r["section"] == "excursions"}
    assert (units["max_c"], units["duration_s"], units["direction"]) == ("°C", "s", "")
    assert units["degree_minutes"] == "°C·min"


def test_a_report_without_excursions_or_rules_still_makes_both_files() -> None:
    ev = assemble(make_inputs(excursions=[], rules={}, as_of=datetime(2026, 11, 26, 6, tzinfo=UTC)))
    doc = document(ev, evidence_hash(ev), [])
    rows = _rows(render_readings_csv(doc))
    assert len(rows) == 67
    assert {r["in_range"] for r in rows} == {""}  # no rule: not judged, not "yes"
    assert {r["excursion_id"] for r in rows} == {""}
    summary = _rows(render_summary_csv(doc))
    assert not [r for r in summary if r["section"] == "excursions"]
    assert json.loads(json.dumps(summary))  # plain strings only
