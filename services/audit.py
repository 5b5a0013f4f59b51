"""The audit trail as quality and administrators read it: the entries, and the verdict on its
hash chain, for the API and the ``coldchain audit`` command alike.

Reading the trail is restricted (``audit.read``: QA and administrators), so these reads take a
caller (see :mod:`services`). The chain itself (what is hashed, how a break is found) is
:mod:`security.audit`.
"""

from __future__ import annotations

import contextlib

from db.queries import security as q
from db.types import Conn, Row
from security.audit import ChainVerdict, stored_entries, verify_chain
from services.caller import Caller


def list_entries(
    conn: Conn,
    caller: Caller,
    *,
    entity: str | None = None,
    entity_id: str | None = None,
    actor: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> tuple[list[Row], int]:
    """Audit entries, newest first, filtered by table (``entity``), key or actor; and how many
    match in all."""
    caller.require("audit.read")
    return q.list_audit(
        conn=conn, entity=entity, entity_id=entity_id, actor=actor, limit=limit, offset=offset
    )


def verify(conn: Conn, caller: Caller) -> ChainVerdict:
    """Recompute every entry's hash and link, streamed from the database; the verdict names the
    first broken entry."""
    caller.require("audit.read")
    with contextlib.closing(stored_entries(conn)) as entries:
        return verify_chain(entries)
