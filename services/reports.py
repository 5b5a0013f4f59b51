"""The excursion report of a shipment, its frozen snapshots, the QA queue, and the signed
dispositions: what the API (``api/routers/reports.py``, ``api/routers/dispositions.py``) and the
QA page (``dashboard/pages/qa.py``) both do, defined once.

The report itself is built by :mod:`reports` (evidence from the database as of an instant, its
content hash, its renderers); here it is found by the shipment's key, rendered as a file with
its name, and signed.

Signing (:func:`sign`), in one transaction: the caller must hold ``dispositions.sign``; their
password is checked again (the second component of the signature); the report is rebuilt *as of*
the instant the signer viewed it and its content hash must equal the hash they saw (else
:class:`~coldchain.errors.ReportChangedError`: the data changed, review again); its evidence is
frozen in ``report_snapshots``; the record in force for the same shipment/lot, if any, is
superseded by the new one (never edited); the signature's hash binds signer, time, meaning,
reason and the report hash. The audit trigger records the new row with the signer as actor and
the decision and reason as why. The storing (snapshot, record, state move, timeline entry) is
:func:`record_disposition`, which an automatic release under a QA policy
(:mod:`services.release_policies`) calls too: one definition of a disposition.

Guarded by the shipment's state (:func:`_disposition_move`): nothing is signed while the
shipment is planned or in transit, and a release waits until every excursion has ended. A
whole-shipment disposition moves the shipment to released / quarantined / rejected / returned
(:mod:`coldchain.lifecycle`), with a timeline entry, in the same transaction.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, get_args

import psycopg

from alerts.layers import settings_rules
from alerts.rules import RuleSet, RulesFile, load_rules_file
from coldchain import lifecycle
from coldchain.canonical import canonical_json
from coldchain.errors import (
    ConfigError,
    InvalidDispositionError,
    NotFoundError,
    ReportChangedError,
    ShipmentStateError,
    SignatureConflictError,
)
from coldchain.settings import Settings
from db.queries import lifecycle as lifecycle_q
from db.queries import reports as report_q
from db.queries import shipments as shipment_q
from db.types import Conn, Row
from reports import csv_files, queue, render
from reports.service import check_as_of, live_evidence, lots_of, report_document
from security import accounts
from security.ratelimit import LoginLimiter
from security.signatures import MEANINGS, Decision, signature_hash, signature_payload
from services.caller import Caller, acting

log = logging.getLogger(__name__)

#: The report's files: JSON (everything), CSV of the readings (one row per reading), CSV of the
#: summary (one row per figure), PDF (:mod:`reports.csv_files` for the two CSV files).
Format = Literal["json", "csv", "summary.csv", "pdf"]
FORMATS: tuple[Format, ...] = get_args(Format)
MEDIA_TYPES: dict[Format, str] = {
    "json": "application/json",
    "csv": "text/csv; charset=utf-8",
    "summary.csv": "text/csv; charset=utf-8",
    "pdf": "application/pdf",
}
_RENDERERS = {
    "json": render.render_json,
    "csv": csv_files.render_readings_csv,
    "summary.csv": csv_files.render_summary_csv,
    "pdf": render.render_pdf,
}


@dataclass(frozen=True)
class ReportSettings:
    """What the web process knows about rules besides the database (as the rules engine does):
    the :class:`alerts.in_force.RuleSources` of reports, rules and limits, and the gap factor."""

    gap_factor: float
    base_rules: RuleSet
    rules_file: RulesFile
    rules_file_name: str

    @classmethod
    def from_settings(cls, settings: Settings) -> ReportSettings:
        """The engine's bottom layer and rules file; a rules file that does not load is left
        out of reports (and logged), as the engine leaves out a bad layer."""
        a = settings.alerts
        rules_file = RulesFile()
        if a.rules_file is not None:
            try:
                rules_file = load_rules_file(a.rules_file)
            except (OSError, ConfigError) as exc:
                log.error("reports: rules file %s left out: %s", a.rules_file, exc)
        return cls(
            gap_factor=a.gap_factor,
            base_rules=settings_rules(
                offline_factor=a.offline_factor,
                battery_threshold=a.battery_threshold,
                clear_delay_s=a.clear_delay_s,
            ),
            rules_file=rules_file,
            rules_file_name=str(a.rules_file) if a.rules_file else "rules file",
        )


@dataclass(frozen=True, slots=True)
class ReportFile:
    """A report rendered for download: its bytes, media type, file name and content hash."""

    content: bytes
    media_type: str
    filename: str
    content_hash: str


@dataclass(frozen=True, slots=True)
class Dispositions:
    """Every disposition of a shipment (records, oldest first) and the lots a new one may name."""

    lots: list[str]
    records: list[dict[str, Any]]


# ---- reads ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class QaIndex:
    """The QA page's index: the shipments needing a decision, riskiest first
    (:mod:`reports.queue`), then the others, those needing attention first (the fleet's order).
    Each row is the fleet's (lane, product, status, ``condition``: the same read as the fleet
    page, so both say the same) with the queue's figures: excursions, time out of range, peak,
    worst severity, arrival verdict (``has_exception``, ``max_budget_share``, ``verdicts``) and the
    disposition in force (``decision``, ``lot_decisions``); and as the queue judges them
    (:mod:`reports.queue`): ``risk_severity``, ``peak_c``, ``verdict`` (exception, conforming or
    not judged)."""

    queue: list[Row]
    rest: list[Row]


def qa_index(conn: Conn, *, offline_factor: float, limit: int = 500) -> QaIndex:
    """The shipments a QA reviewer picks from (see :class:`QaIndex`)."""
    waiting = {
        r["shipment_id"]: r
        for state in queue.QUEUE_STATES
        for r in shipment_q.list_shipments(
            conn=conn, offline_factor=offline_factor, status=state, limit=limit
        ).items
    }
    verdicts = {
        r["shipment_id"]: r
        for r in lifecycle_q.qa_queue(conn=conn, states=list(queue.QUEUE_STATES), limit=limit)
    }
    others = [
        r
        for r in shipment_q.list_shipments(
            conn=conn, offline_factor=offline_factor, limit=limit
        ).items
        if r["shipment_id"] not in waiting
    ]
    ids = [*waiting, *(r["shipment_id"] for r in others)]
    figures = report_q.queue_figures(conn=conn, shipment_ids=ids)

    def merged(row: Row) -> Row:
        verdict = verdicts.get(row["shipment_id"], {})
        return {
            **row,
            **figures[row["shipment_id"]],
            "arrived_at": verdict.get("arrived_at"),
            "has_exception": bool(verdict.get("has_exception")),
            "max_budget_share": verdict.get("max_budget_share"),
            "verdicts": verdict.get("verdicts") or [],
        }

    def judged(row: Row) -> Row:
        return {
            **row,
            "risk_severity": queue.risk_severity(row),
            "peak_c": queue.peak_c(row),
            "verdict": queue.verdict_of(row),
        }

    candidates = [judged(merged(r)) for r in waiting.values()]
    ordered = queue.exceptions_first(candidates)
    chosen = {r["shipment_id"] for r in ordered}
    rest = [r for r in candidates if r["shipment_id"] not in chosen]
    rest += [judged(merged(r)) for r in others]
    return QaIndex(queue=[dict(r) for r in ordered], rest=rest)


def report(
    conn: Conn,
    cfg: ReportSettings,
    *,
    key: str,
    as_of: datetime | None,
    now: datetime,
    disposition_id: int | None = None,
) -> dict[str, Any]:
    """The report of the shipment ``key`` (id or reference): live as of ``as_of`` (default
    ``now``), or with ``disposition_id`` the record as signed (see
    :func:`reports.service.report_document`). NotFoundError for an unknown shipment or
    disposition, InvalidDispositionError for an ``as_of`` in the future."""
    shipment_id = shipment_q.find_shipment_id(conn=conn, key=key)
    return report_document(
        conn,
        shipment_id=shipment_id,
        as_of=as_of,
        cfg=cfg,
        disposition_id=disposition_id,
        now=now,
    )


def report_file(
    conn: Conn,
    cfg: ReportSettings,
    *,
    key: str,
    fmt: Format,
    as_of: datetime | None,
    now: datetime,
    disposition_id: int | None = None,
) -> ReportFile:
    """:func:`report` rendered as ``fmt``, named after the shipment's reference (and the
    disposition, for a signed record)."""
    doc = report(conn, cfg, key=key, as_of=as_of, now=now, disposition_id=disposition_id)
    reference = doc["evidence"]["shipment"]["reference"]
    # A reference is free text: keep the file name portable and short.
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in reference)[:80]
    suffix = f"-signed-{disposition_id}" if disposition_id is not None else ""
    return ReportFile(
        content=_RENDERERS[fmt](doc),
        media_type=MEDIA_TYPES[fmt],
        filename=f"report-{safe}{suffix}.{fmt}",
        content_hash=doc["content_hash"],
    )


def snapshots(conn: Conn, *, key: str) -> list[Row]:
    """The evidence frozen for the shipment's signatures (no evidence body), oldest first."""
    shipment_id = shipment_q.find_shipment_id(conn=conn, key=key)
    return report_q.list_snapshots(conn=conn, shipment_id=shipment_id)


