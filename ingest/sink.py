"""Where the ingester puts a batch: TimescaleDB for real, a dict for unit tests."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from coldchain.telemetry import DeviceStatus, Reading
from db.queries import ingest as q
from ingest.pgarrays import float4_array, float8_array, text_array, timestamptz_array


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A refused message (or one refused reading of a batch), kept with its raw bytes."""

    topic: str
    reason: str
    payload: bytes
    device_id: str | None = None
    index: int | None = None


@dataclass(slots=True)
class Batch:
    """What one transaction commits."""

    readings: list[Reading] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    statuses: list[DeviceStatus] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.readings) + len(self.dead_letters) + len(self.statuses)


class Sink(Protocol):
    """Commits a batch atomically; returns how many readings were new (not duplicates)."""

    async def write(self, batch: Batch) -> int: ...

    async def known_devices(self) -> frozenset[str]: ...


class TimescaleSink:
    """Writes a batch with one statement (db/queries/ingest.py, ``MERGE_BATCH``).

    Without status messages the statement runs in autocommit mode: one round trip, one
    transaction. Status messages (rare) update ``device_state`` rows that the merge may touch
    too, which one statement cannot do twice, so then both run in one explicit transaction.
    The pool's connections are put in autocommit mode: give the sink a pool of its own.
    """

    def __init__(self, pool: AsyncConnectionPool) -> None:
        self._pool = pool

    async def write(self, batch: Batch) -> int:
        params = self._params(batch)
        async with self._pool.connection() as conn:
            if not conn.autocommit:
                # Left so: every statement of ours is its own transaction, or runs in an
                # explicit one (conn.transaction() issues BEGIN/COMMIT in autocommit mode too).
                await conn.set_autocommit(True)
            if not batch.statuses:
                return await self._merge(conn, params)
            async with conn.transaction():
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
    async def _merge(conn: AsyncConnection, params: dict[str, Any]) -> int:
        row = await (await conn.execute(q.MERGE_BATCH, params, binary=True)).fetchone()
        return int(row[0]) if row else 0

    @staticmethod
    def _params(batch: Batch) -> dict[str, Any]:
        """The batch as column arrays, the shape ``unnest`` takes them in."""
        rs = batch.readings
        dls = batch.dead_letters
        return {
            "device_id": text_array([r.device_id for r in rs]),
            "ts": timestamptz_array([r.ts for r in rs]),
            "temp_c": float8_array([r.temp_c for r in rs]),
            "rh": float8_array([r.rh for r in rs]),
            "lat": float8_array([r.lat for r in rs]),
            "lon": float8_array([r.lon for r in rs]),
            "battery": float4_array([r.battery for r in rs]),
            # Dead letters are few: psycopg's own list dumper is fine for them.
            "dl_topic": [d.topic for d in dls],
            "dl_device_id": [d.device_id for d in dls],
            "dl_reason": [d.reason for d in dls],
            "dl_index": [d.index for d in dls],
            "dl_payload": [d.payload for d in dls],
        }

    async def known_devices(self) -> frozenset[str]:
        async with self._pool.connection() as conn:
            rows = await (await conn.execute(q.KNOWN_DEVICES)).fetchall()
        return frozenset(r[0] for r in rows)


class MemorySink:
    """An in-memory sink with the same semantics (unique per device and time), for unit tests."""

    def __init__(self, devices: frozenset[str] = frozenset()) -> None:
        self.rows: dict[tuple[str, object], Reading] = {}
        self.dead_letters: list[DeadLetter] = []
        self.statuses: list[DeviceStatus] = []
        self.devices = devices

    async def write(self, batch: Batch) -> int:
        new = 0
        for r in batch.readings:
            if (r.device_id, r.ts) not in self.rows:
                self.rows[(r.device_id, r.ts)] = r
                new += 1
        self.dead_letters.extend(batch.dead_letters)
        self.statuses.extend(batch.statuses)
        return new

    async def known_devices(self) -> frozenset[str]:
        return self.devices
