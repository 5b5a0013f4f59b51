"""Several rules engines share the work: partitions of shipments, claimed through PostgreSQL.

**The unit of work is the shipment.** Alerts, and their reconciliation, are per shipment (one
open alert per shipment and rule, ``alerts_one_open``); two engines must never settle the same
shipment at once, or the second would tell the receivers again what the first just told them.
The shipments are split into ``alerts.partitions`` partitions by a hash of their id
(``rules_partition``, a SQL function: db/migrations/0015). ``reading_changes`` names devices,
not shipments, so a round resolves each change to the (shipment, device) pairs it touches
through the assignment at the readings' time (as one engine always did) and keeps the pairs
of its partitions: a change that touches two shipments (a logger reassigned within an
upload) is evaluated by each shipment's partition, each with its own cursor. Partitioning by
device instead would have put a shipment with two loggers in two partitions, and needed a lock
per shipment around each reconcile.

**Safety rests on row locks, not on the claims.** Each partition has its cursor row in
``engine_cursor`` (``rules/<partitions>/<p>``). Every transaction that writes a partition's
results (a round of changes, the periodic re-judging and offline check) first locks the
partition's cursor row ``FOR UPDATE SKIP LOCKED`` and works only on the partitions it locked,
then moves their cursors in the same transaction. So two transactions on one partition never
overlap, and the second reads the cursor the first moved: no change is evaluated twice at
once, none skipped, whoever believes it holds the partition. A cursor is a position
``(last_xid, last_change_id)`` that moves by the transaction horizon (:mod:`coldchain.changes`),
so a change committed after a later one is not passed over either. Escalation works on the alerts of
its partitions with the alerts' own row locks (``FOR UPDATE SKIP LOCKED``, as before).

**The claims share the work.** An engine (:class:`PartitionClaimer`) keeps one dedicated
connection on which it holds a session advisory lock per partition it works on
(``pg_try_advisory_lock``): a killed engine's connection closes, its backend exits and the
locks go with it. It registers a row in ``rules_engines`` with that connection's backend pid
and beats every ``alerts.claim_interval_s``, recording which partitions it holds. Each beat:

- engines whose backend is gone are forgotten; engines whose heartbeat is older than
  ``alerts.engine_timeout_s`` (hung, suspended, cut off, yet connected) are *fenced*: their
  connections are ended (``pg_terminate_backend`` by application name), which rolls back their
  transaction and frees their locks, and they are forgotten;
- the fair share is ``ceil(partitions / live engines)`` (:func:`plan`): while another live
  engine holds fewer than its share, an engine above it releases the extras and takes at most
  its share; otherwise it takes every free partition. So a new engine gets its share within
  two beats, and a killed one's partitions are free at once and taken at the next beat.

Takeover bound: a killed engine's partitions are evaluated again within ``claim_interval_s``
plus one round; a hung one's within ``engine_timeout_s + claim_interval_s`` plus one round.
Engines must agree on ``alerts.partitions``: one that sees a live engine with another number
claims nothing (and says so) until that engine is gone; change it with all engines stopped.
A new set of partition cursors starts at the lowest cursor of the set in use before
(db/queries/partitions.py), so that change, and the upgrade from the former single cursor,
re-evaluate some changes (idempotent) and lose none.

The periodic pass is partitioned the same way: each engine re-judges and checks the silence of
its own partitions' shipments, so it runs once per shipment, never twice at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import socket
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import psycopg
from psycopg import AsyncConnection
from psycopg.rows import dict_row

from coldchain.settings import AlertsSettings
from db.queries import partitions as q

log = logging.getLogger(__name__)

APPLICATION_PREFIX = "coldchain-rules "


def cursor_prefix(partitions: int) -> str:
    """The names of a partition count's cursor rows start with this."""
    return f"rules/{partitions}/"


def cursor_name(partitions: int, partition: int) -> str:
    """The ``engine_cursor`` row of one partition."""
    return f"{cursor_prefix(partitions)}{partition}"