def dispositions(conn: Conn, *, key: str) -> Dispositions:
    """Signed dispositions, superseded ones included (marked), and the shipment's lots."""
    shipment_id = shipment_q.find_shipment_id(conn=conn, key=key)
    rows = report_q.dispositions(conn=conn, shipment_id=shipment_id)
    return Dispositions(lots_of(conn, shipment_id), render.disposition_records(rows))


# ---- signing --------------------------------------------------------------------------------


def sign(
    conn: Conn,
    caller: Caller,
    cfg: ReportSettings,
    *,
    key: str,
    lot: str | None,
    decision: Decision,
    reason: str,
    as_of: datetime,
    report_hash: str,
    password: str,
    limiter: LoginLimiter,
    now: datetime,
) -> dict[str, Any]:
    """Sign a disposition on the report the signer saw (see the module docstring); the signed
    record as :func:`reports.render.disposition_record` gives it."""
    caller.require("dispositions.sign")
    shipment_id = shipment_q.find_shipment_id(conn=conn, key=key)
    # Only people hold dispositions.sign (an API key cannot have the qa role, see
    # security.roles.API_KEY_ROLES, and the console is admin), so the actor is a user name.
    signer = accounts.authenticate(
        conn, username=caller.actor, password=password, limiter=limiter, client=caller.source
    )
    reason = " ".join(reason.split())
    if not reason:
        raise InvalidDispositionError("a disposition needs a reason")
    as_of = check_as_of(as_of, now=now)
    if lot is not None and lot not in lots_of(conn, shipment_id):
        raise InvalidDispositionError(f"lot {lot!r} is not on board shipment {shipment_id}")
    try:
        with acting(conn, caller, f"{decision}: {reason}"), conn.transaction():
            move = _disposition_move(conn, shipment_id=shipment_id, lot=lot, decision=decision)
            evidence, digest = live_evidence(conn, shipment_id=shipment_id, as_of=as_of, cfg=cfg)
            if digest != report_hash:
                raise ReportChangedError(
                    f"the report as of {as_of.isoformat()} now has content hash {digest}, not "
                    f"{report_hash}: its data changed since it was opened; review it again"
                )
            row = record_disposition(
                conn,
                shipment_id=shipment_id,
                lot=lot,
                decision=decision,
                reason=reason,
                meaning=MEANINGS[decision],
                signer=Signer(
                    int(signer["user_id"]),
                    signer["username"],
                    signer["full_name"],
                    signer["role"],
                ),
                move=move,
                evidence=evidence,
                digest=digest,
                as_of=as_of,
                now=now,
                actor=caller.actor,
            )
    except psycopg.errors.UniqueViolation:
        raise SignatureConflictError(
            "another disposition of this shipment/lot was signed at the same moment; reload"
        ) from None
    return render.disposition_record(row)


