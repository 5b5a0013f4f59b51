"""Liveness with a database check, and Prometheus metrics."""

from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from api.deps import PoolDep, SettingsDep
from api.schemas import Health, Pipeline
from services.health import database_answers, pipeline_figures

router = APIRouter(tags=["health"])
HEALTH_TIMEOUT_S = 3.0


@router.get(
    "/healthz",
    response_model=Health,
    responses={503: {"description": "the database does not answer"}},
)
def healthz(pool: PoolDep, settings: SettingsDep) -> Health | JSONResponse:
    """``{"status": "ok", "pipeline": {...}}`` when the database answers ``SELECT 1`` within a
    few seconds, else a 503 saying so (a health check must answer quickly, even when the pool is
    exhausted). ``pipeline``: how the rules engines and the outbox keep up (the status stays
    "ok" whatever they say: it is the web process's; the engines' heartbeat judges theirs)."""
    if not database_answers(pool, timeout_s=HEALTH_TIMEOUT_S):
        return JSONResponse(
            status_code=503,
            content={"status": "unavailable", "detail": "the database does not answer"},
        )
    figures = pipeline_figures(pool, settings.alerts, timeout_s=HEALTH_TIMEOUT_S)
    return Health(status="ok", pipeline=None if figures is None else Pipeline(**asdict(figures)))


@router.get("/metrics", response_class=Response)
def metrics(request: Request, pool: PoolDep, settings: SettingsDep) -> Response:
    """The app's Prometheus registry: HTTP requests and latency per route, pool usage, and the
    pipeline's figures (engine lag, outbox age, retrying and given-up notifications, engines)."""
    request.app.state.metrics.record_pipeline(
        pipeline_figures(pool, settings.alerts, timeout_s=HEALTH_TIMEOUT_S)
    )
    return Response(
        generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST
    )
