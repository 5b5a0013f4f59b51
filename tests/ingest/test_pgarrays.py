"""The bulk array encoders write exactly what PostgreSQL reads back, NULLs and all."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg.adapt import PyFormat, Transformer

from ingest.pgarrays import float4_array, float8_array, text_array, timestamptz_array

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
    assert timestamptz_array(values).data == _psycopg_binary(values)  # type: ignore[arg-type]


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
    with psycopg.connect(db_dsn) as conn:
        row = conn.execute(
            "SELECT %b::float8[], %b::float4[], %b::text[], %b::timestamptz[]",
            (
                float8_array(floats),
                float4_array(small),
                text_array(names),
                timestamptz_array(stamps),
            ),
        ).fetchone()
    assert row is not None
    assert row[0] == floats
    assert [None if v is None else pytest.approx(v, rel=1e-6, abs=1e-7) for v in small] == row[1]
    assert row[2] == names
    assert row[3] == stamps


def test_microseconds_before_and_after_2000() -> None:
    t = datetime(1999, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC)
    assert timestamptz_array([t, t + timedelta(microseconds=2)]).data == _psycopg_binary(
        [t, t + timedelta(microseconds=2)]
    )
