"""Readings as columns, and the ingester's fast way into them (issue 15).

:func:`coldchain.telemetry.parse_payload` builds a frozen :class:`~coldchain.telemetry.Reading`
per reading after Python's JSON decoder. At 200,000 readings a second that decoding, the
per-reading checks and the objects were most of the ingester's CPU (3.8 µs of its 5.1 µs a
reading on 60-reading uploads, measured in process). The ingester only needs the readings as
the columns it sends to PostgreSQL, so :func:`parse_into` appends them to a
:class:`ReadingColumns` instead:

- a well-formed message (one plain reading, or an upload of plain readings: only the contract's
  keys, numbers within :data:`~coldchain.telemetry.RANGES`, ISO 8601 times with an offset, the
  topic's device) is decoded and range-checked in C by msgspec, and only its times are read in
  Python (``datetime.fromisoformat``, as the full validation reads them);
- anything else (SenML, epoch-millisecond times, an unknown key, a value out of range, text where
  a number belongs, a time in the future or before 2000, any message with a rejection) goes
  through :func:`~coldchain.telemetry.parse_body`, the one full validation, which also writes
  the reasons.

The fast path only ever *accepts*, and what it accepts is exactly what ``parse_payload`` gives:
tests/coldchain/test_telemetry_columns.py holds the two equal on random valid and invalid
messages (keys, numbers, times, duplicate keys, nesting, bytes).

Times are kept as integer microseconds since :data:`PG_EPOCH`, PostgreSQL's own timestamp
encoding, so the writer sends them without another conversion.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Annotated, NamedTuple

import msgspec

from coldchain.telemetry import (
    RANGES,
    Limits,
    ParsedMessage,
    Reading,
    check_envelope,
    parse_body,
)

PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
"""Where PostgreSQL's binary timestamps count from (microseconds since this instant)."""
_ONE_US = timedelta(microseconds=1)


def to_pg_us(ts: datetime) -> int:
    """An aware datetime as microseconds since :data:`PG_EPOCH`, exactly."""
    return (ts - PG_EPOCH) // _ONE_US


def from_pg_us(us: int) -> datetime:
    """The inverse of :func:`to_pg_us` (a UTC datetime)."""
    return PG_EPOCH + timedelta(microseconds=us)


class DeviceSpan(NamedTuple):
    """What one batch holds of one device: its readings' time range, count and latest reading."""

    device_id: str
    ts_min_us: int
    ts_max_us: int
    n: int
    latest: int  # index of the reading at ts_max_us in the columns


@dataclass(slots=True)
class ReadingColumns:
    """Readings column by column, in arrival order; ``runs`` says which device each run of
    readings belongs to (one run per message: a message's readings are all its topic's device)."""

    device_id: list[str] = field(default_factory=list)
    ts_us: list[int] = field(default_factory=list)  # µs since PG_EPOCH
    temp_c: list[float | None] = field(default_factory=list)
    rh: list[float | None] = field(default_factory=list)
    lat: list[float | None] = field(default_factory=list)
    lon: list[float | None] = field(default_factory=list)
    battery: list[float | None] = field(default_factory=list)
    runs: list[tuple[str, int, int]] = field(default_factory=list)  # (device, start, end)

    def __len__(self) -> int:
        return len(self.ts_us)

    @classmethod
    def of(cls, readings: Sequence[Reading]) -> ReadingColumns:
        """Columns holding these readings, in this order."""
        columns = cls()
        columns.add_readings(readings)
        return columns

    def add_readings(self, readings: Sequence[Reading]) -> None:
        """Append readings (of any devices), one run per stretch of one device."""
        start = len(self)
        for r in readings:
            if not self.runs or self.runs[-1][0] != r.device_id or self.runs[-1][2] != len(self):
                self.runs.append((r.device_id, len(self), len(self)))
            self.device_id.append(r.device_id)
            self.ts_us.append(to_pg_us(r.ts))
            self.temp_c.append(r.temp_c)
            self.rh.append(r.rh)
            self.lat.append(r.lat)
            self.lon.append(r.lon)
            self.battery.append(r.battery)
            device, first, _ = self.runs[-1]
            self.runs[-1] = (device, first, len(self))
        assert len(self) == start + len(readings)

    def slice(self, lo: int, hi: int) -> ReadingColumns:
        """Readings ``lo`` to ``hi`` (indexes), as columns of their own."""
        runs = [(d, max(a, lo) - lo, min(b, hi) - lo) for d, a, b in self.runs if a < hi and b > lo]
        return ReadingColumns(
            self.device_id[lo:hi], self.ts_us[lo:hi], self.temp_c[lo:hi], self.rh[lo:hi],
            self.lat[lo:hi], self.lon[lo:hi], self.battery[lo:hi], runs,
        )  # fmt: skip

    def rows(self) -> Iterator[Reading]:
        """The readings as value objects (for the in-memory sink and tests)."""
        for i in range(len(self)):
            yield Reading(
                self.device_id[i], from_pg_us(self.ts_us[i]), self.temp_c[i], self.rh[i],
                self.lat[i], self.lon[i], self.battery[i],
            )  # fmt: skip

    def spans(self) -> list[DeviceSpan]:
        """Per device, in device order: time range, count and the latest reading's index."""
        by_device: dict[str, list[int]] = {}
        get = by_device.get
        ts = self.ts_us
        for device, a, b in self.runs:
            if b - a == 1:  # a single-reading message: most live traffic
                lo = hi = ts[a]
                latest = a
            elif a == b:
                continue
            else:
                part = ts[a:b]
                hi = max(part)
                lo = min(part)
                latest = a + part.index(hi)
            seen = get(device)
            if seen is None:
                by_device[device] = [lo, hi, b - a, latest]
                continue
            if lo < seen[0]:
                seen[0] = lo
            if hi > seen[1]:
                seen[1] = hi
                seen[3] = latest
            seen[2] += b - a
        return [DeviceSpan(d, *by_device[d]) for d in sorted(by_device)]


