"""The audit trail's hash chain, and the context (who, role, where, why) the database records.

Entries are written by the database (db/migrations/0006_security.sql): triggers on the audited
tables, and :func:`db.queries.security.append_audit` for events that are not row changes
(logins, revocations). A trigger numbers each entry (``seq``), stamps it and chains it:

    hash(n) = SHA-256( "coldchain-audit-v1" | seq | at | actor | actor_role | action | entity |
                       entity_id | before | after | reason | source | hash(n-1) )

each text field length-prefixed (``5:hello``; ``-`` for NULL), ``at`` as
``YYYY-MM-DDTHH:MM:SS.ffffffZ``, ``before``/``after`` as PostgreSQL prints jsonb, and
``hash(0)`` = 64 zeros. :func:`audit_material` builds the same text in Python and
:func:`verify_chain` walks the entries in order: an edited entry no longer matches its hash, a
deleted one breaks the link (and the numbering) of the next, an inserted one breaks both.

What the chain does not stop: someone who can write the table (a superuser) and recomputes every
later hash. The head hash printed by ``coldchain audit verify`` is the anchor to keep elsewhere
(README "Security").

The context travels on the database connection, set by :func:`audit_context` around a change.
Its ``credential`` (the caller's bearer token, dashboard session or API key, as presented) goes
to the database's ``audit_authenticate``, which hashes it, looks it up and remembers the
principal for this session: the triggers then record that person or key as the actor, whatever
else the connection claims. Without a credential (the CLI, system jobs) the actor, role, source
and reason travel as settings (``coldchain.actor`` …) and are recorded as claimed. Either way
the entry's source ends with what the database saw (login role, client address, "verified by
token <id>" or "actor not verified"), and only the database writes entries: the services' role
may not INSERT into ``audit_log`` (db/migrations/0008_evidence_append_only.sql).
"""

from __future__ import annotations

import contextlib
from collections.abc import Generator, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from coldchain.canonical import sha256_hex
from db.queries.security import iter_audit_rows
from db.types import Conn

GENESIS_HASH = "0" * 64
MATERIAL_VERSION = "coldchain-audit-v1"
_CONTEXT_FIELDS = ("actor", "actor_role", "source", "reason")


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One stored entry; ``before``/``after`` are jsonb as the database prints it (text)."""

    id: int
    seq: int
    at: datetime
    actor: str
    actor_role: str | None
    action: str
    entity: str
    entity_id: str | None
    before: str | None
    after: str | None
    reason: str | None
    source: str | None
    prev_hash: str
    hash: str


def _field(value: str | None) -> str:
    return "-" if value is None else f"{len(value)}:{value}"


def audit_material(entry: AuditEntry, prev_hash: str) -> str:
    """The text an entry's hash is taken over (mirrors ``audit_entry_hash`` in SQL)."""
    at = entry.at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    fields = (
        entry.actor,
        entry.actor_role,
        entry.action,
        entry.entity,
        entry.entity_id,
        entry.before,
        entry.after,
        entry.reason,
        entry.source,
    )
    return "|".join([MATERIAL_VERSION, str(entry.seq), at, *map(_field, fields), prev_hash])


def entry_hash(entry: AuditEntry, prev_hash: str) -> str:
    """What ``entry.hash`` must be, given the previous entry's hash."""
    return sha256_hex(audit_material(entry, prev_hash).encode("utf-8"))


@dataclass(frozen=True, slots=True)
class ChainVerdict:
    """The outcome of :func:`verify_chain`."""

    ok: bool
    entries: int  # entries checked (up to and including the first broken one)
    head: str  # hash of the last good entry (GENESIS_HASH for an empty trail)
    broken_seq: int | None = None
    broken_id: int | None = None
    problem: str | None = None

    def summary(self) -> str:
        """One line for people."""
        if self.ok:
            return f"audit trail intact: {self.entries} entries, head {self.head}"
        return (
            f"audit trail BROKEN at entry seq {self.broken_seq} (id {self.broken_id}): "
            f"{self.problem}; the {self.entries - 1} entries before it are intact "
            f"(last good hash {self.head})"
        )


def stored_entries(conn: Conn, *, batch: int = 5000) -> Generator[AuditEntry, None, None]:
    """Every stored entry in chain order, streamed from the database (close it when done:
    ``contextlib.closing``, which also closes the server-side cursor)."""
    with contextlib.closing(iter_audit_rows(conn=conn, batch=batch)) as rows:
        for r in rows:
            yield AuditEntry(**r)


def verify_chain(entries: Iterable[AuditEntry]) -> ChainVerdict:
    """Check every entry, in ``seq`` order, and name the first broken one."""
    prev_hash, expected_seq, checked = GENESIS_HASH, 1, 0
    for entry in entries:
        checked += 1
        problem = None
        if entry.seq != expected_seq:
            problem = (
                f"entry {expected_seq} is missing (deleted?)"
                if entry.seq > expected_seq
                else f"numbered {entry.seq} after {expected_seq - 1}"
            )
        elif entry.prev_hash != prev_hash:
            problem = (
                "its link to the previous entry does not match (an entry was removed or changed)"
            )
        elif entry.hash != entry_hash(entry, prev_hash):
            problem = "its content does not match its hash (it was edited)"
        if problem is not None:
            return ChainVerdict(False, checked, prev_hash, entry.seq, entry.id, problem)
        prev_hash, expected_seq = entry.hash, expected_seq + 1
    return ChainVerdict(True, checked, prev_hash)


@dataclass(frozen=True, slots=True)
class AuditContext:
    """Who acts, in which role, from where and why; recorded with every change they make."""

    actor: str
    actor_role: str | None = None
    source: str | None = None
    reason: str | None = None
    # The secret the caller authenticated with; the database checks it and records its owner.
    credential: str | None = field(default=None, repr=False, compare=False)

    def with_reason(self, reason: str | None) -> AuditContext:
        """The same actor, with a reason for the next change."""
        return AuditContext(self.actor, self.actor_role, self.source, reason, self.credential)


def _set(conn: Any, values: dict[str, str], credential: str | None) -> None:
    # Session-level (is_local false): the web connections run in autocommit, and the query
    # functions open their own transactions. audit_context clears them afterwards. The
    # credential replaces (or, None, forgets) the session's proven principal in the same call.
    params: list[str | None] = [credential]
    for name, value in values.items():
        params += [f"coldchain.{name}", value]
    placeholders = ", ".join("set_config(%s, %s, false)" for _ in values)
    conn.execute(f"SELECT audit_authenticate(%s), {placeholders}", params)


def apply_context(conn: Any, ctx: AuditContext) -> None:
    """Put ``ctx`` on the connection for the audit triggers; a credential that is not live
    raises (psycopg.errors.InvalidAuthorizationSpecification) rather than being recorded as a
    mere claim."""
    _set(conn, {name: getattr(ctx, name) or "" for name in _CONTEXT_FIELDS}, ctx.credential)


def clear_context(conn: Any) -> None:
    """Take the context, and the proven principal, off the connection (before it goes back to
    the pool)."""
    _set(conn, dict.fromkeys(_CONTEXT_FIELDS, ""), None)


@contextlib.contextmanager
def audit_context(conn: Any, ctx: AuditContext) -> Iterator[Any]:
    """``with audit_context(conn, ctx):`` changes made inside are recorded as ``ctx``'s."""
    apply_context(conn, ctx)
    try:
        yield conn
    finally:
        if not conn.closed:
            clear_context(conn)
