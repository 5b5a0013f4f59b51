"""Where the ingester puts a batch: TimescaleDB for real, a dict for unit tests.

A refused message becomes one :class:`DeadLetter` (:func:`dead_letter_for`): its raw bytes once,
however many of its readings were refused, with a bounded list of per-reading reasons. Nothing
an attacker sends makes a dead letter much larger than the message itself, and every text it
carries is made storable (no NUL, no lone surrogate), so writing a dead letter cannot fail
because of what it records.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from psycopg import AsyncConnection
from psycopg.errors import UniqueViolation
from psycopg_pool import AsyncConnectionPool

from coldchain.telemetry import DeviceStatus, Reading, Rejection
from coldchain.telemetry_columns import ReadingColumns
from db.binary import float4_array, float8_array, int4_array, text_array, timestamptz_us_array
from db.queries import ingest as q

#: Bounds of one dead letter's reasons (docs/PROTOCOL.md "What is refused").
MAX_REASONS = 100  # refused readings listed in ``reasons``; ``refused`` counts them all
REASON_CHARS = 200  # each listed reason
REASONS_BYTES = 16 * 1024  # the whole ``reasons`` list, as JSON
SUMMARY_CHARS = 500  # the one-line ``reason``
#: Log lines quote at most this much of a reason or a topic.
LOG_CHARS = 200


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A refused message, kept once with its raw bytes and why (each refused reading's reason)."""

    topic: str
    reason: str
    payload: bytes
    device_id: str | None = None
    index: int | None = None  # the first refused reading's position in a batch
    refused: int = 1  # readings refused (1 for the whole message)
    reasons: str | None = None  # JSON: [{"index": int | null, "reason": str}, ...], bounded


