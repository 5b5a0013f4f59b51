"""Wait for the database before the ingester starts, saying so every few seconds.

``coldchain ingest`` starts before, or while, PostgreSQL recovers; rather than fail (and be
restarted in a loop by its supervisor) it waits here, one log line per attempt.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import psycopg

from ingest.sink import clip

__all__ = ["wait_for_database"]

log = logging.getLogger(__name__)


async def wait_for_database(dsn: str, stop: asyncio.Event, *, retry_s: float = 2.0) -> bool:
    """Wait until the database accepts a connection, saying so every few seconds.

    False when asked to stop first. Connection errors (the database not started yet, or still
    recovering) are logged as one line each, never raised.
    """
    began = time.monotonic()
    while not stop.is_set():
        probe = asyncio.ensure_future(_probe(dsn, max(1, int(retry_s))))
        stopped = asyncio.ensure_future(stop.wait())
        await asyncio.wait({probe, stopped}, return_when=asyncio.FIRST_COMPLETED)
        stopped.cancel()
        if not probe.done():
            probe.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await probe
            return False
        error = probe.result()
        if error is None:
            return True
        log.warning(
            "waiting for the database (%.0f s so far): %s; retrying in %.0f s",
            time.monotonic() - began,
            clip(error),
            retry_s,
        )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), retry_s)
    return False


async def _probe(dsn: str, connect_timeout_s: int) -> str | None:
    """None if a connection to ``dsn`` works, else why not."""
    try:
        conn = await psycopg.AsyncConnection.connect(dsn, connect_timeout=connect_timeout_s)
        async with conn:
            await conn.execute("SELECT 1")
    except (psycopg.Error, OSError) as exc:
        return " ".join(str(exc).split()) or type(exc).__name__
    return None
