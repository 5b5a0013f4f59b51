"""LISTEN on database channels and wake whoever waits on them.

The ingester NOTIFYs ``reading_changes`` after each commit, the rules engine
``alert_notifications`` when it queues one, ``shipment_events`` rows NOTIFY ``lifecycle_events``
(``db/migrations/0012_lifecycle_automation.sql``); the long-running workers (the rules engine,
the lifecycle automation) wait on these instead of polling.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import psycopg
from psycopg import AsyncConnection


async def listen(dsn: str, wakes: Mapping[str, asyncio.Event], stop: asyncio.Event) -> None:
    """LISTEN on each channel and set its event; reconnect quietly when the database goes away."""
    while not stop.is_set():
        try:
            async with await AsyncConnection.connect(dsn, autocommit=True) as conn:
                for channel in wakes:
                    await conn.execute(f"LISTEN {channel}")
                for event in wakes.values():
                    event.set()  # whatever happened while we were not listening
                async for notify in conn.notifies():
                    woken = wakes.get(notify.channel)
                    if woken is not None:
                        woken.set()
        except psycopg.OperationalError:
            await asyncio.sleep(1.0)
