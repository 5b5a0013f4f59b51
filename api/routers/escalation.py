"""Who is told of alerts: the escalation policy in force and its versions (any reader, secrets
masked), and a new version (admins). The operations and their rules are
:mod:`services.escalation`; the policy's form is the rules file's ``[escalation]`` table
(``rules/example.toml``), validated by the same model, so a misspelt field is a 422 naming it.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, HTTPException, Query
from pydantic import AwareDatetime, BaseModel, Field, StringConstraints

from api.deps import ClientDep, ConnDep, PrincipalDep, ReportSettingsDep, requires
from api.schemas import ErrorOut
from coldchain.errors import ConfigError
from services import escalation
from services.caller import Caller

router = APIRouter(tags=["rules"])

Reason = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=2000),
    Query(description="why the policy changes: stored with the version and in the audit trail"),
]
Policy = Annotated[
    dict[str, Any],
    Body(
        description="the rules file's [escalation] table as JSON: tiers, each with name, "
        "after_min, severities and recipients per channel (webhooks, emails, slack, teams, "
        "pagerduty, opsgenie, sms); secrets must be given in full (a masked value is refused)",
        openapi_examples={
            "two tiers": {
                "value": {
                    "tiers": [
                        {"name": "Control tower", "emails": ["tower@example.com"]},
                        {
                            "name": "QA on call",
                            "after_min": 15,
                            "severities": ["major", "critical"],
                            "sms": ["+447700900123"],
                        },
                    ]
                }
            }
        },
    ),
]


class PolicyVersion(BaseModel):
    """One stored version of the escalation policy (secrets masked)."""

    version: int
    definition: dict[str, Any]
    created_by: str
    created_at: AwareDatetime
    reason: str | None


class EscalationOut(BaseModel):
    """The escalation policy in force (secrets masked) and every stored version."""

    source: Literal["stored", "rules file", "settings"] = Field(
        description="stored: the latest version below; rules file: its [escalation] tiers; "
        "settings: tier 0 is COLDCHAIN_ALERTS__WEBHOOK_URLS and COLDCHAIN_ALERTS__SMTP_TO"
    )
    version: int | None
    policy: dict[str, Any]
    versions: list[PolicyVersion]


_PUT_RESPONSES: dict[int | str, dict[str, Any]] = {
    422: {
        "model": ErrorOut,
        "description": "an invalid policy, each problem named with its field as for a rules "
        "file; nothing is stored",
    },
}


@router.get("/escalation")
def get_escalation(conn: ConnDep, cfg: ReportSettingsDep) -> EscalationOut:
    """The escalation policy in force and its stored versions, oldest first."""
    return _out(escalation.escalation_in_force(conn, cfg))


@router.put("/escalation", openapi_extra=requires("admin"), responses=_PUT_RESPONSES)
def put_escalation(
    definition: Policy,
    reason: Reason,
    conn: ConnDep,
    principal: PrincipalDep,
    client: ClientDep,
    cfg: ReportSettingsDep,
) -> EscalationOut:
    """Store a new version of the escalation policy (admins), with a reason; the rules engine
    takes it at its next turn."""
    caller = Caller.of(principal, client)
    try:
        found = escalation.set_escalation(
            conn, caller, cfg, definition=definition, reason=reason, source="request body"
        )
    except ConfigError as exc:
        raise HTTPException(status_code=422, detail=str(exc)) from None
    return _out(found)


def _out(found: escalation.EscalationInForce) -> EscalationOut:
    return EscalationOut(
        source=found.source,
        version=found.version,
        policy=found.policy,
        versions=[PolicyVersion.model_validate(v) for v in found.versions],
    )
