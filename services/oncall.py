"""On-call rotations as people see and edit them, for the API, the dashboard and the
``coldchain oncall`` command alike.

Everyone with ``read`` sees every rotation: its members in turn order, who is on call now
(an override's person while it lasts), the next hand-overs and the overrides not over yet, all
computed by :mod:`coldchain.oncall` (the same functions the rules engine asks when a tier says
``rotation = "<name>"``). Creating and editing a rotation and adding an override need the
``admin`` permission; each change is audited as the caller's, with its why. A bad value is an
:class:`~coldchain.errors.InvalidRecordError` naming the field, a name already taken a
:class:`~coldchain.errors.RecordConflictError`, an unknown rotation a
:class:`~coldchain.errors.NotFoundError`; nothing is changed then.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Final

from coldchain.errors import InvalidRecordError, NotFoundError, RecordConflictError
from coldchain.oncall import Override, Rotation, upcoming_shifts, who_is_on_call
from coldchain.timezones import check_zone
from db.queries import oncall as q
from db.types import Conn, Row
from services.caller import Caller, acting

#: How many hand-overs ahead a rotation shows.
HANDOVERS_SHOWN: Final = 6
#: The longest override (a quarter): a longer absence is a change of the rotation's members.
MAX_OVERRIDE: Final = timedelta(days=92)
NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


@dataclass(frozen=True, slots=True)
class RotationSpec:
    """What an administrator sets of a rotation (its name aside)."""

    team: str
    time_zone: str
    handover_time: time
    shift_days: int
    start_date: date
    members: list[str]


def list_rotations(conn: Conn, caller: Caller, *, at: datetime | None = None) -> list[Row]:
    """Every rotation with its members, who is on call at ``at`` (now), the next hand-overs
    and the overrides not over yet."""
    caller.require("read")
    now = at or datetime.now(UTC)
    rows = q.rotations(conn=conn)
    ids = [r["rotation_id"] for r in rows]
    overrides = q.overrides_from(conn=conn, rotation_ids=ids, at=now) if ids else []
    usernames = {u for r in rows for u in r["members"]} | {o["username"] for o in overrides}
    names = {p["username"]: p for p in q.people(conn=conn, usernames=sorted(usernames))}
    return [_shown(r, overrides, names, now) for r in rows]


def get_rotation(conn: Conn, caller: Caller, *, name: str, at: datetime | None = None) -> Row:
    """One rotation as :func:`list_rotations` shows it; NotFoundError if there is none."""
    for row in list_rotations(conn, caller, at=at):
        if row["name"] == name:
            return row
    raise NotFoundError(f"rotation {name!r} not found")


def rotation_spec(
    *,
    team: str,
    time_zone: str,
    handover_time: time,
    shift_days: int,
    start_date: date,
    members: list[str],
) -> RotationSpec:
    """A rotation's values checked: InvalidRecordError naming the first bad field."""
    if not team.strip() or len(team.strip()) > 200:
        raise InvalidRecordError("team", "give the team's name (1 to 200 characters)")
    try:
        zone = check_zone(time_zone)
    except ValueError as exc:
        raise InvalidRecordError("time_zone", str(exc)) from None
    if not 1 <= shift_days <= 28:
        raise InvalidRecordError(
            "shift_days", f"{shift_days}: a shift lasts 1 to 28 days (1 daily, 7 weekly)"
        )
    cleaned = [m.strip() for m in members]
    if len(set(cleaned)) != len(cleaned):
        raise InvalidRecordError("members", "a person is listed twice")
    return RotationSpec(team.strip(), zone, handover_time, shift_days, start_date, cleaned)


def create_rotation(conn: Conn, caller: Caller, *, name: str, spec: RotationSpec) -> Row:
    """Create a rotation; the rotation as shown."""
    caller.require("admin")
    if not NAME.match(name):
        raise InvalidRecordError(
            "name", f"{name!r}: lower-case letters, digits, '.', '_' and '-' (at most 64)"
        )
    with conn.transaction(), acting(conn, caller, f"rotation {name} created"):
        _check_people(conn, spec.members, "members")
        rotation_id = q.insert_rotation(
            conn=conn,
            name=name,
            team=spec.team,
            time_zone=spec.time_zone,
            handover_time=spec.handover_time,
            shift_days=spec.shift_days,
            start_date=spec.start_date,
        )
        if rotation_id is None:
            raise RecordConflictError(f"a rotation named {name!r} exists already: edit it")
        q.set_members(conn=conn, rotation_id=rotation_id, usernames=spec.members)
    return get_rotation(conn, caller, name=name)


