"""Track and trace as the API, the dashboard and the CLI use it: find a unit, its passport, the
verdict on a scan, what an excursion exposed and what a lot went through, counterfeit signals,
recalls, EPCIS import and export (docs/TRACE.md).

The reads take the connection and ``today``/``now`` from the caller, like
:mod:`traceability.lookup` which does the work. The two changes take a :class:`Caller`:

- recording a recall needs ``recalls.record`` (the qa role; no API key carries it, so it is
  always a person's decision), and is audited with the recall's reason as the why;
- importing an EPCIS document needs ``admin`` (what ``POST /epcis/events`` has always
  required: it creates units and rewrites packing and custody), and is audited as the caller's.

Recall input rules live here, as the domain's: a GTIN-8/12/13/14 with a correct check digit,
stored as GTIN-14; a lot of 1–20 characters of GS1 set 82 (AI 10), as printed on the pack
(:mod:`coldchain.gs1`); a reason of at most :data:`MAX_REASON_LENGTH` characters, on one line.
A recall is never edited nor deleted (append-only since db/migrations/0007).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from coldchain.errors import PermissionDeniedError
from coldchain.gs1 import check_lot, normalize_gtin
from db.queries.trace import recalls as recall_q
from db.types import Conn, Row
from services.caller import Caller, acting
from services.reports import ReportSettings
from traceability import lookup
from traceability.epcis_export import build_document, gather_shipment, gather_unit
from traceability.epcis_import import ImportResult, import_document, load_document
from traceability.identifiers import UnitKey
from traceability.passport import Passport, passport_json
from traceability.report import passport_text
from traceability.verify import Verification

__all__ = [
    "MAX_REASON_LENGTH",
    "ImportResult",
    "Passport",
    "RecallRequest",
    "Verification",
    "export_shipment",
    "export_unit",
    "exposed",
    "find_unit",
    "import_epcis",
    "list_recalls",
    "lot_impact",
    "normalise_reason",
    "parse_recall",
    "passport",
    "passport_json",
    "passport_text",
    "record_recall",
    "signals",
    "verify",
]

MAX_REASON_LENGTH = 2000


# --- units ------------------------------------------------------------------------------------


def find_unit(conn: Conn, *, identifier: str, today: date) -> tuple[UnitKey, str | None]:
    """The unit ``identifier`` names (any form) and its stored EPC, None when unknown;
    IdentifierError when it is not an SGTIN or SSCC in any form we read."""
    return lookup.find_unit(conn, identifier, today=today)


def passport(
    conn: Conn, rules: ReportSettings, *, identifier: str, now: datetime, gap_factor: float
) -> Passport:
    """The unit's temperature history across every container, shipment and leg, judged by the
    limits the rules engine applies to its shipments (``rules``: the engine's bottom layer and
    rules file, :func:`services.shipments.rule_sources`); NotFoundError, IdentifierError."""
    return lookup.load_passport(
        conn, identifier, today=now.date(), now=now, gap_factor=gap_factor, rules=rules
    )


def verify(conn: Conn, *, identifier: str, today: date) -> Verification:
    """The verdict on a scanned identifier; never raises for a bad scan (``invalid``)."""
    return lookup.verify(conn, identifier, today=today)


def exposed(conn: Conn, *, excursion_id: int) -> dict[str, Any]:
    """Every unit and lot inside the excursion's shipment while its logger was out of range."""
    return lookup.recall(conn, excursion_id)


def lot_impact(conn: Conn, *, gtin: str, lot: str) -> dict[str, Any]:
    """Every excursion the lot's units were exposed to; NotFoundError for a lot with no units."""
    return lookup.lot_impact(conn, gtin, lot)


def signals(conn: Conn, *, now: datetime, days: float = 30.0) -> lookup.Signals:
    """Impossible travel and never/late commissioned units among the last ``days`` days."""
    return lookup.signals(conn, now=now, days=days)


# --- recalls ----------------------------------------------------------------------------------


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


def list_recalls(conn: Conn, *, gtin: str | None = None, lot: str | None = None) -> list[Row]:
    """Every recall (of ``gtin``; covering ``lot``: its own and whole-GTIN ones), oldest first."""
    return recall_q.list_recalls(conn=conn, gtin=gtin, lot=lot)


def record_recall(conn: Conn, caller: Caller, *, gtin: str, lot: str | None, reason: str) -> Row:
    """Record a recall as ``caller``'s (``recalled_by``, and the audit entry's actor, with the
    reason as its why): from then on every unit of the lot verifies as ``recalled``.

    PermissionDeniedError unless the caller may (``recalls.record``); ValueError naming the
    field for a bad GTIN, lot or reason (checked here whatever the edge checked)."""
    if not caller.can("recalls.record"):
        # Caller.require's message names the permission; this one says whose decision it is.
        raise PermissionDeniedError(
            f"{caller.actor} (role {caller.role}) may not record recalls: a person with the qa "
            "role records them"
        )
    recall = parse_recall(gtin=gtin, lot=lot, reason=reason)
    with acting(conn, caller, f"recall: {recall.reason}"), conn.transaction():
        return recall_q.insert_recall(
            conn=conn,
            gtin=recall.gtin,
            lot=recall.lot,
            reason=recall.reason,
            recalled_by=caller.actor,
        )


# --- EPCIS ------------------------------------------------------------------------------------


def import_epcis(
    conn: Conn, caller: Caller, *, document: bytes | str, source: str, today: date
) -> ImportResult:
    """Import one EPCIS 2.0 document (JSON or JSON-LD text) as ``caller``: stored whole in one
    transaction, or EPCISRejected with every reason and nothing stored; importing the same
    events again changes nothing. ``source`` names where the document came from (a file name,
    ``api``); ``today`` fixes the century of YYMMDD dates. PermissionDeniedError unless admin."""
    caller.require("admin")
    parsed = load_document(document)
    with acting(conn, caller, f"EPCIS import: {source}"):
        return import_document(conn, parsed, source=source, today=today)


def export_shipment(
    conn: Conn, *, key: str, now: datetime, interval_min: int = 60
) -> dict[str, Any]:
    """A shipment's (id or reference) packing, custody and per-interval sensor reports as an
    EPCIS 2.0 JSON-LD document; NotFoundError."""
    data = gather_shipment(conn, key, bucket_s=interval_min * 60)
    return build_document(data, now=now)


def export_unit(
    conn: Conn, *, identifier: str, now: datetime, interval_min: int = 60
) -> dict[str, Any]:
    """A unit's (SGTIN or SSCC, any form) EPCIS 2.0 JSON-LD document; NotFoundError,
    IdentifierError."""
    data = gather_unit(conn, identifier, today=now.date(), bucket_s=interval_min * 60)
    return build_document(data, now=now)