def application_name(engine_id: str) -> str:
    """The application_name of every connection of an engine (so it can be fenced)."""
    return APPLICATION_PREFIX + engine_id


class Claims(Protocol):
    """What a rules engine works on: ``partitions`` in all, of which it holds ``held``."""

    @property
    def partitions(self) -> int: ...

    @property
    def held(self) -> frozenset[int]: ...


@dataclass(frozen=True, slots=True)
class AllPartitions:
    """Every partition, claimed from nobody: one engine alone (tests, benches, a round run by
    hand). Safe beside others all the same (the cursor rows' locks), only not shared."""

    partitions: int

    @property
    def held(self) -> frozenset[int]:
        return frozenset(range(self.partitions))


@dataclass(frozen=True, slots=True)
class Plan:
    """What one beat does: release these partitions, then take free ones up to ``target``."""

    release: tuple[int, ...]
    target: int


def fair_share(partitions: int, live_engines: int) -> int:
    """Each engine's share: ``ceil(partitions / live engines)``."""
    return math.ceil(partitions / max(live_engines, 1))


def plan(held: frozenset[int], others_held: Sequence[int], partitions: int) -> Plan:
    """One beat's decision from the partitions held here and how many each other live engine holds.

    While another engine is below its share, this one gives back what it holds above the share
    (the highest partitions) and takes no more than the share; otherwise it may take every free
    partition (a killed engine's, at once, before anyone knows it is dead).
    """
    share = fair_share(partitions, 1 + len(others_held))
    starving = any(n < share for n in others_held)
    if not starving:
        return Plan(release=(), target=partitions)
    extra = max(len(held) - share, 0)
    return Plan(release=tuple(sorted(held, reverse=True)[:extra]), target=share)


