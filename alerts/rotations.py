"""Who the rotation tiers reach at the moment of notifying: the rotations named by the
escalation policy, read from the database and asked :func:`coldchain.oncall.who_is_on_call`.

Read in the notifying transaction, so the person told is the one on call when the
notification was queued (an override added a second earlier counts).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from alerts.escalation import Person
from coldchain.oncall import Override, Rotation, who_is_on_call
from db.queries import oncall as q


async def on_call(
    conn: AsyncConnection[Any], names: Iterable[str], at: datetime
) -> dict[str, Person | None]:
    """Per rotation name: the person on call at ``at`` with their contacts, or None (nobody on
    call); a name that is no rotation is left out."""
    wanted = sorted(set(names))
    if not wanted:
        return {}
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(q.ROTATIONS_BY_NAME, {"names": wanted})
        rotations = await cur.fetchall()
        ids = [r["rotation_id"] for r in rotations]
        await cur.execute(q.OVERRIDES_AT, {"rotations": ids, "at": at})
        overrides = await cur.fetchall()
        usernames: dict[str, str | None] = {}
        for r in rotations:
            mine = [
                Override(o["username"], o["starts_at"], o["ends_at"], o["reason"])
                for o in overrides
                if o["rotation_id"] == r["rotation_id"]
            ]
            usernames[r["name"]] = who_is_on_call(Rotation.of(r), r["members"], mine, at)
        await cur.execute(
            q.PEOPLE, {"usernames": sorted({u for u in usernames.values() if u is not None})}
        )
        people = {
            p["username"]: Person(
                p["username"], p["full_name"], p["email"], p["phone"], p["active"]
            )
            for p in await cur.fetchall()
        }
    found: dict[str, Person | None] = {}
    for name, username in usernames.items():
        found[name] = None if username is None else people.get(username)
    return found
