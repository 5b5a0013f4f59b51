"""The edge of the report: load its inputs, build it live or from a frozen snapshot, and sign a
disposition on it.

Signing, in one transaction: the signer's password is checked again (the second component of the
signature), the report is rebuilt *as of* the instant the signer viewed it and its content hash
must equal the hash they saw (else :class:`ReportChangedError`: the data changed, review again);
its evidence is frozen in ``report_snapshots``; the record in force for the same shipment/lot, if
any, is superseded by the new one (never edited); the signature's hash binds signer, time,
meaning, reason and the report hash. The audit trigger records the new row with the signer as
actor and the reason as why.

Guarded by the shipment's state (:func:`_disposition_move`): nothing is signed while the
shipment is planned or in transit, and a release waits until every excursion has ended. A
whole-shipment disposition moves the shipment to released / quarantined / rejected / returned
(:mod:`coldchain.lifecycle`), with a timeline entry, in the same transaction.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from alerts.in_force import load_rules
from alerts.rules import (
    RuleSet,
    RulesFile,
    StoredRules,
    load_rules_file,
    settings_rules,
)
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
from db.queries import products as product_q
from db.queries import reports as q
from db.types import Conn, Row
from reports.assemble import JsonDict, LoggerInput, ReportInputs, assemble, evidence_hash
from reports.render import disposition_records, document
from security import accounts
from security.audit import audit_context
from security.errors import PermissionDeniedError
from security.ratelimit import LoginLimiter
from security.signatures import MEANINGS, Decision, signature_hash, signature_payload

log = logging.getLogger(__name__)

#: How far ahead of the server's clock an ``as_of`` may be (clients' clocks drift).
MAX_AS_OF_SKEW = timedelta(seconds=5)


@dataclass(frozen=True)
class ReportSettings:
    """What the web process knows about rules besides the database (as the rules engine does)."""

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


def stored_rules(row: Row | None) -> StoredRules | None:
    """A ``rule_definitions`` row (or None) as the stored layer :func:`rule_layers` takes."""
    return None if row is None else StoredRules(row["version"], row["definition"])


def _rules_in_force(conn: Conn, cfg: ReportSettings, shipment_id: int, as_of: datetime) -> JsonDict:
    """The merged rules of the shipment as of ``as_of``, as the engine stacks them
    (:mod:`alerts.in_force`), as JSON: a section per rule in force (else None) and the sources."""
    loaded = load_rules(conn, cfg, shipment_ids=[shipment_id], as_of=as_of)
    out: JsonDict = {}
    if not loaded:
        return out
    rules = loaded[0][1]
    for section in ("temperature", "budget", "mkt", "humidity", "offline", "battery", "forecast"):
        rule = rules.section(section)
        out[section] = None if rule is None else rule.model_dump(mode="json")
    out["sources"] = list(rules.sources)
    return out


def load_inputs(
    conn: Conn, *, shipment_id: int, as_of: datetime, cfg: ReportSettings
) -> ReportInputs:
    """What the database says about the shipment as of ``as_of``; NotFoundError if none."""
    ship = q.shipment(conn=conn, shipment_id=shipment_id, as_of=as_of)
    if ship is None:
        raise NotFoundError(f"shipment {shipment_id} not found")
    product = (
        product_q.find_product(conn=conn, gtin=ship["product_gtin"])
        if ship["product_gtin"]
        else None
    )
    loggers = [
        LoggerInput(
            device_id=r["device_id"],
            model=r["model"],
            calibration_cert=r["calibration_cert"],
            calibration_due=r["calibration_due"],
            interval_s=int(r["interval_s"]),
            assigned_from=r["assigned_from"],
            assigned_to=r["assigned_to"],
            readings=tuple(
                q.readings(
                    conn=conn,
                    device_id=r["device_id"],
                    lower=r["assigned_from"],
                    upper=r["assigned_to"],
                    as_of=as_of,
                )
            ),
        )
        for r in q.loggers(conn=conn, shipment_id=shipment_id, as_of=as_of)
    ]
    return ReportInputs(
        as_of=as_of,
        shipment=ship,
        product=product,
        legs=q.legs(conn=conn, shipment_id=shipment_id),
        loggers=loggers,
        units=q.units(conn=conn, shipment_id=shipment_id),
        excursions=q.excursions(conn=conn, shipment_id=shipment_id, as_of=as_of),
        alerts=q.alerts(conn=conn, shipment_id=shipment_id, as_of=as_of),
        rules=_rules_in_force(conn, cfg, shipment_id, as_of),
        gap_factor=cfg.gap_factor,
    )


def live_evidence(
    conn: Conn, *, shipment_id: int, as_of: datetime, cfg: ReportSettings
) -> tuple[dict[str, Any], str]:
    """The report's evidence as of ``as_of``, and its content hash."""
    evidence = assemble(load_inputs(conn, shipment_id=shipment_id, as_of=as_of, cfg=cfg))
    return evidence, evidence_hash(evidence)


