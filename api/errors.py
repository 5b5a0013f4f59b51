"""How the API answers errors: each exception of :mod:`coldchain.errors` (and of the database
and its pool) mapped to its status code and a JSON ``{"detail": …}`` (:func:`install_error_handlers`),
and the one schema every documented 422 carries (:data:`UNPROCESSABLE_SCHEMA`). The services
raise the errors; here is the only place they become HTTP.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

import psycopg
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from psycopg_pool import PoolTimeout

from api.middleware import unavailable
from coldchain.errors import (
    AccountError,
    AckRefusedError,
    AlertConflictError,
    AuthenticationError,
    CalibrationExpiredError,
    InvalidAlertActionError,
    InvalidDispositionError,
    InvalidQuestionError,
    InvalidRecordError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    RecordConflictError,
    ReportChangedError,
    ShipmentStateError,
    SignatureConflictError,
    VersionConflictError,
    WeakPasswordError,
)

log = logging.getLogger(__name__)


def install_error_handlers(app: FastAPI) -> None:
    """Answer each error of :mod:`coldchain.errors` (and the database's) with its status."""

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

    async def ack_refused(request: Request, exc: Exception) -> JSONResponse:
        reason = getattr(exc, "reason", None)  # the code the audit entry records
        return JSONResponse(status_code=403, content={"detail": str(exc), "reason": reason})

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
    app.add_exception_handler(InvalidAlertActionError, unprocessable)
    app.add_exception_handler(AuthenticationError, unauthenticated)
    app.add_exception_handler(PermissionDeniedError, forbidden)
    app.add_exception_handler(AckRefusedError, ack_refused)
    app.add_exception_handler(AccountError, conflict)
    app.add_exception_handler(WeakPasswordError, unprocessable)
    app.add_exception_handler(ReportChangedError, conflict)
    app.add_exception_handler(SignatureConflictError, conflict)
    app.add_exception_handler(InvalidDispositionError, unprocessable)
    app.add_exception_handler(InvalidRecordError, unprocessable)
    app.add_exception_handler(InvalidQuestionError, unprocessable)
    app.add_exception_handler(RecordConflictError, conflict)
    app.add_exception_handler(VersionConflictError, precondition_failed)
    app.add_exception_handler(ShipmentStateError, conflict)
    app.add_exception_handler(CalibrationExpiredError, conflict)
    app.add_exception_handler(psycopg.DataError, bad_value)
    app.add_exception_handler(PoolTimeout, database_unavailable)
    app.add_exception_handler(psycopg.OperationalError, database_unavailable)
    app.add_exception_handler(Exception, unexpected)


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


def one_422_schema(app: FastAPI) -> None:
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
