"""Whether the platform can serve (the database answers), and how the pipeline behind it keeps up.

A health check must answer quickly even when every pooled connection is busy, so this takes the
pool and bounds the wait for a connection, instead of a connection the caller already waited for.

:func:`pipeline_figures` is what ``/healthz``, ``/metrics`` and the admin page's "System" panel
show of the rules engines and the outbox (the engines' own heartbeat, alerts/heartbeat.py, judges
the same lag): the engines' lag (the age of the oldest change they have not processed), the age
of the oldest notification not yet delivered, how many notifications wait for a retry, how many
were given up within the hour, and how many engines beat.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from alerts.partitions import cursor_prefix
from coldchain.settings import AlertsSettings
from db.queries import health as health_q
from db.types import Conn

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PipelineFigures:
    """How the rules engines and the outbox keep up (seconds and counts; 0 s: nothing waiting)."""

    engine_lag_s: float
    outbox_oldest_s: float
    notifications_retrying: int
    deliveries_failed_1h: int
    engines: int


def database_answers(pool: ConnectionPool[Conn], *, timeout_s: float) -> bool:
    """True when a connection comes within ``timeout_s`` and the database answers ``SELECT 1``;
    False (with one warning saying why) when it does not."""
    try:
        with pool.connection(timeout=timeout_s) as conn:
            return health_q.ping(conn=conn)
    except (PoolTimeout, psycopg.Error) as exc:
        log.warning("health check: database unavailable: %s", exc)
        return False


def pipeline_figures(
    pool: ConnectionPool[Conn], settings: AlertsSettings, *, timeout_s: float
) -> PipelineFigures | None:
    """The pipeline's figures, or None (with one warning) when the database does not answer
    within ``timeout_s``."""
    try:
        with pool.connection(timeout=timeout_s) as conn:
            return pipeline_figures_on(conn, settings)
    except (PoolTimeout, psycopg.Error) as exc:
        log.warning("health check: pipeline figures unavailable: %s", exc)
        return None


def pipeline_figures_on(conn: Conn, settings: AlertsSettings) -> PipelineFigures:
    """The pipeline's figures read on ``conn`` (the dashboard's connection)."""
    row = health_q.pipeline(
        conn=conn,
        prefix=cursor_prefix(settings.partitions),
        timeout_s=settings.engine_timeout_s,
    )
    return PipelineFigures(
        engine_lag_s=round(float(row["engine_lag_s"]), 3),
        outbox_oldest_s=round(float(row["outbox_oldest_s"]), 3),
        notifications_retrying=int(row["notifications_retrying"]),
        deliveries_failed_1h=int(row["deliveries_failed_1h"]),
        engines=int(row["engines"]),
    )
