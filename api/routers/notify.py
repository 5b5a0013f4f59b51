"""Test notifications (administrators): where a test can go, and sending one now.

The operations are :mod:`services.notify` (the dashboard's admin page and ``coldchain notify
test`` call the same ones). A refused target is a 422 naming ``channel``, ``to`` or ``person``;
a failed delivery is not an HTTP error: the result says ``ok: false`` and why.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from api.deps import CallerDep, ConnDep, SettingsDep, requires
from api.schemas import ErrorOut
from services import notify as service

router = APIRouter(tags=["notifications"])
_ADMIN = requires("admin")


class TestIn(BaseModel):
    """A channel and a target, or a person (their e-mail and phone)."""

    model_config = ConfigDict(extra="forbid")

    channel: str | None = Field(default=None, description=", ".join(service.CHANNELS))
    to: Annotated[str, StringConstraints(min_length=1, max_length=2000)] | None = Field(
        default=None, description="the target: URL, address, phone number, key"
    )
    person: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = None


class TestOut(BaseModel):
    """One test attempt: delivered (the receiver's answer) or the error."""

    channel: str
    target: str = Field(description="redacted: a URL's host, a key's first characters")
    ok: bool
    response: str
    person: str | None


class TargetOut(BaseModel):
    """A configured channel target (redacted) and where it is configured."""

    channel: str
    target: str
    where: str


@router.get("/notifications/targets", openapi_extra=_ADMIN)
def targets(caller: CallerDep, settings: SettingsDep) -> list[TargetOut]:
    """The channel targets the settings and the rules file configure."""
    caller.require("admin")
    return [
        TargetOut(channel=t.channel, target=t.shown, where=t.where)
        for t in service.configured_targets(settings)
    ]


@router.post(
    "/notifications/test",
    openapi_extra=_ADMIN,
    responses={404: {"model": ErrorOut}, 422: {"model": ErrorOut}},
)
def send_test(
    body: TestIn, conn: ConnDep, caller: CallerDep, settings: SettingsDep
) -> list[TestOut]:
    """Send a test notification now; recorded in ``deliveries`` and the audit trail."""
    results = service.send_test(
        conn, caller, settings, channel=body.channel, to=body.to, person=body.person
    )
    return [
        TestOut(channel=r.channel, target=r.target, ok=r.ok, response=r.response, person=r.person)
        for r in results
    ]
