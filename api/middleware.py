"""The ASGI middlewares of the web process, outermost first as :func:`api.app.create_app` stacks
them: metrics (:class:`MetricsMiddleware`, every request counted and timed, the refused ones
included), the body limit (:class:`BodyLimitMiddleware`, 413 before a handler reads a body) and
admission (:class:`AdmissionMiddleware`, at most so many requests that may use the database at
once; why is in :mod:`api.app`'s docstring).
"""

from __future__ import annotations

import asyncio
import math
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field

from fastapi import HTTPException
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.deps import WebPool
from services.health import PipelineFigures


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
        # services.health.PipelineFigures, one gauge per field, read when /metrics is scraped.
        self._pipeline = {
            name: Gauge(
                f"coldchain_pipeline_{name.removesuffix('_s')}{suffix}",
                text,
                registry=self.registry,
            )
            for name, suffix, text in (
                (
                    "engine_lag_s",
                    "_seconds",
                    "Age of the oldest reading change the rules engines have not processed.",
                ),
                (
                    "outbox_oldest_s",
                    "_seconds",
                    "Age of the oldest notification neither delivered nor given up.",
                ),
                ("notifications_retrying", "", "Notifications waiting for a retry."),
                ("deliveries_failed_1h", "", "Notifications given up within the last hour."),
                ("engines", "", "Rules engines whose partition claims beat recently."),
            )
        }

    def record_pipeline(self, figures: PipelineFigures | None) -> None:
        """Set the pipeline's gauges from one reading of its figures (at each scrape); NaN
        when the database did not answer, so a stale value is never mistaken for a fresh one."""
        values = asdict(figures) if figures is not None else {}
        for name, gauge in self._pipeline.items():
            gauge.set(values.get(name, math.nan))

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
