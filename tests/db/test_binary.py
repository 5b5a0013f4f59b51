"""The binary array codec: the encoders write exactly what PostgreSQL reads back, NULLs and
all; the decoders read exactly what PostgreSQL sends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg.adapt import PyFormat, Transformer

from coldchain.telemetry_columns import to_pg_us
from coldchain.thermal.series import EPOCH, to_us
from db.binary import (
    PG_EPOCH,
    PG_EPOCH_UNIX_US,
    float4_array,
    float8_array,
    float8_values,
    int4_array,
    text_array,
    timestamp_us_values,
    timestamptz_us_array,
)

finite = st.floats(allow_nan=False, allow_infinity=False)
aware = st.datetimes(
    min_value=datetime(1970, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)
texts = st.text(
    st.characters(categories=("L", "M", "N", "P", "S", "Zs", "Cc"), blacklist_characters="\x00")
)


def _psycopg_binary(values: list[object]) -> bytes:
    tx = Transformer()
    data = tx.get_dumper(values, PyFormat.BINARY).dump(values)
    assert data is not None
    return bytes(data)


@given(st.lists(st.none() | finite, max_size=50))
def test_float8_bytes_match_psycopg(values: list[float | None]) -> None:
    if any(v is not None for v in values):  # psycopg types an all-NULL list differently
        assert float8_array(values).data == _psycopg_binary(values)  # type: ignore[arg-type]


@given(st.lists(st.none() | texts, max_size=50))
def test_text_bytes_match_psycopg(values: list[str | None]) -> None:
    if any(v is not None for v in values):
        assert text_array(values).data == _psycopg_binary(values)  # type: ignore[arg-type]


@given(st.lists(aware, min_size=1, max_size=50))
def test_timestamptz_bytes_match_psycopg(values: list[datetime]) -> None:
    encoded = timestamptz_us_array([to_pg_us(v) for v in values])
    assert encoded.data == _psycopg_binary(values)  # type: ignore[arg-type]


@given(st.lists(finite, max_size=50), st.lists(st.floats(0, 1), max_size=50))
def test_arrays_without_null_encode_as_element_by_element(
    floats: list[float], small: list[float]
) -> None:
    import struct

    from db.binary import _array

    f8 = [struct.pack(">id", 8, v) for v in floats]
    f4 = [struct.pack(">if", 4, v) for v in small]
    assert float8_array(floats) == _array("float8", f8, False)
    assert float4_array(small) == _array("float4", f4, False)


@pytest.mark.integration
# The database is only read (SELECT of parameters), so sharing it across examples is safe.
@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    floats=st.lists(st.none() | finite, max_size=20),
    small=st.lists(st.none() | st.floats(0, 1), max_size=20),
    names=st.lists(st.none() | texts, max_size=20),
    stamps=st.lists(aware, max_size=20),
)
def test_round_trip_through_postgresql(
    db_dsn: str,
    floats: list[float | None],
    small: list[float | None],
    names: list[str | None],
    stamps: list[datetime],
) -> None:
    counts = [len(floats), -len(small), 2**31 - 1, -(2**31)]
    with psycopg.connect(db_dsn) as conn:
        row = conn.execute(
            "SELECT %b::float8[], %b::float4[], %b::text[], %b::timestamptz[], %b::int[]",
            (
                float8_array(floats),
                float4_array(small),
                text_array(names),
                timestamptz_us_array([to_pg_us(t) for t in stamps]),
                int4_array(counts),
            ),
        ).fetchone()
    assert row is not None
    assert row[0] == floats
    assert [None if v is None else pytest.approx(v, rel=1e-6, abs=1e-7) for v in small] == row[1]
    assert row[2] == names
    assert row[3] == stamps
    assert row[4] == counts


def test_microseconds_before_and_after_2000() -> None:
    t = datetime(1999, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC)
    assert timestamptz_us_array([to_pg_us(t), to_pg_us(t) + 2]).data == _psycopg_binary(
        [t, t + timedelta(microseconds=2)]
    )


@pytest.mark.integration
@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(floats=st.lists(finite, max_size=20), stamps=st.lists(aware, max_size=20))
def test_decoders_read_what_postgresql_sends(
    db_dsn: str, floats: list[float], stamps: list[datetime]
) -> None:
    """What the rules engine decodes is what PostgreSQL's array_send wrote, µs for µs."""
    with psycopg.connect(db_dsn) as conn:
        row = conn.execute(
            "SELECT array_send(%s::float8[]), array_send(%s::timestamptz[])", (floats, stamps)
        ).fetchone()
    assert row is not None
    assert float8_values(row[0]).tolist() == floats
    assert timestamp_us_values(row[1]).tolist() == [to_us(t - EPOCH) for t in stamps]


@pytest.mark.integration
def test_decoders_refuse_what_they_cannot_read(db_dsn: str) -> None:
    """A NULL, a second dimension or another element size is an error, never shifted values."""
    with psycopg.connect(db_dsn) as conn:
        row = conn.execute(
            "SELECT array_send(ARRAY[1.0, NULL]::float8[]),"
            " array_send(ARRAY[[1.0], [2.0]]::float8[]), array_send(ARRAY[1, 2]::int4[]),"
            " array_send('{}'::float8[])"
        ).fetchone()
    assert row is not None
    with pytest.raises(ValueError, match="nulls=True"):
        float8_values(row[0])
    with pytest.raises(ValueError, match="2 dimensions"):
        float8_values(row[1])
    with pytest.raises(ValueError, match="element size"):
        float8_values(row[2])
    assert float8_values(row[3]).tolist() == []


def test_one_epoch() -> None:
    assert to_us(PG_EPOCH - EPOCH) == PG_EPOCH_UNIX_US
