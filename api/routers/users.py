"""People and API keys (administrators only): list, create, change a role, deactivate,
reactivate, reset a password; create and revoke keys.

A person is never deleted (their name stays on what they did); deactivating revokes every token
they hold. A new person's password is generated unless one is given, and shown once; so is a
reset one, and a reset ends the person's sessions. The
operations are :mod:`services.accounts` (the ``coldchain users`` and ``apikeys`` commands call
the same ones).
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

from api.deps import ClientDep, ConnDep, PrincipalDep, SettingsDep, requires
from api.schemas import ErrorOut
from security import passwords
from security.roles import Role
from services import accounts as service
from services.caller import Caller

router = APIRouter(tags=["users"])
_ADMIN = requires("admin")

UsernamePath = Annotated[str, Path(min_length=1, max_length=64)]
KeyNamePath = Annotated[str, Path(min_length=1, max_length=64)]
ReasonQuery = Annotated[
    str | None,
    Query(min_length=1, max_length=2000, description="why: recorded in the audit trail"),
]


class User(BaseModel):
    """A person (never their password hash)."""

    user_id: int
    username: str
    full_name: str
    role: Role
    active: bool
    created_at: AwareDatetime
    deactivated_at: AwareDatetime | None
    last_login_at: AwareDatetime | None = Field(
        default=None, description="when the person last logged in (listing only)"
    )


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


class RoleIn(BaseModel):
    """A person's new role."""

    model_config = ConfigDict(extra="forbid")

    role: Role


class PasswordIn(BaseModel):
    """A new password; without one a password is generated and returned once."""

    model_config = ConfigDict(extra="forbid")

    password: Annotated[str, StringConstraints(max_length=passwords.MAX_LENGTH)] | None = None


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
def list_users(conn: ConnDep, principal: PrincipalDep, client: ClientDep) -> list[User]:
    """Everyone, active or not."""
    rows = service.list_users(conn, Caller.of(principal, client))
    return [User.model_validate(r) for r in rows]


@router.post(
    "/users",
    status_code=201,
    openapi_extra=_ADMIN,
    responses={409: {"model": ErrorOut}, 422: {"model": ErrorOut}},
)
def create_user(
    body: UserIn,
    conn: ConnDep,
    principal: PrincipalDep,
    settings: SettingsDep,
    client: ClientDep,
) -> NewUser:
    """Create a person with a role."""
    created = service.create_user(
        conn,
        Caller.of(principal, client),
        username=body.username,
        full_name=body.full_name,
        role=body.role,
        password=body.password,
        security=settings.security,
    )
    return NewUser(user=User.model_validate(created.user), password=created.password)


@router.post(
    "/users/{username}/deactivate",
    openapi_extra=_ADMIN,
    responses={404: {"model": ErrorOut}, 409: {"model": ErrorOut}},
)
def deactivate_user(
    username: UsernamePath, conn: ConnDep, principal: PrincipalDep, client: ClientDep
) -> User:
    """Deactivate a person and revoke their tokens (administrators cannot lock themselves out)."""
    row = service.deactivate_user(conn, Caller.of(principal, client), username=username)
    return User.model_validate(row)


@router.post(
    "/users/{username}/role",
    openapi_extra=_ADMIN,
    responses={404: {"model": ErrorOut}, 409: {"model": ErrorOut}},
)
def change_role(
    username: UsernamePath,
    body: RoleIn,
    conn: ConnDep,
    principal: PrincipalDep,
    client: ClientDep,
    reason: ReasonQuery = None,
) -> User:
    """Give a person another role, effective at their next request (not one's own)."""
    caller = Caller.of(principal, client)
    row = service.change_role(conn, caller, username=username, role=body.role, reason=reason)
    return User.model_validate(row)


