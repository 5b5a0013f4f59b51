"""Liveness with a database check, and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from api.deps import PoolDep
from api.schemas import Health
from services.health import database_answers

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
    if not database_answers(pool, timeout_s=HEALTH_TIMEOUT_S):
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
