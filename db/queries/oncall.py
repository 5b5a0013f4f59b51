"""On-call rotations, their members and overrides (db/migrations/0026_oncall_flood.sql).

The statements are shared by the services (the sync functions below, for the API, the
dashboard and the ``coldchain`` command) and the rules engine (:mod:`alerts.rotations` runs
:data:`ROTATIONS_BY_NAME`, :data:`OVERRIDES_AT` and :data:`PEOPLE` on its async connection).
"""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Any

from db.types import Conn, Row

_ROTATION_COLUMNS = """
r.rotation_id, r.name, r.team, r.time_zone, r.handover_time, r.shift_days, r.start_date,
r.updated_at,
coalesce((SELECT array_agg(m.username ORDER BY m.position) FROM oncall_members m
          WHERE m.rotation_id = r.rotation_id), '{}') AS members
"""

ROTATIONS = f"SELECT {_ROTATION_COLUMNS} FROM oncall_rotations r ORDER BY r.team, r.name"

ROTATIONS_BY_NAME = f"""
SELECT {_ROTATION_COLUMNS} FROM oncall_rotations r WHERE r.name = ANY(%(names)s::text[])
"""

ROTATION_FOR_UPDATE = f"""
SELECT {_ROTATION_COLUMNS} FROM oncall_rotations r WHERE r.name = %(name)s FOR UPDATE OF r
"""

# Overrides in force at an instant, oldest created first (the last one wins an overlap).
OVERRIDES_AT = """
SELECT o.rotation_id, o.username, o.starts_at, o.ends_at, o.reason
FROM oncall_overrides o
WHERE o.rotation_id = ANY(%(rotations)s::bigint[]) AND o.starts_at <= %(at)s AND o.ends_at > %(at)s
ORDER BY o.created_at, o.override_id
"""

# Overrides not over yet (the page's list), oldest created first.
OVERRIDES_FROM = """
SELECT o.override_id, o.rotation_id, o.username, o.starts_at, o.ends_at, o.reason,
       o.created_by, o.created_at
FROM oncall_overrides o
WHERE o.rotation_id = ANY(%(rotations)s::bigint[]) AND o.ends_at > %(at)s
ORDER BY o.created_at, o.override_id
"""

# How to reach people: their contacts, and whether they may still be told anything.
PEOPLE = """
SELECT username, full_name, email, phone, active FROM app_users
WHERE username = ANY(%(usernames)s::text[])
"""

INSERT_ROTATION = """
INSERT INTO oncall_rotations (name, team, time_zone, handover_time, shift_days, start_date)
VALUES (%(name)s, %(team)s, %(time_zone)s, %(handover_time)s, %(shift_days)s, %(start_date)s)
ON CONFLICT (name) DO NOTHING
RETURNING rotation_id
"""

UPDATE_ROTATION = """
UPDATE oncall_rotations
SET team = %(team)s, time_zone = %(time_zone)s, handover_time = %(handover_time)s,
    shift_days = %(shift_days)s, start_date = %(start_date)s, updated_at = now()
WHERE rotation_id = %(rotation_id)s
"""

DELETE_MEMBERS = "DELETE FROM oncall_members WHERE rotation_id = %(rotation_id)s"

INSERT_MEMBER = """
INSERT INTO oncall_members (rotation_id, position, username)
VALUES (%(rotation_id)s, %(position)s, %(username)s)
"""

INSERT_OVERRIDE = """
INSERT INTO oncall_overrides (rotation_id, username, starts_at, ends_at, reason, created_by)
VALUES (%(rotation_id)s, %(username)s, %(starts_at)s, %(ends_at)s, %(reason)s, %(created_by)s)
RETURNING override_id, rotation_id, username, starts_at, ends_at, reason, created_by, created_at
"""

KNOWN_USERS = """
SELECT username, active FROM app_users WHERE username = ANY(%(usernames)s::text[])
"""


def rotations(*, conn: Conn) -> list[Row]:
    """Every rotation with its members in turn order, by team and name."""
    return conn.execute(ROTATIONS).fetchall()


def rotation_for_update(*, conn: Conn, name: str) -> Row | None:
    """One rotation by name, locked for a change (in the caller's transaction)."""
    return conn.execute(ROTATION_FOR_UPDATE, {"name": name}).fetchone()


def overrides_from(*, conn: Conn, rotation_ids: list[int], at: datetime) -> list[Row]:
    """The overrides of some rotations that have not ended at ``at``."""
    return conn.execute(OVERRIDES_FROM, {"rotations": rotation_ids, "at": at}).fetchall()


def people(*, conn: Conn, usernames: list[str]) -> list[Row]:
    """Some people's names and contacts."""
    return conn.execute(PEOPLE, {"usernames": usernames}).fetchall()


def known_users(*, conn: Conn, usernames: list[str]) -> dict[str, bool]:
    """Of these usernames, those that exist, and whether each is active."""
    rows = conn.execute(KNOWN_USERS, {"usernames": usernames}).fetchall()
    return {r["username"]: r["active"] for r in rows}


def insert_rotation(
    *,
    conn: Conn,
    name: str,
    team: str,
    time_zone: str,
    handover_time: time,
    shift_days: int,
    start_date: date,
) -> int | None:
    """A new rotation's id; None when the name is taken."""
    row = conn.execute(
        INSERT_ROTATION,
        {
            "name": name,
            "team": team,
            "time_zone": time_zone,
            "handover_time": handover_time,
            "shift_days": shift_days,
            "start_date": start_date,
        },
    ).fetchone()
    return None if row is None else int(row["rotation_id"])


def update_rotation(*, conn: Conn, rotation_id: int, values: dict[str, Any]) -> None:
    """Change a rotation's schedule (team, zone, hand-over time, shift length, start)."""
    conn.execute(UPDATE_ROTATION, {**values, "rotation_id": rotation_id})


def set_members(*, conn: Conn, rotation_id: int, usernames: list[str]) -> None:
    """Replace a rotation's members by these, in this turn order."""
    conn.execute(DELETE_MEMBERS, {"rotation_id": rotation_id})
    with conn.cursor() as cur:
        cur.executemany(
            INSERT_MEMBER,
            [
                {"rotation_id": rotation_id, "position": i, "username": u}
                for i, u in enumerate(usernames)
            ],
        )


def insert_override(*, conn: Conn, values: dict[str, Any]) -> Row:
    """Store an override; the stored row."""
    row = conn.execute(INSERT_OVERRIDE, values).fetchone()
    assert row is not None
    return row
