"""The web process's database check."""

from __future__ import annotations

from db.types import Conn


def ping(*, conn: Conn) -> bool:
    """True when the database answers ``SELECT 1``."""
    row = conn.execute("SELECT 1 AS ok").fetchone()
    return row is not None and row["ok"] == 1
