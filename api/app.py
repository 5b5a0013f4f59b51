"""The web process: the HTTP API and the Dash dashboard as one ASGI app on one port.

    /api/v1/...     the API (routers in ``api.routers``)
    /api/docs       OpenAPI docs (``/api/openapi.json``) in Swagger UI, from the app's own
                    files, so they work offline (:mod:`api.docs`)
    /healthz        liveness with a database check
    /metrics        Prometheus metrics of this app
    /               the dashboard (Dash on Flask, through a2wsgi), with every other path

No request for the API side falls through to the dashboard (:class:`ApiFallback`): under
``/api/`` and at ``/healthz`` and ``/metrics`` a method the path does not take is a 405 with
``Allow``, an unknown path a 404, both in JSON. Every route under ``/api/v1`` documents 401, 403,
404 and 503 (and 400 and 413 when it reads a body), and every 422 has one schema
(:data:`api.errors.UNPROCESSABLE_SCHEMA`).

One synchronous psycopg pool serves both: it is created closed here, opened in the lifespan and
waited for, so a wrong DSN fails at start-up instead of at the first request. API handlers are
plain ``def`` (FastAPI runs them in its thread pool); Dash callbacks run in a2wsgi's threads.
The pool checks a connection before lending it, so connections broken by a database restart are
replaced instead of failing a request.

Admission (:class:`api.middleware.AdmissionMiddleware`): a request's connection is taken in one thread-pool hop
(the dependency) and used and returned in others (handler, response, teardown). Left alone,
50 clients filled the 40 worker threads with requests *waiting* for one of the 8 connections,
so the requests *holding* them got no thread to finish in: every wait ran into the pool's
timeout (a 500 each, ``bench/api_load.py``). So at most ``web.max_concurrent_requests``
(default: the pool's size) requests that may use the database run at once; the others wait
outside the thread pool, in line, for up to ``web.queue_timeout_s``, then get 503 with
``Retry-After``. A pool timeout or a lost database answers 503 with ``Retry-After`` as well,
never 500.

Security (README "Security"): every router included under ``/api/v1`` requires authentication
and the permission its routes declare (:func:`api.deps.authorize`, added to each router in the
include loop, so a router added later is closed by default); only ``POST /api/v1/auth/login``,
``/healthz`` and ``/metrics`` are open. Request bodies are limited in size before any handler
reads them; the dashboard has its own login (:mod:`dashboard.pages.login`).

Here: the pool, the routers and the OpenAPI document put together by :func:`create_app`; the
middlewares are in :mod:`api.middleware`, the mapping of errors to statuses in :mod:`api.errors`.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import psycopg
from a2wsgi import WSGIMiddleware
from fastapi import Depends, FastAPI
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute, APIRouter
from psycopg import Connection
from psycopg.rows import DictRow, dict_row
from psycopg_pool import ConnectionPool, PoolTimeout
from starlette.routing import compile_path
from starlette.types import ASGIApp, Receive, Scope, Send

from api.deps import WebPool, authorize, route_permission
from api.docs import DOCS_URL, install_docs
from api.errors import install_error_handlers, one_422_schema
from api.middleware import (
    AdmissionMiddleware,
    BodyLimitMiddleware,
    HttpMetrics,
    MetricsMiddleware,
    RouteLabels,
)
from api.routers import (
    ack,
    alerts,
    arrivals,
    ask,
    audit,
    auth,
    bookings,
    devices,
    dispositions,
    epcis,
    escalation,
    excursions,
    health,
    insight,
    locations,
    notify,
    oncall,
    products,
    readings,
    recalls,
    release_policies,
    reports,
    rules,
    shipments,
    units,
    users,
)
from api.schemas import ErrorOut
from coldchain.errors import SetupError
from coldchain.settings import Settings
from dashboard.app import create_dash
from db.types import Conn
from security.ratelimit import LoginLimiter
from security.roles import roles_with
from services.reports import ReportSettings

log = logging.getLogger(__name__)

API_PREFIX = "/api/v1"
#: Answers any route under /api/v1 may give besides its own (a route's own description wins).
COMMON_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "no credentials, or invalid, expired or revoked ones"},
    403: {"model": ErrorOut, "description": "the caller's role lacks the route's permission"},
    404: {
        "model": ErrorOut,
        "description": "a shipment, alert, unit or other record named in the path or query "
        "does not exist",
    },
    503: {
        "model": ErrorOut,
        "description": "the server is busy or the database is unavailable; retry after "
        "Retry-After seconds",
    },
}
#: Answers of any route that reads a JSON body.
BODY_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorOut, "description": "the body is not JSON (or not UTF-8)"},
    413: {"model": ErrorOut, "description": "the body is larger than the limit"},
}
POOL_WAIT_S = 10.0
POOL_CLOSE_S = 5.0


class _CheckOnLend:
    """The pool's check of a connection it is about to lend. One broken connection usually
    means the server restarted and every idle one is broken: they are all checked at once then
    (``pool.check()``), instead of one per retry of ``getconn`` with a growing back-off (eight
    stale connections took longer than the pool's timeout: a 503 after a restart)."""

    def __init__(self) -> None:
        self.pool: WebPool | None = None

    def __call__(self, conn: Conn) -> None:
        try:
            ConnectionPool.check_connection(conn)
        except psycopg.Error:
            if self.pool is not None:
                self.pool.check()  # the idle ones; replacements connect in the background
            raise


def create_pool(settings: Settings) -> WebPool:
    """A closed pool of dict-row, autocommit connections in UTC (writes use explicit
    transactions), sized by ``settings.db``."""
    check = _CheckOnLend()
    check.pool = ConnectionPool(
        settings.db.dsn,
        connection_class=Connection[DictRow],
        kwargs={"autocommit": True, "row_factory": dict_row, "options": "-c TimeZone=UTC"},
        min_size=settings.db.pool_min,
        max_size=max(settings.db.pool_min, settings.db.pool_max),
        open=False,
        name="web",
        timeout=settings.db.pool_timeout_s,
        # A connection the server closed (restart, failover, idle timeout) is found and replaced
        # when it is lent, not when a request uses it (README "Web process").
        check=check,
    )
    return check.pool


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


def _document_body_errors(router: APIRouter) -> None:
    """Document 400 and 413 on every route that reads a JSON body (before it is included)."""
    for route in router.routes:
        if isinstance(route, APIRoute) and route.body_field is not None:
            route.responses = {**BODY_RESPONSES, **route.responses}


def _document_permissions(router: APIRouter) -> None:
    """Show every route's permission and roles in the OpenAPI document, including the routes
    that rely on the default (read for GET, admin otherwise). Done before the router is
    included: the app copies each route's settings when it includes it."""
    _document_body_errors(router)
    for route in router.routes:
        if not isinstance(route, APIRoute):
            continue
        method = sorted(route.methods or {"GET"})[0]
        permission = route_permission(route, method)
        # The route belongs to a module-level router: the values are the same for every app,
        # so writing them again is harmless.
        route.openapi_extra = {
            **(route.openapi_extra or {}),
            "x-permission": permission,
            "x-roles": list(roles_with(permission)),
        }


def _allowed_methods(app: FastAPI, path: str) -> list[str]:
    """The methods the app takes at ``path`` (empty: no such path): from the OpenAPI document's
    paths (included routers are not plain routes to walk), and the app's own plain routes (the
    docs)."""
    allowed: set[str] = set()
    for template, operations in app.openapi()["paths"].items():
        if compile_path(template)[0].match(path):
            allowed |= {method.upper() for method in operations}
    for route in app.routes:
        regex, methods = getattr(route, "path_regex", None), getattr(route, "methods", None)
        if regex is not None and methods and regex.match(path):
            allowed |= set(methods)
    return sorted(allowed)


class ApiFallback:
    """In front of the dashboard, which gets every request no route took: under ``/api/`` and at
    ``/healthz`` and ``/metrics``, a method the path does not take (TRACE, OPTIONS, HEAD, QUERY…)
    is a 405 with ``Allow``, and a path that does not exist a 404, both in JSON; neither falls
    through to the dashboard's HTML (or its login redirect)."""

    def __init__(self, api: FastAPI, dashboard: ASGIApp) -> None:
        self.api = api
        self.dashboard = dashboard

    @staticmethod
    def is_api_path(path: str) -> bool:
        """Whether ``path`` belongs to the API side of the app rather than the dashboard."""
        return path in ("/api", "/healthz", "/metrics") or path.startswith("/api/")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not self.is_api_path(path):
            await self.dashboard(scope, receive, send)
            return
        method = scope.get("method", "")
        allowed = _allowed_methods(self.api, path)
        if allowed:
            response = JSONResponse(
                status_code=405,
                content={"detail": f"{method} is not allowed on {path}: {', '.join(allowed)}"},
                headers={"Allow": ", ".join(allowed)},
            )
        else:
            response = JSONResponse(
                status_code=404, content={"detail": f"no API route {method} {path}"}
            )
        await response(scope, receive, send)


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
        docs_url=None,  # served from local files by api.docs, not from a CDN
        redoc_url=None,
        openapi_url="/api/openapi.json",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.pool = pool
    app.state.metrics = metrics
    # One limiter for API and dashboard logins (and signature passwords) of this process.
    limiter = LoginLimiter(
        max_failures=settings.security.login_max_failures,
        window_s=settings.security.login_window_s,
    )
    app.state.login_limiter = limiter
    app.state.report_settings = ReportSettings.from_settings(settings)
    labels = RouteLabels(lambda: [*app.openapi()["paths"], DOCS_URL, app.openapi_url or ""])
    # Innermost first: admission receives bodies through the body limit, and the metrics
    # middleware wraps both, so refused requests (413, 503) are counted.
    app.add_middleware(
        AdmissionMiddleware,
        limit=settings.web.max_concurrent_requests or settings.db.pool_max,
        queue_timeout_s=settings.web.queue_timeout_s,
    )
    app.add_middleware(
        BodyLimitMiddleware,
        limit=settings.security.max_body_bytes,
        larger={f"{API_PREFIX}/epcis/": settings.security.max_upload_bytes},
    )
    # Outermost: counts every request, the refused ones (413, 503) included.
    app.add_middleware(MetricsMiddleware, metrics=metrics, labels=labels)
    install_error_handlers(app)

    app.include_router(health.router)
    _document_body_errors(auth.router)
    # Login is open; /me and /logout check.
    app.include_router(auth.router, prefix=API_PREFIX, responses={503: COMMON_RESPONSES[503]})
    # Open too: a one-time link's token and PIN, or the SMS gateway's signature, are the proof.
    _document_body_errors(ack.router)
    app.include_router(ack.router, prefix=API_PREFIX, responses={503: COMMON_RESPONSES[503]})
    # Every router here requires authentication and its routes' permissions (api.deps).
    for router in (
        shipments.router,
        arrivals.router,
        bookings.router,
        bookings.qa_router,
        readings.router,
        excursions.router,
        alerts.router,
        devices.router,
        products.router,
        locations.router,
        rules.router,
        escalation.router,
        units.router,
        recalls.router,
        epcis.router,
        reports.router,
        dispositions.router,
        release_policies.router,
        oncall.router,
        users.router,
        audit.router,
        insight.router,
        notify.router,
        ask.router,
    ):
        _document_permissions(router)
        app.include_router(
            router,
            prefix=API_PREFIX,
            dependencies=[Depends(authorize)],
            responses=COMMON_RESPONSES,
        )

    one_422_schema(app)
    install_docs(app)

    dash_app = create_dash(settings, pool, limiter=limiter)
    dashboard = WSGIMiddleware(dash_app.server)
    app.mount("/", ApiFallback(app, dashboard), name="dashboard")  # type: ignore[arg-type]
    return app
