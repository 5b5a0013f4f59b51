"""The web process: the HTTP API and the Dash dashboard as one ASGI app on one port.

    /api/v1/...     the API (routers in ``api.routers``)
    /api/docs       OpenAPI docs (``/api/openapi.json``)
    /healthz        liveness with a database check
    /metrics        Prometheus metrics of this app
    /               the dashboard (Dash on Flask, through a2wsgi), with every other path

No request for the API side falls through to the dashboard (:class:`ApiFallback`): under
``/api/`` and at ``/healthz`` and ``/metrics`` a method the path does not take is a 405 with
``Allow``, an unknown path a 404, both in JSON. Every route under ``/api/v1`` documents 401, 403,
404 and 503 (and 400 and 413 when it reads a body), and every 422 has one schema
(:data:`UNPROCESSABLE_SCHEMA`).

One synchronous psycopg pool serves both: it is created closed here, opened in the lifespan and
waited for, so a wrong DSN fails at start-up instead of at the first request. API handlers are
plain ``def`` (FastAPI runs them in its thread pool); Dash callbacks run in a2wsgi's threads.
The pool checks a connection before lending it, so connections broken by a database restart are
replaced instead of failing a request.

Admission (:class:`AdmissionMiddleware`): a request's connection is taken in one thread-pool hop
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
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import psycopg
from a2wsgi import WSGIMiddleware
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute, APIRouter
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from psycopg import Connection
from psycopg.rows import DictRow, dict_row
from psycopg_pool import ConnectionPool, PoolTimeout
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.deps import WebPool, authorize, route_permission
from api.routers import (
    alerts,
    audit,
    auth,
    bookings,
    devices,
    dispositions,
    epcis,
    excursions,
    health,
    locations,
    products,
    readings,
    recalls,
    reports,
    rules,
    shipments,
    units,
    users,
)
from api.schemas import ErrorOut
from coldchain.errors import (
    AlertConflictError,
    CalibrationExpiredError,
    InvalidRecordError,
    NotFoundError,
    RecordConflictError,
    SetupError,
    ShipmentStateError,
    VersionConflictError,
)
from coldchain.settings import Settings
from dashboard.app import create_dash
from db.types import Conn
from reports.service import (
    InvalidDispositionError,
    ReportChangedError,
    ReportSettings,
    SignatureConflictError,
)
from security.errors import (
    AccountError,
    AuthenticationError,
    PermissionDeniedError,
    RateLimitedError,
    WeakPasswordError,
)
from security.ratelimit import LoginLimiter
from security.roles import roles_with

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


#: Paths that never touch the database: served without waiting for a slot.
UNGATED_PREFIXES = ("/healthz", "/metrics", "/assets/", "/_dash-component-suites/", "/_favicon")


def unavailable(detail: str, retry_after_s: float) -> JSONResponse:
    """503 with ``Retry-After`` (whole seconds, at least 1)."""
    return JSONResponse(
        status_code=503,
        content={"detail": detail},
        headers={"Retry-After": str(max(1, round(retry_after_s)))},
    )


class AdmissionMiddleware:
    """At most ``limit`` requests that may use the database at once (see the module docstring);
    the others wait in line (FIFO, outside the thread pool) up to ``queue_timeout_s``, then get
    503 with ``Retry-After``. A request's body is received *before* it takes its place, so a
    client that sends its body slowly holds no place while it does (it sits inside
    :class:`BodyLimitMiddleware`, whose limit bounds what is held in memory)."""

    def __init__(self, app: ASGIApp, *, limit: int, queue_timeout_s: float) -> None:
        self.app = app
        self.limit = limit
        self.queue_timeout_s = queue_timeout_s
        self._slots = asyncio.Semaphore(limit)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path", "").startswith(UNGATED_PREFIXES):
            await self.app(scope, receive, send)
            return
        received: list[Message] = []
        if scope.get("method") not in ("GET", "HEAD"):
            try:
                while True:
                    message = await receive()
                    received.append(message)
                    if message["type"] != "http.request" or not message.get("more_body"):
                        break
            except PayloadTooLargeError as exc:
                response = JSONResponse(status_code=413, content={"detail": exc.detail})
                await response(scope, receive, send)
                return
            if received[-1]["type"] == "http.disconnect":
                return  # the client left before sending its body

        async def replay() -> Message:
            return received.pop(0) if received else await receive()

        try:
            async with asyncio.timeout(self.queue_timeout_s):
                await self._slots.acquire()
        except TimeoutError:
            response = unavailable(
                f"the server is busy ({self.limit} requests in progress); retry shortly",
                self.queue_timeout_s,
            )
            await response(scope, replay, send)
            return
        try:
            await self.app(scope, replay, send)
        finally:
            self._slots.release()


class PayloadTooLargeError(HTTPException):
    """A request body over the limit (raised while it streams in, when it has no length)."""

    def __init__(self, limit: int) -> None:
        super().__init__(status_code=413, detail=f"request body larger than {limit} bytes")


class BodyLimitMiddleware:
    """Refuses request bodies over a size limit (413) before a handler reads them: at once when
    the declared Content-Length is too large, else as soon as the streamed body passes it.
    ``larger`` gives path prefixes a limit of their own (document uploads)."""

    def __init__(self, app: ASGIApp, *, limit: int, larger: dict[str, int] | None = None) -> None:
        self.app = app
        self.limit = limit
        self.larger = larger or {}

    def _limit_for(self, path: str) -> int:
        for prefix, limit in self.larger.items():
            if path.startswith(prefix):
                return limit
        return self.limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self._limit_for(scope.get("path", ""))
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None:
            try:
                too_large = int(declared) > limit
            except ValueError:
                too_large = True  # a length we cannot read is not a length we accept
            if too_large:
                response = JSONResponse(
                    status_code=413, content={"detail": f"request body larger than {limit} bytes"}
                )
                await response(scope, receive, send)
                return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise PayloadTooLargeError(limit)
            return message

        await self.app(scope, limited, send)


def _install_error_handlers(app: FastAPI) -> None:
    async def not_found(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse(status_code=404, content={"detail": str(exc)})

    async def conflict(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse(status_code=409, content={"detail": str(exc)})

    async def unauthenticated(request: Request, exc: Exception) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"}
        if isinstance(exc, RateLimitedError):
            headers["Retry-After"] = str(max(1, round(exc.retry_after)))
            return JSONResponse(status_code=429, content={"detail": str(exc)}, headers=headers)
        return JSONResponse(status_code=401, content={"detail": str(exc)}, headers=headers)

    async def forbidden(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse(status_code=403, content={"detail": str(exc)})

    async def precondition_failed(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse(status_code=412, content={"detail": str(exc)})

    async def unprocessable(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse(status_code=422, content={"detail": str(exc)})

    async def bad_value(request: Request, exc: Exception) -> JSONResponse:
        # A value the database cannot take (out of range, a NUL character…): the client's
        # mistake, not a server error; the database's own words stay in the log.
        log.info("refused value on %s %s: %s", request.method, request.url.path, exc)
        return JSONResponse(
            status_code=422,
            content={"detail": "a value in the request is out of range or cannot be stored"},
        )

    async def database_unavailable(request: Request, exc: Exception) -> JSONResponse:
        # No connection in time (saturated: nothing ran), or the database went away
        # mid-request. In the second case a write whose connection broke during its COMMIT
        # may or may not be stored, as with any lost connection: README says to re-read
        # before repeating a write.
        log.warning("database unavailable on %s %s: %s", request.method, request.url.path, exc)
        return unavailable("the database is unavailable or busy; retry shortly", 2)

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
    app.add_exception_handler(AuthenticationError, unauthenticated)
    app.add_exception_handler(PermissionDeniedError, forbidden)
    app.add_exception_handler(AccountError, conflict)
    app.add_exception_handler(WeakPasswordError, unprocessable)
    app.add_exception_handler(ReportChangedError, conflict)
    app.add_exception_handler(SignatureConflictError, conflict)
    app.add_exception_handler(InvalidDispositionError, unprocessable)
    app.add_exception_handler(InvalidRecordError, unprocessable)
    app.add_exception_handler(RecordConflictError, conflict)
    app.add_exception_handler(VersionConflictError, precondition_failed)
    app.add_exception_handler(ShipmentStateError, conflict)
    app.add_exception_handler(CalibrationExpiredError, conflict)
    app.add_exception_handler(psycopg.DataError, bad_value)
    app.add_exception_handler(PoolTimeout, database_unavailable)
    app.add_exception_handler(psycopg.OperationalError, database_unavailable)
    app.add_exception_handler(Exception, unexpected)


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


#: The one schema of a 422: FastAPI's list of field errors, or a sentence (a value the database
#: cannot take, a refused password…), or an object (an EPCIS document's problems).
UNPROCESSABLE_SCHEMA: dict[str, Any] = {
    "title": "Unprocessable",
    "type": "object",
    "required": ["detail"],
    "properties": {
        "detail": {
            "anyOf": [
                {"type": "array", "items": {"$ref": "#/components/schemas/ValidationError"}},
                {"type": "string"},
                {"type": "object"},
            ]
        }
    },
}


def _one_422_schema(app: FastAPI) -> None:
    """Make every documented 422 say what a 422 of this API can carry (:data:`UNPROCESSABLE_SCHEMA`)
    instead of either FastAPI's field errors or a route's own ``ErrorOut``: each route can give
    both (a field error from validation, a sentence from the handler)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = generate()
        schema.setdefault("components", {}).setdefault("schemas", {})["Unprocessable"] = (
            UNPROCESSABLE_SCHEMA
        )
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                response = operation.get("responses", {}).get("422")
                if response is not None:
                    response["content"] = {
                        "application/json": {
                            "schema": {"$ref": "#/components/schemas/Unprocessable"}
                        }
                    }
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


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
        docs_url="/api/docs",
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
    labels = RouteLabels(
        lambda: [*app.openapi()["paths"], app.docs_url or "", app.openapi_url or ""]
    )
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
    _install_error_handlers(app)

    app.include_router(health.router)
    _document_body_errors(auth.router)
    # Login is open; /me and /logout check.
    app.include_router(auth.router, prefix=API_PREFIX, responses={503: COMMON_RESPONSES[503]})
    # Every router here requires authentication and its routes' permissions (api.deps).
    for router in (
        shipments.router,
        bookings.router,
        bookings.qa_router,
        readings.router,
        excursions.router,
        alerts.router,
        devices.router,
        products.router,
        locations.router,
        rules.router,
        units.router,
        recalls.router,
        epcis.router,
        reports.router,
        dispositions.router,
        users.router,
        audit.router,
    ):
        _document_permissions(router)
        app.include_router(
            router,
            prefix=API_PREFIX,
            dependencies=[Depends(authorize)],
            responses=COMMON_RESPONSES,
        )

    _one_422_schema(app)

    dash_app = create_dash(settings, pool, limiter=limiter)
    dashboard = WSGIMiddleware(dash_app.server)
    app.mount("/", ApiFallback(app, dashboard), name="dashboard")  # type: ignore[arg-type]
    return app