@dataclass(frozen=True, slots=True)
class Signer:
    """Whom a disposition's signature names: the person who signed it, or, for an automatic
    release, the QA person who signed the policy it rests on."""

    user_id: int
    username: str
    name: str
    role: str


def record_disposition(
    conn: Conn,
    *,
    shipment_id: int,
    lot: str | None,
    decision: Decision,
    reason: str,
    meaning: str,
    signer: Signer,
    move: lifecycle.Move | None,
    evidence: dict[str, Any],
    digest: str,
    as_of: datetime,
    now: datetime,
    actor: str,
    policy: Row | None = None,
    event_data: dict[str, Any] | None = None,
) -> Row:
    """Store a disposition whose guard (:func:`_disposition_move`) already passed, inside the
    caller's transaction and audit context: the evidence frozen as of ``as_of``, the record in
    force superseded, the signed record inserted (with ``policy``, an automatic release naming
    it: its id and signature hash enter the signature), and the shipment's ``move`` with its
    timeline entry (``event_data`` added to it). Shared by :func:`sign` and
    :func:`services.release_policies.auto_release`, so a person's release and an automatic one
    are the same record; the stored row."""
    snap = report_q.save_snapshot(
        conn=conn,
        shipment_id=shipment_id,
        as_of=as_of,
        content_hash=digest,
        evidence=canonical_json(evidence).decode("utf-8"),
        created_by=actor,
    )
    current = report_q.current_disposition(conn=conn, shipment_id=shipment_id, lot=lot)
    supersedes = None if current is None else int(current["disposition_id"])
    policy_ref = (
        None
        if policy is None
        else {"policy_id": int(policy["policy_id"]), "signature_hash": policy["signature_hash"]}
    )
    payload = signature_payload(
        shipment_id=shipment_id,
        shipment_reference=evidence["shipment"]["reference"],
        lot=lot,
        decision=decision,
        reason=reason,
        meaning=meaning,
        signer_user_id=signer.user_id,
        signer_username=signer.username,
        signer_name=signer.name,
        signer_role=signer.role,
        signed_at=now,
        report_hash=digest,
        supersedes=supersedes,
        policy=policy_ref,
    )
    row = report_q.insert_disposition(
        conn=conn,
        values={
            "shipment_id": shipment_id,
            "lot": lot,
            "decision": decision,
            "reason": reason,
            "meaning": meaning,
            "signer_user_id": signer.user_id,
            "signer_username": signer.username,
            "signer_name": signer.name,
            "signer_role": signer.role,
            "signed_at": now,
            "snapshot_id": snap["snapshot_id"],
            "report_hash": digest,
            "supersedes": supersedes,
            "signature_hash": signature_hash(payload),
            # None: a person's signature; else the policy an automatic release rests on.
            "policy_id": None if policy_ref is None else policy_ref["policy_id"],
        },
    )
    if move is not None:  # the shipment's state follows the record in force
        lifecycle_q.set_state(
            conn=conn,
            shipment_id=shipment_id,
            event=move.event,
            from_state=move.before,
            to_state=move.after,
            at=now,
        )
        lifecycle_q.add_event(
            conn=conn,
            shipment_id=shipment_id,
            at=now,
            event=move.event,
            actor=actor,
            reason=reason,
            from_state=move.before,
            to_state=move.after,
            data={"disposition_id": row["disposition_id"], **(event_data or {})},
        )
    return row


