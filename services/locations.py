"""Locations (sites with a GLN, address, coordinates, a geofence and a time zone), carriers and
lanes (an origin, a destination and a mode): create, change, retire, import.

Creation is idempotent by the natural key (a location's GLN, a carrier's name, a lane's code):
the same record again returns the stored one, a different one raises
:class:`RecordConflictError`. Each change names the version the caller read. Records are
retired, never deleted; a lane cannot start or end at a retired location, and a location that a
live lane uses cannot be retired before the lane.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from coldchain.errors import InvalidRecordError, NotFoundError, RecordConflictError
from coldchain.gs1 import check_key
from coldchain.timezones import DEFAULT_ZONE, check_zone
from db.queries import locations as q
from db.types import Conn, Row
from services.caller import Caller, acting
from services.csvimport import ImportResult, RowProblem, parse_rows
from services.records import require_live

Table = Literal["locations", "carriers", "lanes"]
Mode = Literal["road", "air", "sea", "rail", "multimodal"]
_Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
_Id = Annotated[
    str, StringConstraints(strip_whitespace=True, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,199}$")
]


class LocationIn(BaseModel):
    """A site: GLN (its natural key), name, address, coordinates and geofence radius."""

    model_config = ConfigDict(extra="forbid")

    gln: str = Field(description="13-digit GLN with its GS1 check digit")
    name: _Text
    address: Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)] = ""
    lat: Annotated[float, Field(ge=-90, le=90)]
    lon: Annotated[float, Field(ge=-180, le=180)]
    geofence_m: Annotated[float, Field(gt=0, le=1_000_000, allow_inf_nan=False)] = Field(
        description="radius in metres around (lat, lon): inside is at the site"
    )
    location_id: _Id | None = Field(
        default=None,
        description="the id its EPCIS events use (an SGLN URI); the GLN when absent",
    )
    time_zone: str = Field(
        default=DEFAULT_ZONE,
        description="the site's IANA time zone (e.g. Europe/Zurich): its local times are shown "
        "in it; UTC when absent",
    )

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            return check_zone(value)
        except ValueError as exc:
            # Its own error type: the message reads as it is, without "Value error, ".
            raise PydanticCustomError("time_zone", str(exc)) from None

    @field_validator("gln")
    @classmethod
    def _gln(cls, value: str) -> str:
        value = value.strip()
        check_key(value, "GLN", 13)  # an IdentifierError is a ValueError: pydantic names the field
        return value

    @model_validator(mode="after")
    def _default_id(self) -> LocationIn:
        if self.location_id is None:
            self.location_id = self.gln
        return self


class CarrierIn(BaseModel):
    """A carrier: name (its natural key) and an optional code (SCAC, IATA…)."""

    model_config = ConfigDict(extra="forbid")

    name: _Text
    code: Annotated[str, StringConstraints(pattern=r"^[A-Z0-9][A-Z0-9._-]{0,31}$")] | None = None


class LaneIn(BaseModel):
    """A lane: code (its natural key), origin and destination locations, mode."""

    model_config = ConfigDict(extra="forbid")

    code: Annotated[
        str, StringConstraints(strip_whitespace=True, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
    ]
    origin_location_id: _Id
    destination_location_id: _Id
    mode: Mode

    @field_validator("destination_location_id")
    @classmethod
    def _two_ends(cls, value: str, info: ValidationInfo) -> str:
        if value == info.data.get("origin_location_id"):
            raise ValueError("a lane's destination must differ from its origin")
        return value


#: The model each table's records are created with.
MODELS: dict[str, type[BaseModel]] = {
    "locations": LocationIn,
    "carriers": CarrierIn,
    "lanes": LaneIn,
}
_WHAT = {"locations": "location", "carriers": "carrier", "lanes": "lane"}


def _spec_of(table: Table, row: Row) -> BaseModel:
    data = {f: row[f] for f in q.TABLES[table][1]}
    if table == "locations":
        data["location_id"] = row["location_id"]
    return MODELS[table].model_validate(data)


def _fields(table: Table, spec: BaseModel) -> dict[str, Any]:
    return {f: getattr(spec, f) for f in q.TABLES[table][1]}


def _natural(table: Table, spec: BaseModel) -> Any:
    return getattr(spec, {"locations": "gln", "carriers": "name", "lanes": "code"}[table])


def _check_lane_ends(conn: Conn, lane: LaneIn) -> None:
    for field in ("origin_location_id", "destination_location_id"):
        location_id = getattr(lane, field)
        row = q.find_record(conn=conn, table="locations", key=location_id)
        if row is None or row["gln"] is None:
            raise InvalidRecordError(field, f"no site {location_id!r} is registered")
        if row["retired_at"] is not None:
            raise InvalidRecordError(field, f"site {location_id!r} is retired")


def list_records(conn: Conn, table: Table, *, include_retired: bool = True) -> list[Row]:
    """Every location (site), carrier or lane."""
    return q.list_records(conn=conn, table=table, include_retired=include_retired)


def get_record(conn: Conn, table: Table, key: Any) -> Row:
    """One record by its key; NotFoundError."""
    return require_found(q.find_record(conn=conn, table=table, key=key), f"{_WHAT[table]} {key}")


def require_found(row: Row | None, what: str) -> Row:
    """``row``, or NotFoundError naming ``what``."""
    if row is None:
        raise NotFoundError(f"{what} not found")
    return row


def create_record(
    conn: Conn, caller: Caller, table: Table, *, record: BaseModel, reason: str | None = None
) -> tuple[Row, bool]:
    """Create a location, carrier or lane; ``(record, created)``; a retry returns the stored one."""
    caller.require("locations.manage")
    what = _WHAT[table]
    with acting(conn, caller, reason or f"{what} registered"), conn.transaction():
        existing = q.find_by_natural_key(
            conn=conn, table=table, value=_natural(table, record), lock=True
        )
        if existing is not None:
            if _spec_of(table, existing) != record:
                raise RecordConflictError(
                    f"{what} {_natural(table, record)} is already registered with other values "
                    f"(version {existing['version']}): change it with PATCH and its version"
                )
            return existing, False
        if isinstance(record, LaneIn):
            _check_lane_ends(conn, record)
        data = _fields(table, record)
        if isinstance(record, LocationIn):
            data["location_id"] = record.location_id
            if q.find_record(conn=conn, table="locations", key=record.location_id) is not None:
                raise RecordConflictError(f"location id {record.location_id!r} is taken")
        (key,) = q.insert_records(conn=conn, table=table, records=[data])
        return get_record(conn, table, key), True


def update_record(
    conn: Conn,
    caller: Caller,
    table: Table,
    *,
    key: Any,
    changes: Mapping[str, Any],
    expected_version: int,
    reason: str,
) -> Row:
    """Change some fields of a record at the version the caller read."""
    caller.require("locations.manage")
    what = f"{_WHAT[table]} {key}"
    if table == "locations" and "location_id" in changes:
        raise InvalidRecordError("location_id", "is the site's identity and cannot change")
    with acting(conn, caller, reason), conn.transaction():
        row = require_live(
            q.find_record(conn=conn, table=table, key=key, lock=True), what, expected_version
        )
        before = _spec_of(table, row)
        try:
            after = MODELS[table].model_validate({**before.model_dump(), **changes})
        except ValidationError as exc:
            first = exc.errors()[0]
            raise InvalidRecordError(
                ".".join(map(str, first["loc"])) or table, first["msg"]
            ) from None
        if after == before:
            return row
        if isinstance(after, LaneIn):
            _check_lane_ends(conn, after)
        q.update_record(
            conn=conn,
            table=table,
            key=key,
            expected_version=expected_version,
            fields=_fields(table, after),
        )
        return get_record(conn, table, key)


def retire_record(
    conn: Conn, caller: Caller, table: Table, *, key: Any, expected_version: int, reason: str
) -> Row:
    """Retire a record; a site still used by a live lane is refused (retire the lane first)."""
    caller.require("locations.manage")
    what = f"{_WHAT[table]} {key}"
    with acting(conn, caller, reason), conn.transaction():
        require_live(
            q.find_record(conn=conn, table=table, key=key, lock=True), what, expected_version
        )
        if table == "locations":
            lanes = q.lanes_using(conn=conn, location_id=key)
            if lanes:
                raise RecordConflictError(
                    f"{what} is used by live lane(s) {', '.join(r['code'] for r in lanes)}: "
                    "retire them first"
                )
        q.retire_record(conn=conn, table=table, key=key, expected_version=expected_version)
        return get_record(conn, table, key)


def import_records(
    conn: Conn, caller: Caller, table: Table, *, text: str, reason: str, skip_bad: bool = False
) -> ImportResult:
    """Create the records of a CSV file (the columns of the table's model): validated whole,
    every bad row reported, applied in one transaction only if all are good (or the good ones
    with ``skip_bad``). A row identical to a stored record is counted as unchanged."""
    caller.require("locations.manage")
    model = MODELS[table]
    required = tuple(n for n, f in model.model_fields.items() if f.is_required())
    good, problems = parse_rows(text, model, required_columns=required)
    result = ImportResult()
    with acting(conn, caller, reason), conn.transaction():
        seen: dict[Any, int] = {}
        new: list[BaseModel] = []
        for line, record in good:
            natural = _natural(table, record)
            if natural in seen:
                problems.append(
                    RowProblem(line, "row", f"{natural} is also on line {seen[natural]}")
                )
                continue
            seen[natural] = line
            if isinstance(record, LaneIn):
                try:
                    _check_lane_ends(conn, record)
                except InvalidRecordError as exc:
                    problems.append(
                        RowProblem(line, exc.field, str(exc).removeprefix(f"{exc.field}: "))
                    )
                    continue
            stored = q.find_by_natural_key(conn=conn, table=table, value=natural)
            if stored is not None:
                if _spec_of(table, stored) == record:
                    result.unchanged += 1
                else:
                    problems.append(
                        RowProblem(line, "row", f"{natural} is registered with other values")
                    )
                continue
            new.append(record)
        result.problems = sorted(problems, key=lambda p: p.line)
        if result.problems and not skip_bad:
            return result
        result.skipped_lines = sorted({p.line for p in result.problems})
        records = []
        for record in new:
            data = _fields(table, record)
            if isinstance(record, LocationIn):
                data["location_id"] = record.location_id
            records.append(data)
        if records:
            q.insert_records(conn=conn, table=table, records=records)
        result.applied = len(records)
    return result


def site_time_zones(conn: Conn, names: list[str]) -> dict[str, str]:
    """The IANA time zone of each site named (location id or name, as a shipment's legs name
    them); a name no site has is left out (its times are shown in the person's zone only)."""
    return q.site_time_zones(conn=conn, names=sorted(set(names)))
