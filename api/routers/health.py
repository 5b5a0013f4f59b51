"""Liveness with a database check, and Prometheus metrics."""

from __future__ import annotations

import logging

import psycopg
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from psycopg_pool import PoolTimeout

from api.deps import PoolDep
from api.schemas import Health
from db.queries import health as health_q

log = logging.getLogger(__name__)
router = APIRouter(tags=["health"])
HEALTH_TIMEOUT_S = 3.0


@router.get(
    "/healthz",
    response_model=Health,
    responses={503: {"description": "the database does not answer"}},
)
def healthz(pool: PoolDep) -> Health | JSONResponse:
    """``{"status": "ok"}`` when the database answers ``SELECT 1`` within a few seconds, else a
    503 saying so (a health check must answer quickly, even when the pool is exhausted)."""
    try:
        with pool.connection(timeout=HEALTH_TIMEOUT_S) as conn:
            ok = health_q.ping(conn=conn)
    except (PoolTimeout, psycopg.Error) as exc:
        log.warning("health check: database unavailable: %s", exc)
        ok = False
    if not ok:
        return JSONResponse(
            status_code=503,
            content={"status": "unavailable", "detail": "the database does not answer"},
        )
    return Health(status="ok")


@router.get("/metrics", response_class=Response)
def metrics(request: Request) -> Response:
    """The app's Prometheus registry: HTTP requests and latency per route, pool usage."""
    return Response(
        generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST
    )
