"""Logging in and out: a person exchanges user name and password for a bearer token.

``POST /api/v1/auth/login`` is the one API route open without credentials. Failed attempts are
rate-limited per user name and per client address (429 with ``Retry-After``) and audited; the
answer never says whether the user name or the password was wrong. The operations are
:mod:`services.accounts` (the dashboard's login form calls the same ones).
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Response
from pydantic import AwareDatetime, BaseModel, ConfigDict, StringConstraints

from api.deps import AuthenticatedDep, ClientDep, ConnDep, LimiterDep, SettingsDep
from api.schemas import ErrorOut
from security.accounts import Principal
from security.passwords import MAX_LENGTH
from services import accounts as service

router = APIRouter(prefix="/auth", tags=["auth"])

Username = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
Password = Annotated[str, StringConstraints(min_length=1, max_length=MAX_LENGTH)]


class LoginIn(BaseModel):
    """A person's credentials."""

    model_config = ConfigDict(extra="forbid")

    username: Username
    password: Password


class Me(BaseModel):
    """Who the caller is."""

    kind: Literal["user", "api_key"]
    name: str
    display_name: str
    role: str


class TokenOut(BaseModel):
    """A bearer token: send it as ``Authorization: Bearer <access_token>``."""

    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_at: AwareDatetime
    user: Me


def _me(principal: Principal) -> Me:
    return Me(
        kind=principal.kind,
        name=principal.name,
        display_name=principal.display_name,
        role=principal.role,
    )


@router.post(
    "/login",
    responses={
        401: {"model": ErrorOut, "description": "wrong user name or password"},
        429: {"model": ErrorOut, "description": "too many failed attempts; see Retry-After"},
    },
)
def login(
    body: LoginIn, conn: ConnDep, settings: SettingsDep, limiter: LimiterDep, client: ClientDep
) -> TokenOut:
    """A bearer token for a person (valid ``COLDCHAIN_SECURITY__TOKEN_TTL_H`` hours)."""
    token, principal, expires_at = service.login(
        conn,
        username=body.username,
        password=body.password,
        kind="api",
        security=settings.security,
        limiter=limiter,
        client=client,
    )
    return TokenOut(access_token=token, expires_at=expires_at, user=_me(principal))


@router.post("/logout", status_code=204, responses={401: {"model": ErrorOut}})
def logout(principal: AuthenticatedDep, conn: ConnDep, client: ClientDep) -> Response:
    """Revoke the token this request carries (an API key is revoked by an admin instead)."""
    service.logout(conn, principal, source=client)
    return Response(status_code=204)


@router.get("/me", responses={401: {"model": ErrorOut}})
def me(principal: AuthenticatedDep) -> Me:
    """The caller: a person or an API key, and its role."""
    return _me(principal)
