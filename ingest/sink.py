"""Where the ingester puts a batch: TimescaleDB for real, a list for unit tests."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Protocol

from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from coldchain.telemetry import DeviceStatus, Reading
from db.queries import ingest as q


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
    """Writes batches through binary COPY into a staging table, then one merge statement."""

    def __init__(self, pool: AsyncConnectionPool) -> None:
        self._pool = pool

    async def write(self, batch: Batch) -> int:
        async with self._pool.connection() as conn, conn.transaction():
            inserted = 0
            if batch.readings:
                inserted = await self._write_readings(conn, batch.readings)
            if batch.dead_letters:
                async with conn.cursor() as cur:
                    await cur.executemany(
                        q.INSERT_DEAD_LETTER,
                        [
                            (d.topic, d.device_id, d.reason, d.index, d.payload)
                            for d in batch.dead_letters
                        ],
                    )
            if batch.statuses:
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
            if inserted:
                # Delivered at commit: wakes the rules engine without polling.
                await conn.execute(q.NOTIFY_CHANGES, (json.dumps({"n": inserted}),))
        return inserted

    @staticmethod
    async def _write_readings(conn: AsyncConnection, readings: list[Reading]) -> int:
        await conn.execute(q.STAGING_CREATE)
        async with conn.cursor() as cur:
            async with cur.copy(q.STAGING_COPY) as copy:
                copy.set_types(q.STAGING_TYPES)
                for r in readings:
                    await copy.write_row(
                        (r.device_id, r.ts, r.temp_c, r.rh, r.lat, r.lon, r.battery)
                    )
            await cur.execute(q.MERGE_STAGED)
            row = await cur.fetchone()
        return int(row[0]) if row else 0

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
