"""Locations (sites with a GLN and a geofence), carriers and lanes: read by everyone; created,
changed and retired by the roles with ``locations.manage`` (admin).

The three resources behave alike, so one function declares each one's routes: creation
idempotent by the natural key (GLN, carrier name, lane code: the same body again is 200 with the
stored record, a different one 409); changes with ``If-Match`` (428 without, 412 stale) and a
``reason``; retire, never delete.
"""

# No ``from __future__ import annotations``: the routes below are declared in a function, and
# FastAPI must see their annotations as objects, not as names to resolve in this module.

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Response
from pydantic import BaseModel, ConfigDict

from api.deps import ClientDep, ConnDep, PrincipalDep, requires
from api.preconditions import PRECONDITION_RESPONSES, expected_version, patch_model, set_etag
from api.schemas import ErrorOut
from services import locations as service
from services.caller import Caller
from services.locations import CarrierIn, LaneIn, LocationIn, Mode, Table

router = APIRouter(tags=["locations"])
_MANAGE = requires("locations.manage")
ReasonQuery = Annotated[
    str, Query(min_length=1, max_length=2000, description="why: recorded in the audit trail")
]
VersionDep = Annotated[int, Depends(expected_version)]


class _Record(BaseModel):
    model_config = ConfigDict(extra="ignore")

    version: int
    created_at: datetime
    retired_at: datetime | None


class Location(_Record):
    """A site: GLN, name, address, coordinates, geofence radius (metres), IANA time zone."""

    location_id: str
    gln: str
    name: str
    address: str
    lat: float
    lon: float
    geofence_m: float
    time_zone: str


class Carrier(_Record):
    """A carrier."""

    carrier_id: int
    name: str
    code: str | None


class Lane(_Record):
    """A lane from one site to another by a mode."""

    lane_id: int
    code: str
    origin_location_id: str
    destination_location_id: str
    mode: Mode


def _routes(
    table: Table,
    path: str,
    what: str,
    body_model: type[BaseModel],
    out: type[BaseModel],
    key_path: Any,
    identity: tuple[str, ...],
) -> None:
    patch_body = patch_model(body_model, exclude=identity)
    writes: dict[int | str, dict[str, Any]] = {
        409: {
            "model": ErrorOut,
            "description": f"the {what} exists with other values, or is retired",
        },
        422: {"model": ErrorOut, "description": f"a value the {what} may not have (field named)"},
    }

    def list_all(
        conn: ConnDep,
        include_retired: Annotated[bool, Query(description="also the retired ones")] = True,
    ) -> list[out]:  # type: ignore[valid-type]
        return [
            out.model_validate(r)
            for r in service.list_records(conn, table, include_retired=include_retired)
        ]

    def get_one(key: key_path, conn: ConnDep, response: Response) -> out:  # type: ignore[valid-type]
        row = service.get_record(conn, table, key)
        set_etag(response, row)
        return out.model_validate(row)

    def create(
        body: body_model,  # type: ignore[valid-type]
        conn: ConnDep,
        principal: PrincipalDep,
        client: ClientDep,
        response: Response,
    ) -> out:  # type: ignore[valid-type]
        row, created = service.create_record(conn, Caller.of(principal, client), table, record=body)
        response.status_code = 201 if created else 200
        set_etag(response, row)
        return out.model_validate(row)

    def update(
        key: key_path,
        body: patch_body,  # type: ignore[valid-type]
        reason: ReasonQuery,
        version: VersionDep,
        conn: ConnDep,
        principal: PrincipalDep,
        client: ClientDep,
        response: Response,
    ) -> out:  # type: ignore[valid-type]
        row = service.update_record(
            conn,
            Caller.of(principal, client),
            table,
            key=key,
            changes=body.model_dump(exclude_unset=True),  # type: ignore[attr-defined]
            expected_version=version,
            reason=reason,
        )
        set_etag(response, row)
        return out.model_validate(row)

    def retire(
        key: key_path,
        reason: ReasonQuery,
        version: VersionDep,
        conn: ConnDep,
        principal: PrincipalDep,
        client: ClientDep,
        response: Response,
    ) -> out:  # type: ignore[valid-type]
        row = service.retire_record(
            conn,
            Caller.of(principal, client),
            table,
            key=key,
            expected_version=version,
            reason=reason,
        )
        set_etag(response, row)
        return out.model_validate(row)

    router.get(path, summary=f"List {table}", description=f"Every {what}.")(list_all)
    router.get(
        f"{path}/{{key}}",
        summary=f"Get a {what}",
        description=f"One {what}; its ETag is its version.",
    )(get_one)
    router.post(
        path,
        status_code=201,
        openapi_extra=_MANAGE,
        summary=f"Create a {what}",
        description=f"Create a {what}; the same one again answers the stored record (200).",
        responses={200: {"model": out, "description": "already registered as given"}, **writes},
        operation_id=f"create_{what}",
    )(create)
    router.patch(
        f"{path}/{{key}}",
        openapi_extra=_MANAGE,
        summary=f"Change a {what}",
        description=f"Change some fields of a {what}, at the version read (If-Match).",
        responses=PRECONDITION_RESPONSES | writes,
        operation_id=f"update_{what}",
    )(update)
    router.post(
        f"{path}/{{key}}/retire",
        openapi_extra=_MANAGE,
        summary=f"Retire a {what}",
        description=f"Retire a {what}: kept with its history, not usable for new shipments.",
        responses=PRECONDITION_RESPONSES | writes,
        operation_id=f"retire_{what}",
    )(retire)


_routes(
    "locations",
    "/locations",
    "location",
    LocationIn,
    Location,
    Annotated[str, Path(min_length=1, max_length=200, description="location_id")],
    ("gln", "location_id"),
)
_routes(
    "carriers",
    "/carriers",
    "carrier",
    CarrierIn,
    Carrier,
    Annotated[int, Path(ge=1, le=2**62, description="carrier_id")],
    (),
)
_routes(
    "lanes",
    "/lanes",
    "lane",
    LaneIn,
    Lane,
    Annotated[int, Path(ge=1, le=2**62, description="lane_id")],
    (),
)