def update_rotation(
    conn: Conn, caller: Caller, *, name: str, spec: RotationSpec, reason: str
) -> Row:
    """Replace a rotation's schedule and members (add, remove, reorder); the rotation as shown."""
    caller.require("admin")
    with conn.transaction(), acting(conn, caller, _reason(reason)):
        row = q.rotation_for_update(conn=conn, name=name)
        if row is None:
            raise NotFoundError(f"rotation {name!r} not found")
        _check_people(conn, spec.members, "members")
        q.update_rotation(
            conn=conn,
            rotation_id=row["rotation_id"],
            values={
                "team": spec.team,
                "time_zone": spec.time_zone,
                "handover_time": spec.handover_time,
                "shift_days": spec.shift_days,
                "start_date": spec.start_date,
            },
        )
        q.set_members(conn=conn, rotation_id=row["rotation_id"], usernames=spec.members)
    return get_rotation(conn, caller, name=name)


def add_override(
    conn: Conn,
    caller: Caller,
    *,
    rotation: str,
    username: str,
    starts_at: datetime,
    ends_at: datetime,
    reason: str,
) -> Row:
    """Put ``username`` on call in ``rotation`` from ``starts_at`` until ``ends_at``; the
    override stored."""
    caller.require("admin")
    if starts_at.tzinfo is None or ends_at.tzinfo is None:
        raise InvalidRecordError("starts_at", "give times with their UTC offset")
    if ends_at <= starts_at:
        raise InvalidRecordError("ends_at", "must be after starts_at")
    if ends_at - starts_at > MAX_OVERRIDE:
        raise InvalidRecordError(
            "ends_at", "an override lasts at most 92 days; change the rotation's members instead"
        )
    why = _reason(reason)
    with conn.transaction(), acting(conn, caller, why):
        row = q.rotation_for_update(conn=conn, name=rotation)
        if row is None:
            raise NotFoundError(f"rotation {rotation!r} not found")
        _check_people(conn, [username], "username")
        return q.insert_override(
            conn=conn,
            values={
                "rotation_id": row["rotation_id"],
                "username": username,
                "starts_at": starts_at,
                "ends_at": ends_at,
                "reason": why,
                "created_by": caller.actor,
            },
        )


def _reason(reason: str) -> str:
    text = (reason or "").strip()
    if not text or len(text) > 2000:
        raise InvalidRecordError("reason", "say why (1 to 2000 characters)")
    return text


def _check_people(conn: Conn, usernames: list[str], field: str) -> None:
    known = q.known_users(conn=conn, usernames=usernames)
    for u in usernames:
        if u not in known:
            raise InvalidRecordError(field, f"{u!r} is nobody's user name")
        if not known[u]:
            raise InvalidRecordError(field, f"{u!r} is deactivated")


def _person(names: dict[str, Row], username: str | None) -> dict[str, Any] | None:
    if username is None:
        return None
    p = names.get(username, {})
    return {
        "username": username,
        "full_name": p.get("full_name", username),
        "has_email": bool(p.get("email")),
        "has_phone": bool(p.get("phone")),
    }


def _shown(row: Row, overrides: list[Row], names: dict[str, Row], now: datetime) -> Row:
    rotation = Rotation.of(row)
    mine = [o for o in overrides if o["rotation_id"] == row["rotation_id"]]
    in_force = [
        Override(o["username"], o["starts_at"], o["ends_at"], o["reason"])
        for o in mine
        if o["starts_at"] <= now
    ]
    members = list(row["members"])
    return {
        "name": row["name"],
        "team": row["team"],
        "time_zone": row["time_zone"],
        "handover_time": row["handover_time"].strftime("%H:%M"),
        "shift_days": row["shift_days"],
        "start_date": row["start_date"],
        "members": [_person(names, m) for m in members],
        "on_call": _person(names, who_is_on_call(rotation, members, in_force, now)),
        "handovers": [
            {"username": s.username, "starts_at": s.starts_at, "ends_at": s.ends_at}
            for s in upcoming_shifts(rotation, members, now, HANDOVERS_SHOWN)
        ],
        "overrides": [
            {k: o[k] for k in ("override_id", "username", "starts_at", "ends_at", "reason")}
            | {"created_by": o["created_by"]}
            for o in mine
        ],
        "updated_at": row["updated_at"],
    }
