"""The payload contract: every shape the docs promise parses, every bad input is refused with a reason."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from coldchain.telemetry import (
    EARLIEST_TS,
    DeviceStatus,
    Limits,
    Reading,
    batch_payload,
    parse_payload,
    parse_topic,
    reading_payload,
    status_payload,
    status_topic,
    telemetry_topic,
)

ROOT = "coldchain/v1"
NOW = datetime(2026, 11, 26, 3, 0, tzinfo=UTC)
TOPIC = telemetry_topic(ROOT, "LOG-000123")


def parse(payload: bytes | str, topic: str = TOPIC, **limits: object):
    raw = payload.encode() if isinstance(payload, str) else payload
    return parse_payload(topic, raw, root=ROOT, now=NOW, limits=Limits(**limits))  # type: ignore[arg-type]


def test_the_documented_single_reading() -> None:
    msg = parse(
        '{"device_id": "LOG-000123", "ts": "2026-11-26T03:00:00Z", "temp_c": 5.2, "rh": 45.1,'
        ' "lat": 52.37, "lon": 4.89, "battery": 0.87}'
    )
    assert msg.rejections == ()
    assert msg.readings == (
        Reading("LOG-000123", datetime(2026, 11, 26, 3, tzinfo=UTC), 5.2, 45.1, 52.37, 4.89, 0.87),
    )


EPOCH_MS_2026 = int(datetime(2026, 11, 26, 3, tzinfo=UTC).timestamp() * 1000)


@pytest.mark.parametrize(
    "ts",
    ["2026-11-26T04:00:00+01:00", "2026-11-26T03:00:00.000Z", EPOCH_MS_2026, float(EPOCH_MS_2026)],
)
def test_timestamps_iso_with_offset_or_epoch_ms(ts: object) -> None:
    (r,) = parse(json.dumps({"ts": ts, "temp_c": 4.0})).readings
    assert r.ts == datetime(2026, 11, 26, 3, tzinfo=UTC)
    assert r.ts.utcoffset() == timedelta(0)


def test_optional_fields_may_be_absent() -> None:
    (r,) = parse('{"ts": "2026-11-26T02:00:00Z"}').readings
    assert (r.temp_c, r.rh, r.lat, r.lon, r.battery) == (None, None, None, None, None)


def test_batch_with_one_bad_reading_keeps_the_good_ones() -> None:
    msg = parse(
        json.dumps(
            {
                "device_id": "LOG-000123",
                "readings": [
                    {"ts": "2026-11-26T02:00:00Z", "temp_c": 4.0},
                    {"ts": "2026-11-26T02:01:00Z", "temp_c": 400},
                    {"ts": "2026-11-26T02:02:00Z", "temp_c": 4.2},
                ],
            }
        )
    )
    assert [r.temp_c for r in msg.readings] == [4.0, 4.2]
    assert len(msg.rejections) == 1
    assert msg.rejections[0].index == 1
    assert "temp_c" in msg.rejections[0].reason


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ("{not json", "not JSON"),
        ('"hello"', "not a JSON object"),
        ('{"temp_c": 4}', "ts: Field required"),
        ('{"ts": "yesterday", "temp_c": 4}', "not ISO 8601"),
        ('{"ts": "2026-11-26T02:00:00", "temp_c": 4}', "no UTC offset"),
        ('{"ts": "2026-11-26T02:00:00Z", "temp_c": "warm"}', "temp_c"),
        ('{"ts": "2026-11-26T02:00:00Z", "temp_c": NaN}', "finite"),
        ('{"ts": "2026-11-26T02:00:00Z", "temp_c": Infinity}', "finite"),
        ('{"ts": "2026-11-26T02:00:00Z", "temp_c": -120}', "temp_c"),
        ('{"ts": "2026-11-26T02:00:00Z", "rh": 101}', "rh"),
        ('{"ts": "2026-11-26T02:00:00Z", "lat": 91}', "lat"),
        ('{"ts": "2026-11-26T02:00:00Z", "lon": -181}', "lon"),
        ('{"ts": "2026-11-26T02:00:00Z", "battery": 1.5}', "battery"),
        ('{"ts": "2026-11-26T02:00:00Z", "temp_c": true}', "boolean"),
        ('{"ts": "2026-11-27T02:00:00Z", "temp_c": 4}', "in the future"),
        ('{"device_id": "LOG-9", "ts": "2026-11-26T02:00:00Z"}', "differs from the topic"),
        ('{"readings": {"ts": 1}}', "must be a list"),
    ],
)
def test_bad_input_is_refused_with_a_reason(payload: str, reason: str) -> None:
    msg = parse(payload)
    assert msg.readings == ()
    assert msg.rejections, payload
    assert reason in msg.rejections[0].reason


def test_oversized_payload_and_batch() -> None:
    big = parse(b"{" + b" " * 2000 + b"}", max_payload_bytes=1000)
    assert "exceeds the limit" in big.rejections[0].reason
    many = parse(
        json.dumps({"readings": [{"ts": "2026-11-26T02:00:00Z"}] * 11}), max_batch_readings=10
    )
    assert "batch of 11" in many.rejections[0].reason


def test_unknown_device_is_refused() -> None:
    msg = parse('{"ts": "2026-11-26T02:00:00Z"}', known_devices=frozenset({"LOG-1"}))
    assert "unknown device 'LOG-000123'" in msg.rejections[0].reason


@pytest.mark.parametrize(
    "topic", ["coldchain/v1/devices/LOG-1", "other/devices/LOG-1/telemetry", "coldchain/v1/x"]
)
def test_non_device_topics_are_refused(topic: str) -> None:
    assert "not a device topic" in parse('{"ts": 0}', topic=topic).rejections[0].reason


def test_senml_pack() -> None:
    pack = [
        {"bn": "urn:dev:ser:LOG-000123:", "bt": 1764126000, "n": "temp", "u": "Cel", "v": 4.5},
        {"n": "humidity", "u": "%RH", "v": 40.0},
        {"n": "temp", "u": "Cel", "v": 4.7, "t": 60},
        {"n": "door", "u": "count", "v": 1},
    ]
    msg = parse(json.dumps(pack))
    assert msg.rejections == ()
    assert [(r.ts.timestamp(), r.temp_c, r.rh) for r in msg.readings] == [
        (1764126000, 4.5, 40.0),
        (1764126060, 4.7, None),
    ]


def test_senml_relative_time_is_refused() -> None:
    msg = parse(json.dumps([{"bn": "LOG-000123/", "n": "t", "u": "Cel", "v": 4.5, "t": -5}]))
    assert "relative time" in msg.rejections[0].reason


def test_status_and_last_will() -> None:
    topic = status_topic(ROOT, "LOG-000123")
    ok = parse('{"online": true, "battery": 0.5, "firmware": "1.2.3"}', topic=topic)
    assert ok.status == DeviceStatus("LOG-000123", True, None, 0.5, "1.2.3")
    will = parse('"offline"', topic=topic)
    assert will.status is not None and will.status.online is False


def test_topic_parsing() -> None:
    t = parse_topic(ROOT, TOPIC)
    assert t is not None and (t.device_id, t.kind) == ("LOG-000123", "telemetry")


@given(
    temp=st.none() | st.floats(-100, 100),
    rh=st.none() | st.floats(0, 100),
    lat=st.none() | st.floats(-90, 90),
    lon=st.none() | st.floats(-180, 180),
    battery=st.none() | st.floats(0, 1),
    minutes=st.integers(0, 10_000_000),
)
def test_what_the_simulator_builds_parses_back_unchanged(
    temp: float | None, rh: float | None, lat: float | None, lon: float | None,
    battery: float | None, minutes: int,
) -> None:  # fmt: skip
    ts = NOW - timedelta(minutes=minutes)
    r = Reading("LOG-000123", ts, temp, rh, lat, lon, battery)
    assert parse(reading_payload(r)).readings == (r,)
    assert parse(batch_payload("LOG-000123", [r, r])).readings == (r, r)


def test_status_payload_round_trip() -> None:
    s = DeviceStatus("LOG-000123", False, NOW, 0.3, "2.0")
    parsed = parse(status_payload(s), topic=status_topic(ROOT, "LOG-000123")).status
    assert parsed == s


# --- the fast path agrees with the full validator ---------------------------------------------

_NUMBER = (
    st.none()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.integers(-(10**20), 10**20)
    | st.booleans()
    | st.sampled_from(["4.5", "", "warm", "NaN"])
    | st.just([1.0])
)
_TS = (
    st.datetimes(
        min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)
    ).map(lambda d: d.isoformat().replace("+00:00", "Z"))
    | st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat())
    | st.datetimes().map(lambda d: d.isoformat())  # no offset: refused
    | st.integers(-(10**18), 10**18)
    | st.floats()
    | st.booleans()
    | st.none()
    | st.sampled_from(["yesterday", " 2026-11-26T02:00:00Z ", "2026-11-26T02:00:00z", ""])
)
_READING = st.fixed_dictionaries(
    {},
    optional={
        "ts": _TS,
        "temp_c": _NUMBER,
        "rh": _NUMBER,
        "lat": _NUMBER,
        "lon": _NUMBER,
        "battery": _NUMBER,
        "device_id": st.sampled_from(["LOG-000123", "LOG-9", "LOG-000123\n", ""]) | st.none(),
        "extra": st.integers(),
    },
)


@given(
    item=_READING | st.integers() | st.lists(st.integers(), max_size=2),
    index=st.none() | st.integers(0, 5),
)
def test_fast_path_accepts_only_what_the_validator_accepts_and_builds_the_same(
    item: object, index: int | None
) -> None:
    from coldchain.telemetry import _fast_reading, _validate_reading

    latest = NOW + timedelta(minutes=5)
    slow = _validate_reading(item, "LOG-000123", index, EARLIEST_TS, latest)
    fast = _fast_reading(item, "LOG-000123", EARLIEST_TS, latest)
    if fast is not None:
        assert fast == slow
        assert type(slow) is Reading
        assert (fast.temp_c, fast.rh, fast.lat, fast.lon, fast.battery) == (
            slow.temp_c, slow.rh, slow.lat, slow.lon, slow.battery,
        )  # fmt: skip
        for value in (fast.temp_c, fast.rh, fast.lat, fast.lon, fast.battery):
            assert value is None or type(value) is float
        assert fast.ts.utcoffset() == timedelta(0)


@given(
    payload=st.one_of(
        _READING.map(lambda d: json.dumps(d)),
        st.lists(_READING, max_size=4).map(lambda rs: json.dumps({"readings": rs})),
        st.binary(max_size=64).map(lambda b: b.decode("latin-1")),
    )
)
def test_parse_payload_is_the_same_with_and_without_the_fast_path(payload: str) -> None:
    import coldchain.telemetry as telemetry

    fast = parse(payload)
    telemetry._FAST_PATH = False
    try:
        slow = parse(payload)
    finally:
        telemetry._FAST_PATH = True
    assert fast == slow


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ('{"ts": 1e30}', "out of range"),
        ('{"ts": -1e20}', "out of range"),
        ('{"ts": 1' + "0" * 400 + "}", "out of range"),
        ('{"ts": "0001-01-01T00:00:00+01:00"}', "out of range"),
        ('{"ts": "9999-12-31T23:59:59-01:00"}', "out of range"),
        ("[" * 100_000, "nested too deeply"),
        ('[{"bn": "LOG-000123/", "u": "Cel", "v": 1, "bt": 1e300}]', "out of range"),
        ('[{"bn": "LOG-000123/", "u": "Cel", "v": 1, "bt": 1' + "0" * 400 + "}]", "SenML"),
    ],
)
def test_hostile_numbers_and_nesting_are_refused_not_raised(payload: str, reason: str) -> None:
    msg = parse(payload)
    assert msg.readings == ()
    assert reason in msg.rejections[0].reason


def test_a_device_id_with_a_trailing_newline_is_malformed() -> None:
    msg = parse('{"ts": "2026-11-26T02:00:00Z"}', topic=telemetry_topic(ROOT, "LOG-1\n"))
    assert "malformed" in msg.rejections[0].reason


@given(payload=st.binary(max_size=300))
def test_parse_payload_never_raises(payload: bytes) -> None:
    parse(payload)


# --- issue 11: hostile integers, times before 2000, numbers as text, control characters --------


def test_a_5000_digit_integer_is_a_rejection_not_an_exception() -> None:
    for doc in ('{"ts": "2026-11-26T02:00:00Z", "temp_c": 1' + "0" * 5000 + "}",
                '{"readings": [{"ts": 1' + "0" * 5000 + "}]}"):  # fmt: skip
        msg = parse(doc)
        assert msg.readings == ()
        assert "too long" in msg.rejections[0].reason


def test_an_unexpected_exception_is_a_rejection(monkeypatch: pytest.MonkeyPatch) -> None:
    import coldchain.telemetry as telemetry

    def boom(*args: object, **kwargs: object) -> object:
        raise MemoryError("simulated")

    monkeypatch.setattr(telemetry, "_parse_telemetry", boom)
    msg = parse('{"ts": "2026-11-26T02:00:00Z"}')
    assert msg.readings == ()
    assert msg.rejections[0].reason == "payload could not be parsed (MemoryError)"


@pytest.mark.parametrize(
    "ts",
    [-1000, -1, 0, 946_684_799_999, "0001-01-01T00:00:00Z", "1969-12-31T23:59:59Z",
     "1999-12-31T23:59:59.999Z", "2000-01-01T00:30:00+01:00"],
)  # fmt: skip
@pytest.mark.parametrize("fast_path", [True, False])
def test_times_before_2000_are_refused(ts: object, fast_path: bool) -> None:
    import coldchain.telemetry as telemetry

    telemetry._FAST_PATH = fast_path
    try:
        single = parse(json.dumps({"ts": ts, "temp_c": 4.0}))
        batch = parse(json.dumps({"readings": [{"ts": ts}, {"ts": "2026-11-26T02:00:00Z"}]}))
    finally:
        telemetry._FAST_PATH = True
    assert single.readings == ()
    assert "is before 2000-01-01" in single.rejections[0].reason
    assert len(batch.readings) == 1
    assert batch.rejections[0].index == 0


def test_the_earliest_time_itself_is_accepted() -> None:
    (r,) = parse(json.dumps({"ts": "2000-01-01T00:00:00Z"})).readings
    assert r.ts == EARLIEST_TS


def test_a_senml_pack_before_2000_is_refused() -> None:
    msg = parse('[{"bn": "LOG-000123/", "bt": -1000000000, "u": "Cel", "v": 4.0}]')
    assert msg.readings == ()
    assert "is before 2000-01-01" in msg.rejections[0].reason


@pytest.mark.parametrize("value", ['"5.5"', '"5"', "true", "false", "[5.5]", '{"v": 5}'])
@pytest.mark.parametrize("field", ["temp_c", "rh", "lat", "lon", "battery"])
@pytest.mark.parametrize("fast_path", [True, False])
def test_numbers_as_text_or_booleans_are_refused(field: str, value: str, fast_path: bool) -> None:
    import coldchain.telemetry as telemetry

    telemetry._FAST_PATH = fast_path
    try:
        msg = parse(f'{{"ts": "2026-11-26T02:00:00Z", "{field}": {value}}}')
    finally:
        telemetry._FAST_PATH = True
    assert msg.readings == ()
    assert f"{field}: must be a JSON number" in msg.rejections[0].reason


@pytest.mark.parametrize(
    ("doc", "reason"),
    [
        ({"online": True, "firmware": "\u0000"}, "firmware"),
        ({"online": True, "firmware": "2.0\n"}, "firmware"),
        ({"online": "yes"}, "online"),
        ({"online": 1}, "online"),
        ({"online": True, "battery": "0.5"}, "battery: must be a JSON number"),
        ({"online": True, "battery": True}, "battery: must be a JSON number"),
        ({"online": True, "ts": -5}, "is before 2000-01-01"),
        ({"online": True, "ts": "0001-01-01T00:00:00Z"}, "is before 2000-01-01"),
    ],
)
def test_bad_status_fields_are_refused(doc: dict[str, object], reason: str) -> None:
    msg = parse(json.dumps(doc), topic=status_topic(ROOT, "LOG-000123"))
    assert msg.status is None
    assert reason in msg.rejections[0].reason


@pytest.mark.parametrize("field", ["bt", "t"])
@pytest.mark.parametrize("value", ['"1764126000"', "true"])
def test_senml_times_must_be_numbers(field: str, value: str) -> None:
    base = '"bt": 1764126000' if field == "t" else f'"bt": {value}'
    extra = f', "t": {value}' if field == "t" else ""
    msg = parse(f'[{{"bn": "LOG-000123/", {base}, "u": "Cel", "v": 4.0{extra}}}]')
    assert msg.readings == ()
    assert f"{field} must be a JSON number" in msg.rejections[0].reason


def test_a_senml_value_given_as_text_is_refused() -> None:
    msg = parse('[{"bn": "LOG-000123/", "bt": 1764126000, "u": "Cel", "v": "5.5"}]')
    assert msg.readings == ()
    assert "temp_c: must be a JSON number" in msg.rejections[0].reason
