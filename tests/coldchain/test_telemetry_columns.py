"""The ingester's columnar parse gives exactly what parse_payload gives, message by message."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import coldchain.telemetry_columns as columns_module
from coldchain.telemetry import (
    Limits,
    Reading,
    batch_payload,
    parse_payload,
    reading_payload,
    status_topic,
    telemetry_topic,
)
from coldchain.telemetry_columns import ReadingColumns, from_pg_us, parse_into, to_pg_us
from tests.coldchain.test_telemetry import _READING, _TS, NOW, ROOT, TOPIC

LIMITS = Limits(max_batch_readings=5)


def both(payload: bytes, topic: str = TOPIC, limits: Limits = LIMITS) -> None:
    """parse_into and parse_payload agree on this message, and so does parse_into without its
    fast path; earlier columns are left as they were."""
    expected = parse_payload(topic, payload, root=ROOT, now=NOW, limits=limits)
    for fast in (True, False):
        columns_module.FAST_PATH = fast
        try:
            earlier = Reading("LOG-0", NOW - timedelta(days=1), 1.0)
            cols = ReadingColumns.of([earlier])
            got = parse_into(cols, topic, payload, root=ROOT, now=NOW, limits=limits)
        finally:
            columns_module.FAST_PATH = True
        assert got.readings == ()
        assert got.rejections == expected.rejections
        assert got.status == expected.status
        rows = list(cols.rows())
        assert rows[0] == earlier
        assert tuple(rows[1:]) == expected.readings
        for r in rows[1:]:
            for value in (r.temp_c, r.rh, r.lat, r.lon, r.battery):
                assert value is None or type(value) is float
        covered = sum(b - a for _, a, b in cols.runs)
        assert covered == len(cols)


_UPLOAD = st.fixed_dictionaries(
    {"readings": st.lists(_READING, max_size=7)},
    optional={
        "device_id": st.sampled_from(["LOG-000123", "LOG-9"]) | st.none(),
        "other": st.integers(),
    },
)


@settings(max_examples=400)
@given(
    payload=st.one_of(
        _READING.map(json.dumps),
        _UPLOAD.map(json.dumps),
        st.lists(_READING, max_size=3).map(json.dumps),
        st.binary(max_size=80).map(lambda b: b.decode("latin-1")),
        _TS.map(lambda ts: json.dumps({"ts": ts, "temp_c": 5.0})),
    )
)
def test_parse_into_gives_what_parse_payload_gives(payload: str) -> None:
    both(payload.encode())


@given(data=st.binary(max_size=200))
def test_parse_into_agrees_on_any_bytes(data: bytes) -> None:
    both(data)
    both(b'{"readings": [' + data + b"]}")


@pytest.mark.parametrize(
    "payload",
    [
        '{"ts": "2026-11-26T02:00:00Z", "temp_c": 5, "temp_c": 50}',  # duplicate key: last wins
        '{"ts": "2026-11-26T02:00:00Z", "temp_c": 500, "temp_c": 5}',
        '{"readings": [], "readings": [{"ts": "2026-11-26T02:00:00Z"}]}',
        '{"ts": "2026-11-26T02:00:00Z", "temp_c": NaN}',
        '{"ts": "2026-11-26T02:00:00Z", "temp_c": 1e400}',
        '{"ts": "2026-11-26T02:00:00Z", "temp_c": 100}',
        '{"ts": "2026-11-26T02:00:00Z", "temp_c": -100.0}',
        '{"ts": "2026-11-26T02:00:00Z", "temp_c": 100.00000000000001}',
        '{"ts": "2026-11-26T02:00:00Z", "battery": 1}',
        '{"ts": "2026-11-26T02:00:00Z", "temp_c": true}',
        '{"ts": "2026-11-26T02:00:00Z", "temp_c": "5"}',
        '{"ts": "2026-11-26T02:00:00.1234567Z"}',
        '{"ts": "2026-11-26T02:00:00z"}',
        '{"ts": " 2026-11-26T02:00:00Z"}',
        '{"ts": "2026-11-26Z"}',
        '{"ts": "2026-11-26"}',
        '{"ts": "2026-11-26T04:00:00+01:00"}',
        '{"ts": "2026-11-26T03:04:59Z"}',  # within max_future (5 min)
        '{"ts": "2026-11-26T03:05:01Z"}',  # beyond it
        '{"ts": "1999-12-31T23:59:59Z"}',
        '{"ts": "0001-01-01T00:00:00+01:00"}',
        '{"ts": 1764122400000}',
        '{"ts": "2026-11-26T02:00:00Z", "device_id": "LOG-000123"}',
        '{"ts": "2026-11-26T02:00:00Z", "device_id": "LOG-9"}',
        '{"device_id": "LOG-9", "readings": [{"ts": "2026-11-26T02:00:00Z"}]}',
        '{"readings": [{"ts": "2026-11-26T02:00:00Z"}], "x": 1}',
        '{"readings": [{"ts": "2026-11-26T02:00:00Z", "x": 1}]}',
        '{"readings": ' + json.dumps([{"ts": "2026-11-26T02:00:00Z"}] * 6) + "}",  # > limit
        '{"readings": 5}',
        '{"ts": "2026-11-26T02:00:00Z", "note": "readings"}',
        '\ufeff{"ts": "2026-11-26T02:00:00Z"}',
        '{"ts": "2026-11-26T02:00:00Z"} x',
        "[" * 5000,
        '{"ts": "\\u0032026-11-26T02:00:00Z"}',
    ],
)
def test_edge_cases_agree(payload: str) -> None:
    both(payload.encode())


def test_status_messages_and_envelope_refusals_agree() -> None:
    both(b'{"online": false}', topic=status_topic(ROOT, "LOG-000123"))
    both(b'{"ts": "2026-11-26T02:00:00Z"}', topic="elsewhere/LOG-1/telemetry")
    both(b'{"ts": "2026-11-26T02:00:00Z"}', topic=telemetry_topic(ROOT, "LOG-1\n"))
    both(b'{"ts": "2026-11-26T02:00:00Z"}', limits=Limits(known_devices=frozenset({"LOG-2"})))
    both(b'{"ts": "2026-11-26T02:00:00Z"}' + b" " * 300, limits=Limits(max_payload_bytes=100))


def test_what_the_simulator_sends_takes_the_fast_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """The loggers' own payloads never reach the full validation (else the fast path is dead)."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the full validation was called")

    monkeypatch.setattr(columns_module, "parse_body", refuse)
    rs = [Reading("LOG-000123", NOW - timedelta(minutes=i), 5.0 + i, 45.0, 52.3, 4.8, 0.5)
          for i in range(60)]  # fmt: skip
    cols = ReadingColumns()
    for payload in (batch_payload("LOG-000123", rs), reading_payload(rs[0])):
        parse_into(cols, TOPIC, payload, root=ROOT, now=NOW, limits=Limits())
    assert list(cols.rows()) == [*rs, rs[0]]
    assert cols.runs == [("LOG-000123", 0, 60), ("LOG-000123", 60, 61)]