def clip(text: str, limit: int = LOG_CHARS) -> str:
    """``text`` cut to ``limit`` characters, saying how much was left out."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text) - limit:,} more characters)"


def storable(text: str) -> str:
    """Text PostgreSQL accepts whatever it held: NUL and lone surrogates escaped."""
    if "\x00" in text:
        text = text.replace("\x00", "\\x00")
    try:
        text.encode()
    except UnicodeEncodeError:
        text = text.encode("utf-8", "backslashreplace").decode()
    return text


def dead_letter_for(
    topic: str, payload: bytes, rejections: Sequence[Rejection], *, accepted: int = 0
) -> DeadLetter:
    """The one dead letter of a message with these rejections (``accepted`` readings stored)."""
    first = rejections[0]
    refused = len(rejections)
    listed: list[dict[str, Any]] = []
    size = 2
    for rej in rejections[:MAX_REASONS]:
        entry = {"index": rej.index, "reason": storable(clip(rej.reason, REASON_CHARS))}
        size += len(json.dumps(entry)) + 1
        if size > REASONS_BYTES:
            break
        listed.append(entry)
    if first.index is None and refused == 1:
        summary = first.reason
    else:
        summary = (
            f"{refused:,} of {refused + accepted:,} readings refused"
            f"{f' ({len(listed)} listed)' if len(listed) < refused else ''}; "
            f"reading {first.index}: {first.reason}"
        )
    return DeadLetter(
        storable(topic),
        storable(clip(summary, SUMMARY_CHARS)),
        payload,
        None if first.device_id is None else storable(first.device_id),
        first.index,
        refused,
        json.dumps(listed),
    )


@dataclass(slots=True)
class Batch:
    """What one transaction commits."""

    readings: ReadingColumns = field(default_factory=ReadingColumns)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    statuses: list[DeviceStatus] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.readings) + len(self.dead_letters) + len(self.statuses)

    @classmethod
    def of(
        cls,
        readings: Sequence[Reading] = (),
        dead_letters: Sequence[DeadLetter] = (),
        statuses: Sequence[DeviceStatus] = (),
    ) -> Batch:
        """A batch of these readings (as value objects: tests, benchmarks, bulk loads)."""
        return cls(ReadingColumns.of(readings), list(dead_letters), list(statuses))


class Sink(Protocol):
    """Commits a batch atomically; returns how many readings were new (not duplicates)."""

    async def write(self, batch: Batch) -> int: ...

    async def known_devices(self) -> frozenset[str]: ...


class TimescaleSink:
    """Writes a batch with one statement (db/queries/ingest.py).

    A batch goes in with ``INSERT_BATCH`` (no more database work per reading than COPY) while its
    readings are all new; when one is already stored or twice in the batch, that statement fails
    on the primary key, undone whole, and the batch is merged with ``MERGE_BATCH`` (duplicates
    skipped) instead. After such a batch the sink keeps merging until a batch comes with no
    duplicate, so a logger re-sending its buffer over and over costs one statement a batch, not
    two. Without status messages the statement runs in autocommit mode: one round trip, one
    transaction. Status messages (rare) update ``device_state`` rows that the merge may touch
    too, which one statement cannot do twice, so then the merge and the statuses run in one
    explicit transaction. The pool's connections are put in autocommit mode: give the sink a pool
    of its own.
    """

    def __init__(self, pool: AsyncConnectionPool) -> None:
        self._pool = pool
        self._insert_first = True
        self.merged = 0  # batches that went through the merge (tests read it)

    async def write(self, batch: Batch) -> int:
        params = self._params(batch)
        async with self._pool.connection() as conn:
            if not conn.autocommit:
                # Left so: every statement of ours is its own transaction, or runs in an
                # explicit one (conn.transaction() issues BEGIN/COMMIT in autocommit mode too).
                await conn.set_autocommit(True)
            if not batch.statuses:
                if self._insert_first and len(batch.readings):
                    try:
                        return await self._insert(conn, params)
                    except UniqueViolation as exc:
                        if not _duplicate_reading(exc):
                            raise
                self.merged += 1
                inserted = await self._merge(conn, params)
                self._insert_first = inserted == len(batch.readings)
                return inserted
            async with conn.transaction():
                self.merged += 1
                inserted = await self._merge(conn, params)
                async with conn.cursor() as cur:
                    await cur.executemany(
                        q.UPSERT_STATUS,
                        [
                            {
                                "device_id": s.device_id,
                                "ts": s.ts,
                                "battery": s.battery,
                                "online": s.online,
                                "firmware": s.firmware,
                            }
                            for s in batch.statuses
                        ],
                    )
            return inserted

    @staticmethod
    async def _insert(conn: AsyncConnection, params: dict[str, Any]) -> int:
        cur = await conn.execute(q.INSERT_BATCH, params, binary=True)
        return cur.rowcount

    @staticmethod
    async def _merge(conn: AsyncConnection, params: dict[str, Any]) -> int:
        row = await (await conn.execute(q.MERGE_BATCH, params, binary=True)).fetchone()
        return int(row[0]) if row else 0

    @staticmethod
    def _params(batch: Batch) -> dict[str, Any]:
        """The batch as column arrays, the shape ``unnest`` takes them in, and per device the
        readings' span and latest reading (for INSERT_BATCH)."""
        rs = batch.readings
        dls = batch.dead_letters
        spans = rs.spans()
        latest = [s.latest for s in spans]
        devices = text_array([s.device_id for s in spans])
        return {
            "device_id": text_array(rs.device_id),
            "ts": timestamptz_us_array(rs.ts_us),
            "temp_c": float8_array(rs.temp_c),
            "rh": float8_array(rs.rh),
            "lat": float8_array(rs.lat),
            "lon": float8_array(rs.lon),
            "battery": float4_array(rs.battery),
            "s_device_id": devices,
            "s_ts": timestamptz_us_array([s.ts_max_us for s in spans]),
            "s_temp_c": float8_array([rs.temp_c[i] for i in latest]),
            "s_rh": float8_array([rs.rh[i] for i in latest]),
            "s_lat": float8_array([rs.lat[i] for i in latest]),
            "s_lon": float8_array([rs.lon[i] for i in latest]),
            "s_battery": float4_array([rs.battery[i] for i in latest]),
            "c_device_id": devices,
            "c_ts_min": timestamptz_us_array([s.ts_min_us for s in spans]),
            "c_ts_max": timestamptz_us_array([s.ts_max_us for s in spans]),
            "c_n": int4_array([s.n for s in spans]),
            "notify": json.dumps({"n": len(rs)}),
            # Dead letters are few: psycopg's own list dumper is fine for them.
            "dl_topic": [d.topic for d in dls],
            "dl_device_id": [d.device_id for d in dls],
            "dl_reason": [d.reason for d in dls],
            "dl_index": [d.index for d in dls],
            "dl_payload": [d.payload for d in dls],
            "dl_refused": [d.refused for d in dls],
            "dl_reasons": [d.reasons for d in dls],
        }

    async def known_devices(self) -> frozenset[str]:
        async with self._pool.connection() as conn:
            rows = await (await conn.execute(q.KNOWN_DEVICES)).fetchall()
        return frozenset(r[0] for r in rows)


def _duplicate_reading(exc: UniqueViolation) -> bool:
    """True when INSERT_BATCH met a reading already stored (or twice in its batch)."""
    # TimescaleDB names each chunk's copy of the key "<n>_<m>_readings_pkey".
    return (exc.diag.constraint_name or "").endswith("readings_pkey")


class MemorySink:
    """An in-memory sink with the same semantics (unique per device and time), for unit tests."""

    def __init__(self, devices: frozenset[str] = frozenset()) -> None:
        self.rows: dict[tuple[str, object], Reading] = {}
        self.dead_letters: list[DeadLetter] = []
        self.statuses: list[DeviceStatus] = []
        self.devices = devices

    async def write(self, batch: Batch) -> int:
        new = 0
        for r in batch.readings.rows():
            if (r.device_id, r.ts) not in self.rows:
                self.rows[(r.device_id, r.ts)] = r
                new += 1
        self.dead_letters.extend(batch.dead_letters)
        self.statuses.extend(batch.statuses)
        return new

    async def known_devices(self) -> frozenset[str]:
        return self.devices
