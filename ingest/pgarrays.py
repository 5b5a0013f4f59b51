"""The batch's columns as PostgreSQL binary arrays, encoded in bulk.

The ingester sends a batch as one array per column (see db/queries/ingest.py). psycopg's list
dumper encodes arrays element by element through its dumper machinery: profiled on 60-reading
uploads, that was as costly as parsing the JSON. These encoders write the same bytes (the
binary array format of ``array_send``: header, then length-prefixed elements, -1 for NULL) with
one ``struct`` call per element, and hand them to psycopg already encoded, through a dumper that
passes bytes through under the array type's OID. tests/ingest/test_pgarrays.py checks them
against psycopg's own encoding.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache

import psycopg
from psycopg.abc import DumperKey
from psycopg.adapt import Dumper, PyFormat
from psycopg.pq import Format

_TYPES = psycopg.postgres.types
_HEADER = struct.Struct(">iiiii")  # ndim, has-null flag, element OID, length, lower bound
_EMPTY = struct.Struct(">iii")  # ndim 0, no null, element OID
_NULL = b"\xff\xff\xff\xff"
_F8 = struct.Struct(">id").pack
_F4 = struct.Struct(">if").pack
_I8 = struct.Struct(">iq").pack
_PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


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


def float8_array(values: Sequence[float | None]) -> Encoded:
    """``double precision[]``."""
    elements = [_NULL if v is None else _F8(8, v) for v in values]
    return _array("float8", elements, None in values)


def float4_array(values: Sequence[float | None]) -> Encoded:
    """``real[]``, for values the parser keeps within [0, 1] (``struct`` refuses beyond ±3.4e38)."""
    elements = [_NULL if v is None else _F4(4, v) for v in values]
    return _array("float4", elements, None in values)


@lru_cache(maxsize=65536)
def _text_element(value: str) -> bytes:
    data = value.encode()
    return struct.pack(">i", len(data)) + data


def text_array(values: Sequence[str | None]) -> Encoded:
    """``text[]``; device ids repeat batch after batch, so their encoding is cached."""
    elements = [_NULL if v is None else _text_element(v) for v in values]
    return _array("text", elements, None in values)


def timestamptz_array(values: Sequence[datetime]) -> Encoded:
    """``timestamptz[]`` of aware datetimes: microseconds since 2000-01-01 UTC."""
    elements = []
    for ts in values:
        delta = ts - _PG_EPOCH
        elements.append(
            _I8(8, (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds)
        )
    return _array("timestamptz", elements, False)


__all__ = ["Encoded", "float4_array", "float8_array", "text_array", "timestamptz_array"]
