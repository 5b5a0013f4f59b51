"""PostgreSQL's binary array format (``array_send``), both ways, in bulk.

The format: a header (number of dimensions, has-null flag, element type OID, then (length,
lower bound) per dimension), then each element as (byte length, value), -1 for NULL. Timestamps
are microseconds since :data:`PG_EPOCH` (2000-01-01 UTC; defined with the ingester's columns in
:mod:`coldchain.telemetry_columns`, which keep their times in that unit).

**Encoding (the ingester).** The ingester sends a batch as one array per column (see
db/queries/ingest.py). psycopg's list dumper encodes arrays element by element through its
dumper machinery: profiled on 60-reading uploads, that was as costly as parsing the JSON. The
encoders below write the same bytes with one ``struct`` call per array (per element where it
holds NULLs), and hand them to psycopg already encoded, through a dumper that passes bytes through under the array type's OID.

**Decoding (the rules engine).** The engine reads each pair's readings as one ``array_send``
per column (db/queries/rules.py ``PAIR_READINGS``); :func:`float8_values` and
:func:`timestamp_us_values` turn each into a numpy array in one step, with no Python object
per element. numpy is imported by the decoders only, when first called: the ingester, which
only encodes, does not load it (measured: 20 MB less peak memory, ``bench/ingest_throughput.py``).

tests/db/test_binary.py checks the encoders against psycopg's own encoding and both directions
against PostgreSQL itself.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

import psycopg
from psycopg.abc import DumperKey
from psycopg.adapt import Dumper, PyFormat
from psycopg.pq import Format

from coldchain.telemetry_columns import PG_EPOCH

if TYPE_CHECKING:
    import numpy as np

_TYPES = psycopg.postgres.types
_HEADER = struct.Struct(">iiiii")  # ndim, has-null flag, element OID, length, lower bound
_EMPTY = struct.Struct(">iii")  # ndim 0, no null, element OID
_NULL = b"\xff\xff\xff\xff"
_F8 = struct.Struct(">id").pack
_F4 = struct.Struct(">if").pack
_I8 = struct.Struct(">iq").pack
PG_EPOCH_UNIX_US = 946_684_800 * 1_000_000
""":data:`PG_EPOCH` in microseconds after the Unix epoch."""


@dataclass(frozen=True, slots=True)
class Encoded:
    """An array already in PostgreSQL's binary format, and the OID of its array type."""

    data: bytes
    array_oid: int


class _EncodedDumper(Dumper):
    format = Format.BINARY

    def dump(self, obj: Encoded) -> bytes:
        return obj.data

    def get_key(self, obj: Encoded, format: PyFormat) -> DumperKey:
        return (Encoded, obj.array_oid)  # type: ignore[return-value]  # a key per array type

    def upgrade(self, obj: Encoded, format: PyFormat) -> Dumper:
        dumper = _EncodedDumper(Encoded)
        dumper.oid = obj.array_oid
        return dumper


psycopg.adapters.register_dumper(Encoded, _EncodedDumper)


def _array(elem_type: str, elements: list[bytes], has_null: bool) -> Encoded:
    info = _TYPES[elem_type]
    assert info.array_oid
    if not elements:
        return Encoded(_EMPTY.pack(0, 0, info.oid), info.array_oid)
    head = _HEADER.pack(1, 1 if has_null else 0, info.oid, len(elements), 1)
    return Encoded(head + b"".join(elements), info.array_oid)


@lru_cache(maxsize=256)
def _packer(element: str, n: int) -> Callable[..., bytes]:
    """One ``struct`` call for ``n`` (length, value) elements of this format."""
    return struct.Struct(">" + element * n).pack