def _disposition_move(
    conn: Conn, *, shipment_id: int, lot: str | None, decision: Decision
) -> lifecycle.Move | None:
    """The guard of a signature (the shipment locked until it is stored): no disposition while
    the shipment is planned or in transit, no release while an excursion is still open; and the
    state move of a whole-shipment disposition (:mod:`coldchain.lifecycle`; a lot's disposition
    leaves the shipment's state alone)."""
    current = lifecycle_q.lock_state(conn=conn, shipment_id=shipment_id)
    if current is None:
        raise NotFoundError(f"shipment {shipment_id} not found")
    state = current["status"]
    if state not in lifecycle.DISPOSABLE:
        raise ShipmentStateError(
            f"shipment {current['reference']} is {state}: a {decision} can be signed only once "
            "it has arrived (the goods are not back under control yet)"
        )
    if decision == "release":
        still_open = lifecycle_q.open_excursions(conn=conn, shipment_id=shipment_id)
        if still_open:
            first = still_open[0]
            raise ShipmentStateError(
                f"shipment {current['reference']} has {len(still_open)} excursion(s) still open "
                f"(the first: {first['direction']} on logger {first['device_id']} since "
                f"{first['start_ts'].isoformat()}): a release waits until they have ended"
            )
    return None if lot is not None else lifecycle.transition(state, decision)
