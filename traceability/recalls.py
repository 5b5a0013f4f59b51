"""Product recalls: every unit of a GTIN's lot (or of every lot of the GTIN) must not be sold.

A recall is a row of ``recalls``, recorded by the authenticated person, never edited nor
deleted (append-only since db/migrations/0007; audited since 0006, with the recall's reason as
the entry's why). Recording one is a quality decision: the ``recalls.record`` permission, which
only the ``qa`` role has (:mod:`security.roles`). From then on verification reports each unit
of the lot as ``recalled`` (:func:`traceability.lookup.verify`).

The API validates with its models and the CLI with :func:`parse_recall`, both with GS1's rules
(:mod:`coldchain.gs1`): a GTIN-8/12/13/14 with a correct check digit, stored as GTIN-14, and a
lot of 1–20 characters of GS1 set 82 (AI 10), as printed on the pack.
"""

from __future__ import annotations

from dataclasses import dataclass

from coldchain.gs1 import check_lot, normalize_gtin
from db.queries.trace import recalls as recall_q
from db.types import Conn, Row
from security.accounts import Principal
from security.audit import audit_context
from security.errors import PermissionDeniedError

__all__ = [
    "MAX_REASON_LENGTH",
    "RecallRequest",
    "normalise_reason",
    "parse_recall",
    "record_recall",
]

MAX_REASON_LENGTH = 2000


@dataclass(frozen=True, slots=True)
class RecallRequest:
    """A validated recall: ``gtin`` as GTIN-14, ``lot`` None for every lot."""

    gtin: str
    lot: str | None
    reason: str


def normalise_reason(text: str) -> str:
    """The reason on one line, runs of white space as one space (as dispositions store it)."""
    return " ".join(text.split())


def parse_recall(*, gtin: str, lot: str | None, reason: str) -> RecallRequest:
    """Validate a recall as typed; ValueError (IdentifierError for the GTIN or the lot) naming
    what is wrong."""
    reason = normalise_reason(reason)
    if not reason:
        raise ValueError("a recall needs a reason")
    if len(reason) > MAX_REASON_LENGTH:
        raise ValueError(
            f"the reason is {len(reason)} characters long; at most {MAX_REASON_LENGTH}"
        )
    return RecallRequest(
        gtin=normalize_gtin(gtin.strip()),
        lot=None if lot is None else check_lot(lot),
        reason=reason,
    )


def record_recall(
    conn: Conn, recall: RecallRequest, *, principal: Principal, source: str | None
) -> Row:
    """Record ``recall`` as ``principal``'s (``recalled_by``, and the audit entry's actor, with
    the reason as its why); PermissionDeniedError unless they are a person allowed to."""
    if principal.kind != "user" or not principal.can("recalls.record"):
        raise PermissionDeniedError(
            f"{principal.actor} (role {principal.role}) may not record recalls: a person with "
            "the qa role records them"
        )
    ctx = principal.context(source, reason=f"recall: {recall.reason}")
    with audit_context(conn, ctx), conn.transaction():
        return recall_q.insert_recall(
            conn=conn,
            gtin=recall.gtin,
            lot=recall.lot,
            reason=recall.reason,
            recalled_by=principal.actor,
        )
