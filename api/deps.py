"""Dependencies of the API handlers, as ``Annotated`` aliases.

The pool and the settings live on ``app.state`` (set by :func:`api.app.create_app`); a handler
asks for a connection with ``conn: ConnDep`` and gets one from the pool for the request.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from psycopg_pool import ConnectionPool

from coldchain.settings import Settings
from db.queries.web import Conn

WebPool = ConnectionPool[Conn]


def get_settings(request: Request) -> Settings:
    """The settings the app was created with."""
    settings: Settings = request.app.state.settings
    return settings


def get_pool(request: Request) -> WebPool:
    """The connection pool opened by the app's lifespan."""
    pool: WebPool = request.app.state.pool
    return pool


def get_conn(pool: Annotated[WebPool, Depends(get_pool)]) -> Iterator[Conn]:
    """A pooled connection for the duration of the request."""
    with pool.connection() as conn:
        yield conn


def get_offline_factor(settings: Annotated[Settings, Depends(get_settings)]) -> float:
    """How many logging intervals of silence make a logger offline (``alerts.gap_factor``)."""
    return settings.alerts.gap_factor


SettingsDep = Annotated[Settings, Depends(get_settings)]
PoolDep = Annotated[WebPool, Depends(get_pool)]
ConnDep = Annotated[Conn, Depends(get_conn)]
OfflineFactorDep = Annotated[float, Depends(get_offline_factor)]