def report_document(
    conn: Conn,
    *,
    shipment_id: int,
    as_of: datetime | None,
    cfg: ReportSettings,
    disposition_id: int | None = None,
    now: datetime,
) -> dict[str, Any]:
    """The whole report.

    Live: the evidence as of ``as_of`` (default ``now``) with every disposition of the shipment.
    With ``disposition_id``: the signed record, reproducible byte for byte for ever: the
    evidence frozen when that disposition was signed, with the dispositions signed on the same
    evidence up to and including it.
    """
    if disposition_id is not None:
        rows = q.dispositions(conn=conn, shipment_id=shipment_id)
        signed = next((r for r in rows if r["disposition_id"] == disposition_id), None)
        if signed is None:
            raise NotFoundError(f"shipment {shipment_id} has no disposition {disposition_id}")
        snap = q.snapshot(conn=conn, shipment_id=shipment_id, snapshot_id=signed["snapshot_id"])
        assert snap is not None  # a foreign key
        same = [
            r
            for r in rows
            if r["snapshot_id"] == signed["snapshot_id"] and r["disposition_id"] <= disposition_id
        ]
        return document(
            json.loads(snap["evidence"]),
            snap["content_hash"],
            disposition_records(same),
            snapshot_id=int(snap["snapshot_id"]),
        )
    when = check_as_of(as_of, now=now)
    evidence, digest = live_evidence(conn, shipment_id=shipment_id, as_of=when, cfg=cfg)
    rows = q.dispositions(conn=conn, shipment_id=shipment_id)
    return document(evidence, digest, disposition_records(rows))


def check_as_of(as_of: datetime | None, *, now: datetime) -> datetime:
    """``as_of`` (default ``now``, whole seconds), refused when in the future."""
    if as_of is None:
        return now.replace(microsecond=0)
    if as_of.tzinfo is None:
        raise InvalidDispositionError("as_of needs a time zone")
    if as_of > now + MAX_AS_OF_SKEW:
        raise InvalidDispositionError(
            f"as_of {as_of.isoformat()} is in the future (server time {now.isoformat()})"
        )
    return as_of.astimezone(UTC)


def lots_of(conn: Conn, shipment_id: int) -> list[str]:
    """The lots on board a shipment (the scopes a disposition may name besides the whole)."""
    return sorted({u["lot"] for u in q.units(conn=conn, shipment_id=shipment_id) if u["lot"]})


