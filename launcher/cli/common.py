"""What every command shares: settings and logging, the signal-driven run, a connection, who acts.

Each command builds the settings once (:func:`load_settings`) and passes them on; nothing here is
a global.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from typing import TYPE_CHECKING, Any

from coldchain.settings import Settings

if TYPE_CHECKING:
    from db.types import Conn


def load_settings() -> Settings:
    """The settings from ``COLDCHAIN_…`` variables (and ``.env``), with logging set up by them."""
    settings = Settings()
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
    )
    logging.getLogger("yoyo").setLevel(logging.WARNING)  # one line per step is noise
    # httpx logs each request's full URL at INFO: webhook (Slack, Teams…) and heartbeat URLs
    # carry secrets.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    return settings


def run_until_signal(main: object) -> None:
    """Run an ``async def main(stop)`` until SIGINT/SIGTERM, then let it finish cleanly."""

    async def runner() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await main(stop)  # type: ignore[operator]

    asyncio.run(runner())


def connect(settings: Settings) -> Conn:
    """An autocommit, dict-row connection in UTC as the services' role (what the audit records).

    Imports of EPCIS documents open their own transaction.
    """
    import psycopg
    from psycopg.rows import dict_row

    return psycopg.connect(
        settings.db.dsn, autocommit=True, row_factory=dict_row, options="-c TimeZone=UTC"
    )


def cli_context(reason: str | None = None) -> Any:
    """Who acts from the command line: the operating-system user, on this host."""
    import getpass
    import socket

    from security.audit import AuditContext

    return AuditContext(f"cli:{getpass.getuser()}", "admin", f"cli@{socket.gethostname()}", reason)
