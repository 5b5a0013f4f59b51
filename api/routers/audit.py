"""The audit trail: read it, and verify its hash chain (QA and administrators); the operations
are :mod:`services.audit` (``coldchain audit verify`` calls the same)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import AwareDatetime, BaseModel

from api.deps import ClientDep, ConnDep, PrincipalDep, requires
from services import audit as service
from services.caller import Caller

router = APIRouter(prefix="/audit", tags=["audit"])
_AUDIT = requires("audit.read")


class AuditEntryOut(BaseModel):
    """Who did what (before and after), when, why and from where."""

    id: int
    seq: int
    at: AwareDatetime
    actor: str
    actor_role: str | None
    action: str
    entity: str
    entity_id: str | None
    before: Any
    after: Any
    reason: str | None
    source: str | None
    hash: str


class AuditPage(BaseModel):
    """A page of audit entries, newest first."""

    items: list[AuditEntryOut]
    total: int
    limit: int
    offset: int


class ChainOut(BaseModel):
    """The outcome of walking the whole chain."""

    ok: bool
    entries: int
    head: str
    broken_seq: int | None
    broken_id: int | None
    problem: str | None
    summary: str


Filter = Annotated[str | None, Query(min_length=1, max_length=200)]


@router.get("", openapi_extra=_AUDIT)
def list_audit(
    conn: ConnDep,
    principal: PrincipalDep,
    client: ClientDep,
    entity: Filter = None,
    entity_id: Filter = None,
    actor: Filter = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> AuditPage:
    """Audit entries, newest first; filter by table (``entity``), key, or actor."""
    rows, total = service.list_entries(
        conn,
        Caller.of(principal, client),
        entity=entity,
        entity_id=entity_id,
        actor=actor,
        limit=limit,
        offset=offset,
    )
    return AuditPage(
        items=[AuditEntryOut.model_validate(r) for r in rows],
        total=total,
        limit=limit,
        offset=offset,
    )


@router.get("/verify", openapi_extra=_AUDIT)
def verify(conn: ConnDep, principal: PrincipalDep, client: ClientDep) -> ChainOut:
    """Recompute every entry's hash and link; name the first broken entry."""
    verdict = service.verify(conn, Caller.of(principal, client))
    return ChainOut(
        ok=verdict.ok,
        entries=verdict.entries,
        head=verdict.head,
        broken_seq=verdict.broken_seq,
        broken_id=verdict.broken_id,
        problem=verdict.problem,
        summary=verdict.summary(),
    )
