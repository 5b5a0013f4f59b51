"""People and API keys (administrators only): list, create, deactivate, revoke.

A person is never deleted (their name stays on what they did); deactivating revokes every token
they hold. A new person's password is generated unless one is given, and shown once.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Path
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

from api.deps import AuditedConnDep, ClientDep, ConnDep, PrincipalDep, SettingsDep, requires
from api.schemas import ErrorOut
from db.queries import security as q
from security import accounts, passwords
from security.roles import Role

router = APIRouter(tags=["users"])
_ADMIN = requires("admin")

UsernamePath = Annotated[str, Path(min_length=1, max_length=64)]
KeyNamePath = Annotated[str, Path(min_length=1, max_length=64)]


class User(BaseModel):
    """A person (never their password hash)."""

    user_id: int
    username: str
    full_name: str
    role: Role
    active: bool
    created_at: AwareDatetime
    deactivated_at: AwareDatetime | None


class UserIn(BaseModel):
    """A new person; without ``password`` one is generated and returned once."""

    model_config = ConfigDict(extra="forbid")

    username: Annotated[str, StringConstraints(strip_whitespace=True, min_length=2, max_length=64)]
    full_name: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)
    ] = Field(description="the printed name shown with the person's signatures")
    role: Role
    password: Annotated[str, StringConstraints(max_length=passwords.MAX_LENGTH)] | None = None


class NewUser(BaseModel):
    """The person created, and the generated password (shown once) if none was given."""

    user: User
    password: str | None


class ApiKey(BaseModel):
    """An API key (never the key itself after creation)."""

    key_id: int
    name: str
    role: Role
    prefix: str
    created_at: AwareDatetime
    created_by: str
    expires_at: AwareDatetime | None
    revoked_at: AwareDatetime | None
    last_used_at: AwareDatetime | None


class ApiKeyIn(BaseModel):
    """A new API key for a machine client (roles viewer, operator or admin)."""

    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    role: Literal["viewer", "operator", "admin"]
    expires_at: AwareDatetime | None = None


class NewApiKey(BaseModel):
    """The key created: send ``key`` as ``X-API-Key``. It is shown this once."""

    key: str
    api_key: ApiKey


@router.get("/users", openapi_extra=_ADMIN)
def list_users(conn: ConnDep) -> list[User]:
    """Everyone, active or not."""
    return [User.model_validate(r) for r in q.list_users(conn=conn)]


@router.post(
    "/users",
    status_code=201,
    openapi_extra=_ADMIN,
    responses={409: {"model": ErrorOut}, 422: {"model": ErrorOut}},
)
def create_user(
    body: UserIn,
    conn: AuditedConnDep,
    principal: PrincipalDep,
    settings: SettingsDep,
    client: ClientDep,
) -> NewUser:
    """Create a person with a role."""
    generated = body.password is None
    password = (
        passwords.generate_password(username=body.username)
        if body.password is None
        else body.password
    )
    row = accounts.create_user(
        conn,
        username=body.username,
        full_name=body.full_name,
        role=body.role,
        password=password,
        min_length=settings.security.password_min_length,
        ctx=principal.context(client, "user created"),
    )
    return NewUser(
        user=User.model_validate(accounts.public_user(row)),
        password=password if generated else None,
    )


@router.post(
    "/users/{username}/deactivate",
    openapi_extra=_ADMIN,
    responses={404: {"model": ErrorOut}, 409: {"model": ErrorOut}},
)
def deactivate_user(
    username: UsernamePath, conn: AuditedConnDep, principal: PrincipalDep, client: ClientDep
) -> User:
    """Deactivate a person and revoke their tokens (administrators cannot lock themselves out)."""
    if principal.kind == "user" and accounts.normalise_username(username) == principal.name:
        raise HTTPException(status_code=409, detail="you cannot deactivate yourself")
    try:
        row = accounts.deactivate_user(
            conn, username=username, ctx=principal.context(client, "user deactivated")
        )
    except accounts.AccountError as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from None
    return User.model_validate(accounts.public_user(row))


@router.get("/api-keys", openapi_extra=_ADMIN, tags=["api-keys"])
def list_api_keys(conn: ConnDep) -> list[ApiKey]:
    """Every API key, live or revoked."""
    return [ApiKey.model_validate(r) for r in q.list_api_keys(conn=conn)]


@router.post(
    "/api-keys",
    status_code=201,
    openapi_extra=_ADMIN,
    tags=["api-keys"],
    responses={409: {"model": ErrorOut}, 422: {"model": ErrorOut}},
)
def create_api_key(
    body: ApiKeyIn, conn: AuditedConnDep, principal: PrincipalDep, client: ClientDep
) -> NewApiKey:
    """Create an API key; the key is in the answer, once."""
    secret, row = accounts.create_api_key(
        conn,
        name=body.name,
        role=body.role,
        expires_at=body.expires_at,
        ctx=principal.context(client, "API key created"),
    )
    return NewApiKey(key=secret, api_key=ApiKey.model_validate(row))


@router.post(
    "/api-keys/{name}/revoke",
    openapi_extra=_ADMIN,
    tags=["api-keys"],
    responses={404: {"model": ErrorOut}},
)
def revoke_api_key(
    name: KeyNamePath, conn: AuditedConnDep, principal: PrincipalDep, client: ClientDep
) -> ApiKey:
    """Revoke an API key at once."""
    try:
        row = accounts.revoke_api_key(
            conn, name=name, ctx=principal.context(client, "API key revoked")
        )
    except accounts.AccountError as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from None
    return ApiKey.model_validate(row)