class PartitionClaimer:
    """Holds this engine's partitions on a dedicated connection and beats (see the module doc)."""

    def __init__(
        self,
        dsn: str,
        settings: AlertsSettings,
        *,
        engine_id: str | None = None,
        on_gain: Callable[[], None] = lambda: None,
    ) -> None:
        self._dsn = dsn
        self._interval = settings.claim_interval_s
        self._timeout = settings.engine_timeout_s
        self.partitions = settings.partitions
        self.engine_id = engine_id or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.application_name = application_name(self.engine_id)
        self._on_gain = on_gain
        self._held: frozenset[int] = frozenset()
        self._conn: AsyncConnection[Any] | None = None
        self._disagreeing: str | None = None  # logged once
        # The last beat (time.monotonic()): a sign of life for alerts.heartbeat.
        self.beat_at: float | None = None

    @property
    def held(self) -> frozenset[int]:
        return self._held

    async def run(self, stop: asyncio.Event) -> None:
        """Claim and beat until ``stop``; reconnect (holding nothing meanwhile) when cut off."""
        while not stop.is_set():
            try:
                async with await AsyncConnection.connect(
                    self._dsn,
                    autocommit=True,
                    row_factory=dict_row,
                    application_name=self.application_name,
                ) as conn:
                    self._conn = conn
                    await conn.execute(
                        q.REGISTER_ENGINE,
                        {
                            "engine_id": self.engine_id,
                            "host": socket.gethostname(),
                            "pid": os.getpid(),
                            "partitions": self.partitions,
                        },
                    )
                    while not stop.is_set():
                        await self.beat()
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(stop.wait(), timeout=self._interval)
                    await self._leave(conn)
            except psycopg.Error as exc:
                # The locks went with the connection: hold nothing until claimed again.
                self._held = frozenset()
                log.warning("partition claims lost (%s); claiming again", exc)
                await asyncio.sleep(self._interval)
            finally:
                self._conn = None

    async def beat(self) -> None:
        """One heartbeat: forget or fence stopped engines, release extras, take free partitions."""
        conn = self._conn
        assert conn is not None, "beat() runs inside run()"
        engines = await (await conn.execute(q.ENGINES, {"timeout_s": self._timeout})).fetchall()
        others: list[int] = []
        for e in engines:
            if e["engine_id"] == self.engine_id:
                continue
            if not e["connected"] or not e["fresh"]:
                await self._forget(conn, e["engine_id"], fence=bool(e["connected"]))
                continue
            if e["partitions"] != self.partitions:
                await self._disagree(conn, e["engine_id"], e["partitions"])
                await self._heartbeat(conn, frozenset())
                return
            others.append(int(e["n_held"]))
        self._disagreeing = None
        decided = plan(self._held, others, self.partitions)
        for p in decided.release:
            await conn.execute(q.RELEASE, {"cls": q.LOCK_CLASS, "partition": p})
        held = set(self._held) - set(decided.release)
        gained = 0
        # Start at an engine-specific place so that two engines claiming at once rarely meet.
        start = hash(self.engine_id) % self.partitions
        for k in range(self.partitions):
            if len(held) >= decided.target:
                break
            p = (start + k) % self.partitions
            if p in held:
                continue
            row = await (
                await conn.execute(q.TRY_CLAIM, {"cls": q.LOCK_CLASS, "partition": p})
            ).fetchone()
            if row is not None and row["claimed"]:
                held.add(p)
                gained += 1
        if decided.release or gained:
            log.info(
                "partitions: released %s, took %d, holding %d of %d",
                list(decided.release) or "none",
                gained,
                len(held),
                self.partitions,
            )
        await self._heartbeat(conn, frozenset(held))
        self._held = frozenset(held)
        self.beat_at = time.monotonic()
        if gained:
            self._on_gain()

    async def _heartbeat(self, conn: AsyncConnection[Any], held: frozenset[int]) -> None:
        """Say this engine is alive and what it holds (others size their share on it)."""
        mine = await conn.execute(q.HEARTBEAT, {"held": sorted(held), "engine_id": self.engine_id})
        if await mine.fetchone() is None:
            # Another engine fenced us (our heartbeat was late): start again from nothing (the
            # locks go with the connection, which the caller's ``async with`` closes).
            raise psycopg.OperationalError("this engine was fenced by another one")

    async def _forget(self, conn: AsyncConnection[Any], engine_id: str, *, fence: bool) -> None:
        if fence:
            try:
                ended = await (
                    await conn.execute(
                        q.END_ENGINE_CONNECTIONS, {"application_name": application_name(engine_id)}
                    )
                ).fetchone()
            except psycopg.errors.InsufficientPrivilege as exc:
                # Its partitions stay locked until it dies or beats again; say so every beat.
                log.error("engine %s stopped beating but cannot be fenced: %s", engine_id, exc)
                return
            log.warning(
                "engine %s stopped beating for %.0f s: its %s connection(s) ended, "
                "its partitions freed",
                engine_id,
                self._timeout,
                ended["ended"] if ended else 0,
            )
        else:
            log.info("engine %s is gone; its partitions are free", engine_id)
        await conn.execute(q.FORGET_ENGINE, {"engine_id": engine_id})

    async def _disagree(self, conn: AsyncConnection[Any], engine_id: str, theirs: int) -> None:
        """Another live engine splits the work differently: hold nothing until it is gone."""
        if self._disagreeing != engine_id:
            self._disagreeing = engine_id
            log.error(
                "engine %s runs with %d partitions, this one with %d "
                "(COLDCHAIN_ALERTS__PARTITIONS): claiming nothing until it stops",
                engine_id,
                theirs,
                self.partitions,
            )
        for p in self._held:
            await conn.execute(q.RELEASE, {"cls": q.LOCK_CLASS, "partition": p})
        self._held = frozenset()

    async def _leave(self, conn: AsyncConnection[Any]) -> None:
        """A clean stop: give the partitions back and say so, so they are taken at once."""
        self._held = frozenset()
        try:
            await conn.execute("SELECT pg_advisory_unlock_all()")
            await conn.execute(q.FORGET_ENGINE, {"engine_id": self.engine_id})
        except psycopg.Error as exc:
            log.warning("leaving the partitions: %s (they are freed with the connection)", exc)