# --- the fast path ---------------------------------------------------------------------------


_Temp = Annotated[float, msgspec.Meta(ge=RANGES["temp_c"][0], le=RANGES["temp_c"][1])]
_Rh = Annotated[float, msgspec.Meta(ge=RANGES["rh"][0], le=RANGES["rh"][1])]
_Lat = Annotated[float, msgspec.Meta(ge=RANGES["lat"][0], le=RANGES["lat"][1])]
_Lon = Annotated[float, msgspec.Meta(ge=RANGES["lon"][0], le=RANGES["lon"][1])]
_Battery = Annotated[float, msgspec.Meta(ge=RANGES["battery"][0], le=RANGES["battery"][1])]


class _PlainReading(msgspec.Struct, forbid_unknown_fields=True):
    """A reading of the contract's keys only, numbers within range (msgspec checks in C)."""

    ts: str
    device_id: str | None = None
    temp_c: _Temp | None = None
    rh: _Rh | None = None
    lat: _Lat | None = None
    lon: _Lon | None = None
    battery: _Battery | None = None


class _PlainUpload(msgspec.Struct, forbid_unknown_fields=True):
    """A buffered upload of plain readings."""

    readings: list[_PlainReading]
    device_id: str | None = None


_decode_reading = msgspec.json.Decoder(_PlainReading).decode
_decode_upload = msgspec.json.Decoder(_PlainUpload).decode
_fromisoformat = datetime.fromisoformat
#: Off switch for the fast path (tests compare both ways).
FAST_PATH = True


def parse_into(
    columns: ReadingColumns,
    topic: str,
    payload: bytes,
    *,
    root: str,
    now: datetime,
    limits: Limits,
) -> ParsedMessage:
    """Parse one message as :func:`~coldchain.telemetry.parse_payload` does, appending its
    readings to ``columns``; the result carries the status and the rejections, never readings.
    Never raises."""
    checked = check_envelope(topic, payload, root=root, limits=limits)
    if isinstance(checked, ParsedMessage):
        return checked
    device = checked.device_id
    if FAST_PATH and checked.kind == "telemetry" and _fast(columns, device, payload, now, limits):
        return _NOTHING_ELSE
    parsed = parse_body(checked, payload, now=now, limits=limits)
    if parsed.readings:
        columns.add_readings(parsed.readings)
        return ParsedMessage(rejections=parsed.rejections, status=parsed.status)
    return parsed


_NOTHING_ELSE = ParsedMessage()


def _fast(
    columns: ReadingColumns, device: str, payload: bytes, now: datetime, limits: Limits
) -> bool:
    """Append a well-formed message's readings and say True; False (nothing appended) for
    anything the full validation must look at."""
    try:  # a single reading first: most live messages are one, and an upload fails it at once
        items = [_decode_reading(payload)]
    except (msgspec.DecodeError, RecursionError):  # ValidationError is a DecodeError
        try:
            upload = _decode_upload(payload)
        except (msgspec.DecodeError, RecursionError):
            return False
        if upload.device_id is not None and upload.device_id != device:
            return False
        items = upload.readings
        if len(items) > limits.max_batch_readings:
            return False
    latest_allowed = now + limits.max_future
    earliest = limits.earliest
    stamps: list[int] = []
    for item in items:
        if item.device_id is not None and item.device_id != device:
            return False
        try:
            ts = _fromisoformat(item.ts)
        except ValueError:
            return False
        zone = ts.tzinfo
        if zone is not UTC:
            if zone is None or ts.utcoffset() is None:
                return False
            try:
                ts = ts.astimezone(UTC)
            except OverflowError:
                return False
        if ts > latest_allowed or ts < earliest:
            return False
        stamps.append((ts - PG_EPOCH) // _ONE_US)
    start = len(columns.ts_us)
    n = len(items)
    if n == 1:  # most live messages: appends cost less than one-element lists
        r = items[0]
        columns.ts_us.append(stamps[0])
        columns.device_id.append(device)
        columns.temp_c.append(r.temp_c)
        columns.rh.append(r.rh)
        columns.lat.append(r.lat)
        columns.lon.append(r.lon)
        columns.battery.append(r.battery)
    elif n:
        columns.ts_us.extend(stamps)
        columns.device_id.extend([device] * n)
        columns.temp_c.extend([r.temp_c for r in items])
        columns.rh.extend([r.rh for r in items])
        columns.lat.extend([r.lat for r in items])
        columns.lon.extend([r.lon for r in items])
        columns.battery.extend([r.battery for r in items])
    else:
        return True
    columns.runs.append((device, start, start + n))
    return True
