"""QA's auto-release policies (:mod:`services.release_policies`): list, read, sign, revoke.

Signing and revoking need the qa role (``policies.sign``) and the signer's password entered
again, as a disposition does. Creation is idempotent by scope: the same product or lane with
the same reason while that policy is active answers 200 with it; another reason, 409 (revoke
the active one first). A policy is never edited: its version changes once, when it is revoked,
which takes ``If-Match`` like a retirement.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Response
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

from api.deps import ClientDep, ConnDep, LimiterDep, PrincipalDep, requires
from api.preconditions import PRECONDITION_RESPONSES, expected_version, set_etag
from api.schemas import ErrorOut
from security.passwords import MAX_LENGTH
from services import release_policies
from services.caller import Caller

router = APIRouter(prefix="/release-policies", tags=["release policies"])

SIGN = requires("policies.sign")
PolicyId = Annotated[int, Path(ge=1, le=2**63 - 1)]
Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]
Password = Annotated[str, StringConstraints(min_length=1, max_length=MAX_LENGTH)]
SIGN_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "wrong password"},
    409: {"model": ErrorOut, "description": "another policy is active for the scope, or revoked"},
    422: {"model": ErrorOut},
    429: {"model": ErrorOut, "description": "too many wrong passwords"},
}


class PolicyIn(BaseModel):
    """A new policy: one product (``gtin``) or one lane (``lane_id``), signed with a reason."""

    model_config = ConfigDict(extra="forbid")

    gtin: Annotated[str, StringConstraints(pattern=r"^[0-9]{14}$")] | None = None
    lane_id: Annotated[int, Field(ge=1, le=2**63 - 1)] | None = None
    reason: Reason
    password: Password = Field(description="the signer's own password, entered again")


class RevokeIn(BaseModel):
    """A revocation, signed with a reason."""

    model_config = ConfigDict(extra="forbid")

    reason: Reason
    password: Password = Field(description="the signer's own password, entered again")


class PolicyEvent(BaseModel):
    """One entry of a policy's history: created, revoked, or a shipment released under it."""

    at: AwareDatetime
    event: str
    actor: str
    reason: str | None
    shipment_id: int | None
    disposition_id: int | None


class Policy(BaseModel):
    """A signed auto-release policy, with its revocation if any."""

    policy_id: int
    gtin: str | None
    lane_id: int | None
    reason: str
    meaning: str
    signer_username: str
    signer_name: str
    signer_role: str
    signed_at: AwareDatetime
    signature_hash: str
    active: bool
    revoked_at: AwareDatetime | None
    revoked_by_username: str | None
    revoked_by_name: str | None
    revoke_reason: str | None
    revoke_signature_hash: str | None
    version: int
    releases: int = Field(description="shipments released under it so far")
    events: list[PolicyEvent] = []


@router.get("")
def list_policies(conn: ConnDep, active: Annotated[bool | None, Query()] = None) -> list[Policy]:
    """Every policy, oldest first (``active=true``: those in force; ``false``: revoked)."""
    return [Policy.model_validate(r) for r in release_policies.list_policies(conn, active=active)]


@router.get("/{policy_id}", responses={404: {"model": ErrorOut}})
def get_policy(policy_id: PolicyId, conn: ConnDep, response: Response) -> Policy:
    """One policy with its history; ``ETag`` is its version."""
    row = release_policies.get(conn, policy_id=policy_id)
    set_etag(response, row)
    return Policy.model_validate(row)


@router.post("", status_code=201, openapi_extra=SIGN, responses={200: {"model": Policy},
             **SIGN_RESPONSES})  # fmt: skip
def create_policy(
    body: PolicyIn,
    conn: ConnDep,
    principal: PrincipalDep,
    limiter: LimiterDep,
    client: ClientDep,
    response: Response,
) -> Policy:
    """Sign a policy (qa): conforming shipments of this product or lane are released
    automatically at arrival, each as a disposition naming the policy."""
    row, created = release_policies.create(
        conn,
        Caller.of(principal, client),
        scope=release_policies.Scope(gtin=body.gtin, lane_id=body.lane_id),
        reason=body.reason,
        password=body.password,
        limiter=limiter,
        now=datetime.now(UTC),
    )
    if not created:
        response.status_code = 200
    set_etag(response, row)
    return Policy.model_validate(row)


@router.post(
    "/{policy_id}/revoke",
    openapi_extra=SIGN,
    responses={404: {"model": ErrorOut}, **SIGN_RESPONSES, **PRECONDITION_RESPONSES},
)
def revoke_policy(
    policy_id: PolicyId,
    body: RevokeIn,
    conn: ConnDep,
    principal: PrincipalDep,
    limiter: LimiterDep,
    client: ClientDep,
    response: Response,
    version: Annotated[int, Depends(expected_version)],
) -> Policy:
    """Revoke a policy (qa), signed with a reason; ``If-Match`` its version."""
    row = release_policies.revoke(
        conn,
        Caller.of(principal, client),
        policy_id=policy_id,
        reason=body.reason,
        password=body.password,
        limiter=limiter,
        now=datetime.now(UTC),
        expected_version=version,
    )
    set_etag(response, row)
    return Policy.model_validate(row)
