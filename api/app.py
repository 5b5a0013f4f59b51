"""The web process: the HTTP API and the Dash dashboard as one ASGI app on one port.

    /api/v1/...     the API (routers in ``api.routers``)
    /api/docs       OpenAPI docs (``/api/openapi.json``)
    /healthz        liveness with a database check
    /metrics        Prometheus metrics of this app
    /               the dashboard (Dash on Flask, through a2wsgi), with every other path

One synchronous psycopg pool serves both: it is created closed here, opened in the lifespan and
waited for, so a wrong DSN fails at start-up instead of at the first request. API handlers are
plain ``def`` (FastAPI runs them in its thread pool); Dash callbacks run in a2wsgi's threads.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from a2wsgi import WSGIMiddleware
from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from psycopg import Connection
from psycopg.rows import DictRow, dict_row
from psycopg_pool import ConnectionPool, PoolTimeout
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.deps import WebPool
from api.routers import alerts, devices, excursions, health, products, readings, shipments
from coldchain.errors import NotFoundError, SetupError
from coldchain.settings import Settings
from dashboard.app import create_dash
from db.queries.web import AlertConflictError

log = logging.getLogger(__name__)

API_PREFIX = "/api/v1"
POOL_WAIT_S = 10.0
POOL_CLOSE_S = 5.0


def create_pool(settings: Settings) -> WebPool:
    """A closed pool of dict-row, autocommit connections in UTC (writes use explicit
    transactions), sized by ``settings.db``."""
    return ConnectionPool(
        settings.db.dsn,
        connection_class=Connection[DictRow],
        kwargs={"autocommit": True, "row_factory": dict_row, "options": "-c TimeZone=UTC"},
        min_size=settings.db.pool_min,
        max_size=max(settings.db.pool_min, settings.db.pool_max),
        open=False,
        name="web",
        timeout=10.0,
    )


def open_pool(pool: WebPool, settings: Settings) -> None:
    """Open the pool and wait for its first connections; SetupError naming the database if not."""
    pool.open()
    try:
        pool.wait(timeout=POOL_WAIT_S)
    except PoolTimeout as exc:
        pool.close()
        db = settings.db
        raise SetupError(
            f"cannot connect to the database {db.name!r} at {db.host}:{db.port} as {db.user!r} "
            f"within {POOL_WAIT_S:.0f} s: check COLDCHAIN_DB__* and that the stack is up "
            "(`coldchain up`)"
        ) from exc


@dataclass
class HttpMetrics:
    """Prometheus metrics of one app, in a registry of its own (apps in tests never collide)."""

    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        self.requests = Counter(
            "coldchain_http_requests",
            "HTTP requests served, by method, route template and status code.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "coldchain_http_request_duration_seconds",
            "Time to serve an HTTP request, by method and route template.",
            ["method", "route"],
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )

    def watch_pool(self, pool: WebPool) -> None:
        """Export the pool's size and idle connections."""
        size = Gauge(
            "coldchain_web_db_pool_connections", "Connections in the pool.", registry=self.registry
        )
        idle = Gauge(
            "coldchain_web_db_pool_available",
            "Idle connections in the pool.",
            registry=self.registry,
        )
        size.set_function(lambda: pool.get_stats().get("pool_size", 0))
        idle.set_function(lambda: pool.get_stats().get("pool_available", 0))


class RouteLabels:
    """Low-cardinality route labels for metrics: the API's path templates, and a few parts of
    the dashboard. Templates come from the app's OpenAPI paths (read at the first request, when
    every route exists), so the labels are the full paths a client sees."""

    def __init__(self, templates: Callable[[], Iterable[str]]) -> None:
        self._templates = templates
        self._compiled: list[tuple[re.Pattern[str], str]] | None = None

    def __call__(self, path: str) -> str:
        """The label of a request path."""
        if self._compiled is None:
            self._compiled = [(compile_path(t)[0], t) for t in self._templates()]
        for pattern, template in self._compiled:
            if pattern.match(path):
                return template
        if path.startswith("/api/"):
            return "/api/{path}"
        if path.startswith("/_dash-"):
            return "dashboard " + path.split("/", 2)[1]
        if path.startswith(("/assets/", "/_favicon")):
            return "dashboard static"
        return "dashboard page"


class MetricsMiddleware:
    """Counts every HTTP request and times it, labelled by route template."""

    def __init__(self, app: ASGIApp, metrics: HttpMetrics, labels: RouteLabels) -> None:
        self.app = app
        self.metrics = metrics
        self.labels = labels

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        started = time.perf_counter()

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            route = self.labels(scope.get("path", ""))
            method = scope.get("method", "")
            self.metrics.requests.labels(method, route, str(status)).inc()
            self.metrics.latency.labels(method, route).observe(time.perf_counter() - started)


def _install_error_handlers(app: FastAPI) -> None:
    async def not_found(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse(status_code=404, content={"detail": str(exc)})

    async def conflict(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse(status_code=409, content={"detail": str(exc)})

    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        error_id = uuid.uuid4().hex[:12]
        log.error(
            "unexpected error %s on %s %s", error_id, request.method, request.url.path, exc_info=exc
        )
        return JSONResponse(
            status_code=500,
            content={
                "detail": "internal error; the server log has the details under this error_id",
                "error_id": error_id,
            },
        )

    app.add_exception_handler(NotFoundError, not_found)
    app.add_exception_handler(AlertConflictError, conflict)
    app.add_exception_handler(Exception, unexpected)


def create_app(settings: Settings) -> FastAPI:
    """The FastAPI app with the API under ``/api/v1`` and the dashboard mounted at ``/``."""
    pool = create_pool(settings)
    metrics = HttpMetrics()
    metrics.watch_pool(pool)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(open_pool, pool, settings)
        log.info("web: database pool open (%s)", settings.db.name)
        try:
            yield
        finally:
            await run_in_threadpool(pool.close, POOL_CLOSE_S)

    app = FastAPI(
        title="Cold chain API",
        version="1",
        summary="Shipments, readings, excursions and alerts of the cold-chain platform.",
        docs_url="/api/docs",
        redoc_url=None,
        openapi_url="/api/openapi.json",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.pool = pool
    app.state.metrics = metrics
    labels = RouteLabels(
        lambda: [*app.openapi()["paths"], app.docs_url or "", app.openapi_url or ""]
    )
    app.add_middleware(MetricsMiddleware, metrics=metrics, labels=labels)
    _install_error_handlers(app)

    app.include_router(health.router)
    for router in (
        shipments.router,
        readings.router,
        excursions.router,
        alerts.router,
        devices.router,
        products.router,
    ):
        app.include_router(router, prefix=API_PREFIX)

    # Unknown /api paths answer in JSON instead of falling through to the dashboard's HTML.
    @app.api_route(
        "/api/{path:path}",
        methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
        include_in_schema=False,
    )
    def no_such_route(request: Request, path: str) -> JSONResponse:
        return JSONResponse(
            status_code=404,
            content={"detail": f"no API route {request.method} {request.url.path}"},
        )

    dash_app = create_dash(settings, pool)
    app.mount("/", WSGIMiddleware(dash_app.server), name="dashboard")  # type: ignore[arg-type]
    return app
