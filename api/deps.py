"""Dependencies of the API handlers, as ``Annotated`` aliases.

The pool and the settings live on ``app.state`` (set by :func:`api.app.create_app`); a handler
asks for a connection with ``conn: ConnDep`` and gets one from the pool for the request.

Authentication and authorisation: :func:`authorize` runs for every route under ``/api/v1``
(``create_app`` adds it to each router it includes). It finds the caller from a bearer token
(``Authorization: Bearer cct_…``, from ``POST /api/v1/auth/login``) or an API key
(``X-API-Key: cck_…``, or as a bearer token), then checks the permission the route declares
(:func:`requires`, shown in the OpenAPI document as ``x-permission`` and ``x-roles``). A route
that declares nothing needs ``read`` for GET and ``admin`` for anything else, so a new write
endpoint is closed until it says who may use it. Handlers that change data build the
:class:`services.caller.Caller` from the principal and the client address and hand it to the
service, which checks the permission again and puts the audit context on the connection.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from psycopg_pool import ConnectionPool

from coldchain.settings import Settings
from db.types import Conn
from security.accounts import Principal, principal_for_secret
from security.ratelimit import LoginLimiter
from security.roles import Permission, default_permission, roles_with
from services.caller import Caller
from services.reports import ReportSettings

WebPool = ConnectionPool[Conn]

_bearer = HTTPBearer(
    auto_error=False,
    description="A person's token from POST /api/v1/auth/login, or an API key (cck_…).",
)
_api_key = APIKeyHeader(
    name="X-API-Key", auto_error=False, description="An API key of a machine client (cck_…)."
)


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
    """How many logging intervals of silence make a logger offline (``alerts.offline_factor``,
    the rules engine's "no data" factor; see :mod:`coldchain.thermal.limits`)."""
    return settings.alerts.offline_factor


def get_limiter(request: Request) -> LoginLimiter:
    """The app's failed-login limiter (shared with the dashboard)."""
    limiter: LoginLimiter = request.app.state.login_limiter
    return limiter


def get_report_settings(request: Request) -> ReportSettings:
    """What reports need besides the database: the engine's base rules and rules file."""
    cfg: ReportSettings = request.app.state.report_settings
    return cfg


def client_address(request: Request) -> str | None:
    """Where the request came from (the audit trail's "from where")."""
    return request.client.host if request.client else None


def get_principal(
    conn: Annotated[Conn, Depends(get_conn)],
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    api_key: Annotated[str | None, Depends(_api_key)],
) -> Principal:
    """The caller, from a bearer token or an API key; 401 when there is none or it is not live."""
    secret = bearer.credentials if bearer is not None else api_key
    if not secret:
        raise HTTPException(
            status_code=401,
            detail="authentication required: send 'Authorization: Bearer <token>' (a token "
            "from POST /api/v1/auth/login) or 'X-API-Key: <key>'",
            headers={"WWW-Authenticate": "Bearer"},
        )
    principal = principal_for_secret(conn, secret, kinds=("api",))
    if principal is None:
        raise HTTPException(
            status_code=401,
            detail="the token or API key is invalid, expired or revoked: log in again",
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )
    return principal


def requires(permission: Permission) -> dict[str, Any]:
    """``openapi_extra`` of a route that needs ``permission``: ``@router.post(...,
    openapi_extra=requires("alerts.act"))``. :func:`authorize` enforces it; the OpenAPI
    document shows it."""
    return {"x-permission": permission, "x-roles": list(roles_with(permission))}


def route_permission(route: Any, method: str) -> Permission:
    """The permission a route declared, else the default for its method."""
    extra = getattr(route, "openapi_extra", None) or {}
    declared: Permission | None = extra.get("x-permission")
    return declared or default_permission(method)


def authorize(
    request: Request, principal: Annotated[Principal, Depends(get_principal)]
) -> Principal:
    """403 unless the caller's role has the permission the route needs."""
    permission = route_permission(request.scope.get("route"), request.method)
    if not principal.can(permission):
        raise HTTPException(
            status_code=403,
            detail=f"{principal.actor} (role {principal.role}) may not do this: it needs the "
            f"'{permission}' permission, which roles {', '.join(roles_with(permission))} have",
        )
    return principal


SettingsDep = Annotated[Settings, Depends(get_settings)]
PoolDep = Annotated[WebPool, Depends(get_pool)]
ConnDep = Annotated[Conn, Depends(get_conn)]
OfflineFactorDep = Annotated[float, Depends(get_offline_factor)]
PrincipalDep = Annotated[Principal, Depends(authorize)]
AuthenticatedDep = Annotated[Principal, Depends(get_principal)]
LimiterDep = Annotated[LoginLimiter, Depends(get_limiter)]
ReportSettingsDep = Annotated[ReportSettings, Depends(get_report_settings)]
ClientDep = Annotated[str | None, Depends(client_address)]


def get_caller(principal: PrincipalDep, client: ClientDep) -> Caller:
    """Who asks a service: the authenticated person or key, from where."""
    return Caller.of(principal, client)


CallerDep = Annotated[Caller, Depends(get_caller)]