@router.post(
    "/users/{username}/reactivate",
    openapi_extra=_ADMIN,
    responses={404: {"model": ErrorOut}, 409: {"model": ErrorOut}},
)
def reactivate_user(
    username: UsernamePath,
    conn: ConnDep,
    principal: PrincipalDep,
    client: ClientDep,
    reason: ReasonQuery = None,
) -> User:
    """Let a deactivated person log in again with their password."""
    caller = Caller.of(principal, client)
    return User.model_validate(
        service.reactivate_user(conn, caller, username=username, reason=reason)
    )


@router.post(
    "/users/{username}/password",
    openapi_extra=_ADMIN,
    responses={404: {"model": ErrorOut}, 422: {"model": ErrorOut}},
)
def reset_password(
    username: UsernamePath,
    body: PasswordIn,
    conn: ConnDep,
    principal: PrincipalDep,
    settings: SettingsDep,
    client: ClientDep,
    reason: ReasonQuery = None,
) -> NewUser:
    """Give a person a new password (generated and returned once when none is given) and end
    their sessions and tokens."""
    reset = service.reset_password(
        conn,
        Caller.of(principal, client),
        username=username,
        password=body.password,
        security=settings.security,
        reason=reason,
    )
    return NewUser(user=User.model_validate(reset.user), password=reset.password)


class ContactsIn(BaseModel):
    """How a person is reached when on call (README "On-call"); null or "" clears one."""

    model_config = ConfigDict(extra="forbid")

    email: Annotated[str, StringConstraints(max_length=320)] | None = None
    phone: Annotated[str, StringConstraints(max_length=32)] | None = Field(
        default=None, description="mobile number in E.164, +41791234567"
    )


class Contacts(BaseModel):
    """A person's contacts."""

    username: str
    full_name: str
    email: str | None
    phone: str | None


@router.put(
    "/users/{username}/contacts",
    openapi_extra=_ADMIN,
    responses={404: {"model": ErrorOut}, 409: {"model": ErrorOut}, 422: {"model": ErrorOut}},
)
def set_contacts(
    username: UsernamePath,
    body: ContactsIn,
    conn: ConnDep,
    principal: PrincipalDep,
    client: ClientDep,
    reason: ReasonQuery = None,
) -> Contacts:
    """Set a person's e-mail address and mobile number (what an on-call rotation reaches them
    by): 422 naming the field for a malformed one, 409 for a number another person has."""
    row = service.set_contacts(
        conn,
        Caller.of(principal, client),
        username=username,
        email=body.email,
        phone=body.phone,
        reason=reason,
    )
    return Contacts.model_validate(row)


@router.get("/api-keys", openapi_extra=_ADMIN, tags=["api-keys"])
def list_api_keys(conn: ConnDep, principal: PrincipalDep, client: ClientDep) -> list[ApiKey]:
    """Every API key, live or revoked."""
    rows = service.list_api_keys(conn, Caller.of(principal, client))
    return [ApiKey.model_validate(r) for r in rows]


@router.post(
    "/api-keys",
    status_code=201,
    openapi_extra=_ADMIN,
    tags=["api-keys"],
    responses={409: {"model": ErrorOut}, 422: {"model": ErrorOut}},
)
def create_api_key(
    body: ApiKeyIn, conn: ConnDep, principal: PrincipalDep, client: ClientDep
) -> NewApiKey:
    """Create an API key; the key is in the answer, once."""
    secret, row = service.create_api_key(
        conn,
        Caller.of(principal, client),
        name=body.name,
        role=body.role,
        expires_at=body.expires_at,
    )
    return NewApiKey(key=secret, api_key=ApiKey.model_validate(row))


@router.post(
    "/api-keys/{name}/revoke",
    openapi_extra=_ADMIN,
    tags=["api-keys"],
    responses={404: {"model": ErrorOut}},
)
def revoke_api_key(
    name: KeyNamePath, conn: ConnDep, principal: PrincipalDep, client: ClientDep
) -> ApiKey:
    """Revoke an API key at once."""
    row = service.revoke_api_key(conn, Caller.of(principal, client), name=name)
    return ApiKey.model_validate(row)