def sign_disposition(
    conn: Conn,
    *,
    principal: accounts.Principal,
    shipment_id: int,
    lot: str | None,
    decision: Decision,
    reason: str,
    as_of: datetime,
    report_hash: str,
    password: str,
    limiter: LoginLimiter,
    client: str | None,
    cfg: ReportSettings,
    now: datetime,
) -> Row:
    """Sign a disposition on the report the signer saw (see the module docstring)."""
    if not principal.can("dispositions.sign"):
        raise PermissionDeniedError(f"role {principal.role!r} may not sign dispositions")
    signer = accounts.check_password(
        conn, principal, password=password, limiter=limiter, client=client
    )
    reason = " ".join(reason.split())
    if not reason:
        raise InvalidDispositionError("a disposition needs a reason")
    as_of = check_as_of(as_of, now=now)
    if lot is not None and lot not in lots_of(conn, shipment_id):
        raise InvalidDispositionError(f"lot {lot!r} is not on board shipment {shipment_id}")
    ctx = principal.context(client, reason=f"{decision}: {reason}")
    try:
        with audit_context(conn, ctx), conn.transaction():
            move = _disposition_move(conn, shipment_id=shipment_id, lot=lot, decision=decision)
            evidence, digest = live_evidence(conn, shipment_id=shipment_id, as_of=as_of, cfg=cfg)
            if digest != report_hash:
                raise ReportChangedError(
                    f"the report as of {as_of.isoformat()} now has content hash {digest}, not "
                    f"{report_hash}: its data changed since it was opened; review it again"
                )
            snap = q.save_snapshot(
                conn=conn,
                shipment_id=shipment_id,
                as_of=as_of,
                content_hash=digest,
                evidence=canonical_json(evidence).decode("utf-8"),
                created_by=principal.actor,
            )
            current = q.current_disposition(conn=conn, shipment_id=shipment_id, lot=lot)
            supersedes = None if current is None else int(current["disposition_id"])
            signed_at = now
            meaning = MEANINGS[decision]
            payload = signature_payload(
                shipment_id=shipment_id,
                shipment_reference=evidence["shipment"]["reference"],
                lot=lot,
                decision=decision,
                reason=reason,
                meaning=meaning,
                signer_user_id=int(signer["user_id"]),
                signer_username=signer["username"],
                signer_name=signer["full_name"],
                signer_role=signer["role"],
                signed_at=signed_at,
                report_hash=digest,
                supersedes=supersedes,
            )
            signed = q.insert_disposition(
                conn=conn,
                values={
                    "shipment_id": shipment_id,
                    "lot": lot,
                    "decision": decision,
                    "reason": reason,
                    "meaning": meaning,
                    "signer_user_id": signer["user_id"],
                    "signer_username": signer["username"],
                    "signer_name": signer["full_name"],
                    "signer_role": signer["role"],
                    "signed_at": signed_at,
                    "snapshot_id": snap["snapshot_id"],
                    "report_hash": digest,
                    "supersedes": supersedes,
                    "signature_hash": signature_hash(payload),
                },
            )
            if move is not None:  # the shipment's state follows the record in force
                lifecycle_q.set_state(conn=conn, shipment_id=shipment_id, event=move.event,
                                      from_state=move.before, to_state=move.after, at=now)  # fmt: skip
                lifecycle_q.add_event(
                    conn=conn,
                    shipment_id=shipment_id,
                    at=now,
                    event=move.event,
                    actor=principal.actor,
                    reason=reason,
                    from_state=move.before,
                    to_state=move.after,
                    data={"disposition_id": signed["disposition_id"]},
                )
            return signed
    except psycopg.errors.UniqueViolation:
        raise SignatureConflictError(
            "another disposition of this shipment/lot was signed at the same moment; reload"
        ) from None


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


def verify_signature(row: Row, shipment_reference: str) -> bool:
    """Whether a stored disposition still matches its signature hash."""
    payload = signature_payload(
        shipment_id=row["shipment_id"],
        shipment_reference=shipment_reference,
        lot=row["lot"],
        decision=row["decision"],
        reason=row["reason"],
        meaning=row["meaning"],
        signer_user_id=row["signer_user_id"],
        signer_username=row["signer_username"],
        signer_name=row["signer_name"],
        signer_role=row["signer_role"],
        signed_at=row["signed_at"],
        report_hash=row["report_hash"],
        supersedes=row["supersedes"],
    )
    return signature_hash(payload) == row["signature_hash"]
