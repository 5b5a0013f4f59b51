"""On-call rotations (:mod:`services.oncall`): everyone reads them (who is on call now, the
next hand-overs, the overrides); administrators create and edit them and add overrides.

An escalation tier of the rules file with ``rotation = "<name>"`` notifies the person on call
in that rotation at the moment of notifying (README "On-call").
"""

from __future__ import annotations

from datetime import date, time
from typing import Annotated

from fastapi import APIRouter, Path, Query
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

from api.deps import CallerDep, ConnDep, requires
from api.schemas import ErrorOut
from services import oncall

router = APIRouter(prefix="/oncall", tags=["on call"])

ADMIN = requires("admin")
Name = Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$")]
Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]
Username = Annotated[str, StringConstraints(min_length=1, max_length=64)]
WRITE_RESPONSES: dict[int | str, dict[str, object]] = {
    404: {"model": ErrorOut, "description": "no such rotation"},
    409: {"model": ErrorOut, "description": "the name is taken"},
    422: {"model": ErrorOut, "description": "a bad value; the detail names the field"},
}


class Person(BaseModel):
    """Someone in a rotation; whether they can be reached by e-mail and by SMS."""

    username: str
    full_name: str
    has_email: bool
    has_phone: bool


class Handover(BaseModel):
    """A scheduled shift: who, from when until the next hand-over."""

    username: str
    starts_at: AwareDatetime
    ends_at: AwareDatetime


class OverrideOut(BaseModel):
    """Someone on call instead of the schedule's member for a while."""

    override_id: int
    username: str
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    reason: str
    created_by: str


class RotationOut(BaseModel):
    """A rotation: its schedule, members in turn order, who is on call now, what comes next."""

    name: str
    team: str
    time_zone: str
    handover_time: str = Field(description="local time of day, HH:MM, in time_zone")
    shift_days: int
    start_date: date
    members: list[Person]
    on_call: Person | None = Field(description="None: nobody (before the start, no members)")
    handovers: list[Handover]
    overrides: list[OverrideOut] = Field(description="those not over yet")


class RotationIn(BaseModel):
    """A rotation's schedule and members (in turn order)."""

    model_config = ConfigDict(extra="forbid")

    team: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
    time_zone: str = Field(examples=["Europe/Berlin"])
    handover_time: time = Field(examples=["09:00"])
    shift_days: int = Field(ge=1, le=28, description="1: daily, 7: weekly")
    start_date: date
    members: list[Username] = Field(max_length=200)

    def spec(self) -> oncall.RotationSpec:
        return oncall.rotation_spec(
            team=self.team,
            time_zone=self.time_zone,
            handover_time=self.handover_time,
            shift_days=self.shift_days,
            start_date=self.start_date,
            members=self.members,
        )


class NewRotation(RotationIn):
    """A new rotation, with its name (what a tier's ``rotation`` names)."""

    name: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$")]


class OverrideIn(BaseModel):
    """Someone on call instead, from ``starts_at`` until ``ends_at``, with why."""

    model_config = ConfigDict(extra="forbid")

    username: Username
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    reason: Reason


@router.get("/rotations")
def list_rotations(conn: ConnDep, caller: CallerDep) -> list[RotationOut]:
    """Every rotation, with who is on call now."""
    return [RotationOut.model_validate(r) for r in oncall.list_rotations(conn, caller)]


@router.get("/rotations/{name}", responses={404: {"model": ErrorOut}})
def get_rotation(name: Name, conn: ConnDep, caller: CallerDep) -> RotationOut:
    """One rotation, with who is on call now."""
    return RotationOut.model_validate(oncall.get_rotation(conn, caller, name=name))


@router.post("/rotations", status_code=201, openapi_extra=ADMIN, responses=WRITE_RESPONSES)
def create_rotation(body: NewRotation, conn: ConnDep, caller: CallerDep) -> RotationOut:
    """Create a rotation (admin)."""
    row = oncall.create_rotation(conn, caller, name=body.name, spec=body.spec())
    return RotationOut.model_validate(row)


@router.put("/rotations/{name}", openapi_extra=ADMIN, responses=WRITE_RESPONSES)
def update_rotation(
    name: Name,
    body: RotationIn,
    conn: ConnDep,
    caller: CallerDep,
    reason: Annotated[Reason, Query()],
) -> RotationOut:
    """Replace a rotation's schedule and members (admin): add, remove, reorder people, move
    the hand-over; ``reason`` goes into the audit trail."""
    row = oncall.update_rotation(conn, caller, name=name, spec=body.spec(), reason=reason)
    return RotationOut.model_validate(row)


@router.post(
    "/rotations/{name}/overrides", status_code=201, openapi_extra=ADMIN, responses=WRITE_RESPONSES
)
def add_override(name: Name, body: OverrideIn, conn: ConnDep, caller: CallerDep) -> OverrideOut:
    """Put someone on call instead for a while (admin)."""
    row = oncall.add_override(
        conn,
        caller,
        rotation=name,
        username=body.username,
        starts_at=body.starts_at,
        ends_at=body.ends_at,
        reason=body.reason,
    )
    return OverrideOut.model_validate(row)