@given(
    minutes=st.lists(
        st.tuples(st.sampled_from(["A", "B", "C"]), st.integers(0, 10_000)), max_size=40
    ),
    cut=st.integers(0, 40),
)
def test_spans_and_slices_say_what_the_readings_say(
    minutes: list[tuple[str, int]], cut: int
) -> None:
    t0 = datetime(2026, 11, 1, tzinfo=UTC)
    readings = [Reading(d, t0 + timedelta(minutes=m), float(m)) for d, m in minutes]
    cols = ReadingColumns.of(readings)
    assert list(cols.rows()) == readings
    for part in (cols, cols.slice(0, cut), cols.slice(cut, len(readings))):
        rows = list(part.rows())
        spans = {s.device_id: s for s in part.spans()}
        assert list(spans) == sorted({r.device_id for r in rows})
        for device, span in spans.items():
            mine = [r for r in rows if r.device_id == device]
            assert span.n == len(mine)
            assert from_pg_us(span.ts_min_us) == min(r.ts for r in mine)
            assert from_pg_us(span.ts_max_us) == max(r.ts for r in mine)
            assert rows[span.latest].device_id == device
            assert rows[span.latest].ts == max(r.ts for r in mine)


@given(st.datetimes(min_value=datetime(2000, 1, 1), timezones=st.just(UTC)))
def test_microseconds_since_2000_round_trip(ts: datetime) -> None:
    assert from_pg_us(to_pg_us(ts)) == ts