def _no_null(elem_type: str, element: str, size: int, values: Sequence[float | int]) -> Encoded:
    """An array without NULL in one ``struct`` call: lengths and values interleaved in a list
    by slice assignment (C speed), about half the cost of a call per element."""
    n = len(values)
    if not n:
        return _array(elem_type, [], False)
    interleaved: list[float | int] = [size] * (2 * n)
    interleaved[1::2] = values
    info = _TYPES[elem_type]
    assert info.array_oid
    head = _HEADER.pack(1, 0, info.oid, n, 1)
    return Encoded(head + _packer(element, n)(*interleaved), info.array_oid)


def float8_array(values: Sequence[float | None]) -> Encoded:
    """``double precision[]``."""
    if None not in values:
        return _no_null("float8", "id", 8, values)  # type: ignore[arg-type]  # no None
    elements = [_NULL if v is None else _F8(8, v) for v in values]
    return _array("float8", elements, True)


def float4_array(values: Sequence[float | None]) -> Encoded:
    """``real[]``, for values the parser keeps within [0, 1] (``struct`` refuses beyond ±3.4e38)."""
    if None not in values:
        return _no_null("float4", "if", 4, values)  # type: ignore[arg-type]  # no None
    elements = [_NULL if v is None else _F4(4, v) for v in values]
    return _array("float4", elements, True)


def int4_array(values: Sequence[int]) -> Encoded:
    """``integer[]`` of values within ±2³¹."""
    return _no_null("int4", "ii", 4, values)


def timestamptz_us_array(values: Sequence[int]) -> Encoded:
    """``timestamptz[]`` of microseconds since :data:`PG_EPOCH`, as they go on the wire."""
    return _no_null("timestamptz", "iq", 8, values)


@lru_cache(maxsize=65536)
def _text_element(value: str) -> bytes:
    data = value.encode()
    return struct.pack(">i", len(data)) + data


def text_array(values: Sequence[str | None]) -> Encoded:
    """``text[]``; device ids repeat batch after batch, so their encoding is cached."""
    elements = [_NULL if v is None else _text_element(v) for v in values]
    return _array("text", elements, None in values)


# ---------------------------------------------------------------------------------------------
# Decoding
# ---------------------------------------------------------------------------------------------


def _values(data: bytes, dtype: str) -> np.ndarray:
    """The elements of a one-dimensional array of 8-byte values with no NULL, as ``dtype``.

    Anything else (more dimensions, a NULL, another element size) is refused with a ValueError:
    the queries that use this send no NULLs (``coalesce(..., 'NaN')``) and 8-byte types only.
    """
    import numpy as np  # here, not at the top: the ingester imports this module and never decodes

    header = np.frombuffer(data, dtype=">i4", count=3)
    ndim, has_nulls = int(header[0]), int(header[1])
    if ndim == 0:
        return np.empty(0, dtype=dtype)
    if ndim != 1 or has_nulls:
        raise ValueError(f"unexpected array: {ndim} dimensions, nulls={bool(has_nulls)}")
    n = int(np.frombuffer(data, dtype=">i4", count=1, offset=12)[0])
    if len(data) != 20 + 12 * n:
        raise ValueError("unexpected array element size")
    elements = np.frombuffer(
        data, dtype=np.dtype([("len", ">i4"), ("value", dtype)]), count=n, offset=20
    )
    if n and not (elements["len"] == 8).all():
        raise ValueError("unexpected array element size")
    return elements["value"]


def float8_values(data: bytes) -> np.ndarray:
    """A ``float8[]`` in binary format as a float64 array."""
    return _values(data, ">f8").astype("float64")


def timestamp_us_values(data: bytes) -> np.ndarray:
    """A ``timestamptz[]`` (or ``timestamp[]``) in binary format as int64 µs after the Unix epoch."""
    return _values(data, ">i8").astype("int64") + PG_EPOCH_UNIX_US


__all__ = [
    "PG_EPOCH",
    "PG_EPOCH_UNIX_US",
    "Encoded",
    "float4_array",
    "float8_array",
    "float8_values",
    "int4_array",
    "text_array",
    "timestamp_us_values",
    "timestamptz_us_array",
]
