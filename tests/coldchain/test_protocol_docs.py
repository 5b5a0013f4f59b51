"""docs/PROTOCOL.md, the JSON Schemas and the parser say the same thing."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from coldchain.telemetry import (
    EARLIEST_TS,
    Limits,
    parse_payload,
    status_topic,
    telemetry_topic,
)

ROOT_DIR = Path(__file__).resolve().parents[2]
SCHEMAS = ROOT_DIR / "coldchain" / "schemas"
TELEMETRY = Draft202012Validator(json.loads((SCHEMAS / "telemetry.schema.json").read_text()))
STATUS = Draft202012Validator(json.loads((SCHEMAS / "status.schema.json").read_text()))
NOW = datetime(2026, 11, 26, 3, 5, tzinfo=UTC)
ROOT = "coldchain/v1"


def parse(doc: object, kind: str = "telemetry"):
    topic = (telemetry_topic if kind == "telemetry" else status_topic)(ROOT, "LOG-000123")
    return parse_payload(topic, json.dumps(doc).encode(), root=ROOT, now=NOW, limits=Limits())


def doc_examples() -> list[object]:
    text = (ROOT_DIR / "docs" / "PROTOCOL.md").read_text()
    return [json.loads(block) for block in re.findall(r"```json\n(.*?)```", text, re.S)]


def test_the_protocol_page_has_examples() -> None:
    assert len(doc_examples()) == 4


@pytest.mark.parametrize("example", doc_examples())
def test_every_documented_example_is_valid_and_parses(example: object) -> None:
    is_status = isinstance(example, dict) and "online" in example
    validator, kind = (STATUS, "status") if is_status else (TELEMETRY, "telemetry")
    validator.validate(example)
    parsed = parse(example, kind)
    assert parsed.rejections == ()
    assert parsed.readings or parsed.status


BAD = [
    {"temp_c": 4},
    {"ts": "2026-11-26T02:00:00Z", "temp_c": "warm"},
    {"ts": "2026-11-26T02:00:00Z", "temp_c": 101},
    {"ts": "2026-11-26T02:00:00Z", "rh": -1},
    {"ts": "2026-11-26T02:00:00Z", "lat": 90.5},
    {"ts": "2026-11-26T02:00:00Z", "battery": 2},
    {"ts": "2026-11-26T02:00:00", "temp_c": 4},
    {"device_id": "bad id!", "ts": "2026-11-26T02:00:00Z"},
    {"readings": [{"temp_c": 4}]},
    {"ts": "2026-11-26T02:00:00Z", "temp_c": "5.5"},
    {"ts": "2026-11-26T02:00:00Z", "temp_c": True},
    {"ts": -1000, "temp_c": 4},
    {"ts": 946684799999, "temp_c": 4},
    {"readings": [{"ts": 0}]},
]


@pytest.mark.parametrize("doc", BAD)
def test_schema_and_parser_refuse_the_same_things(doc: dict[str, object]) -> None:
    assert not TELEMETRY.is_valid(doc)
    parsed = parse(doc)
    assert parsed.readings == ()
    assert parsed.rejections


BAD_STATUS = [
    {"online": True, "firmware": "\u0000"},
    {"online": "yes"},
    {"online": True, "battery": "0.5"},
    {"online": True, "ts": -5},
]


@pytest.mark.parametrize("doc", BAD_STATUS)
def test_schema_and_parser_refuse_the_same_statuses(doc: dict[str, object]) -> None:
    assert not STATUS.is_valid(doc)
    parsed = parse(doc, "status")
    assert parsed.status is None
    assert parsed.rejections


def test_the_earliest_time_is_the_same_in_docs_schemas_and_parser() -> None:
    millis = int(EARLIEST_TS.timestamp() * 1000)
    text = (ROOT_DIR / "docs" / "PROTOCOL.md").read_text()
    assert f"not before {EARLIEST_TS.isoformat().replace('+00:00', 'Z')}" in text
    assert f"is before {EARLIEST_TS.isoformat().replace('+00:00', 'Z')}" in text
    for name in ("telemetry.schema.json", "status.schema.json"):
        assert f'"minimum": {millis}' in (SCHEMAS / name).read_text()
    assert TELEMETRY.is_valid({"ts": millis}) and parse({"ts": millis}).readings
    assert not TELEMETRY.is_valid({"ts": millis - 1}) and not parse({"ts": millis - 1}).readings
