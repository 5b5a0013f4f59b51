"""What the running services share: the wall clock they are given, and waiting on events.

The pure core never reads the clock (``now`` is a parameter); the services take a ``clock``
callable that defaults to :func:`utcnow`, so tests can inject their own.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime


def utcnow() -> datetime:
    """The current time, timezone-aware, in UTC."""
    return datetime.now(UTC)


async def first_of(*events: asyncio.Event) -> None:
    """Return when any of the events is set (the waiters on the others are cancelled)."""
    waiters = [asyncio.create_task(e.wait()) for e in events]
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waiters:
            w.cancel()
