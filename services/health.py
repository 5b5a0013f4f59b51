"""Whether the platform can serve: the database answers.

A health check must answer quickly even when every pooled connection is busy, so this takes the
pool and bounds the wait for a connection, instead of a connection the caller already waited for.
"""

from __future__ import annotations

import logging

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from db.queries import health as health_q
from db.types import Conn

log = logging.getLogger(__name__)


def database_answers(pool: ConnectionPool[Conn], *, timeout_s: float) -> bool:
    """True when a connection comes within ``timeout_s`` and the database answers ``SELECT 1``;
    False (with one warning saying why) when it does not."""
    try:
        with pool.connection(timeout=timeout_s) as conn:
            return health_q.ping(conn=conn)
    except (PoolTimeout, psycopg.Error) as exc:
        log.warning("health check: database unavailable: %s", exc)
        return False
