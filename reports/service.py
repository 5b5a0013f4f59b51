"""The edge of the report: load its inputs as of an instant and build it, live or from the
snapshot frozen when a disposition was signed (signing itself is :func:`services.reports.sign`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from alerts.in_force import RuleSources, load_rules
from coldchain.errors import InvalidDispositionError, NotFoundError
from db.queries import products as product_q
from db.queries import reports as q
from db.types import Conn, Row
from reports.assemble import JsonDict, LoggerInput, ReportInputs, assemble, evidence_hash
from reports.render import disposition_records, document
from security.signatures import signature_hash, signature_payload

#: How far ahead of the server's clock an ``as_of`` may be (clients' clocks drift).
MAX_AS_OF_SKEW = timedelta(seconds=5)


class ReportSources(RuleSources, Protocol):
    """What a report needs besides the database: the rules engine's sources of rules
    (:class:`alerts.in_force.RuleSources`) and the gap factor (``services.reports.ReportSettings``
    is the web process's)."""

    @property
    def gap_factor(self) -> float: ...


def _rules_in_force(conn: Conn, cfg: ReportSources, shipment_id: int, as_of: datetime) -> JsonDict:
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
    conn: Conn, *, shipment_id: int, as_of: datetime, cfg: ReportSources
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
    loggers = []
    for r in q.loggers(conn=conn, shipment_id=shipment_id, as_of=as_of):
        rows = q.reading_details(
            conn=conn,
            device_id=r["device_id"],
            lower=r["assigned_from"],
            upper=r["assigned_to"],
            as_of=as_of,
        )
        loggers.append(
            LoggerInput(
                device_id=r["device_id"],
                model=r["model"],
                calibration_cert=r["calibration_cert"],
                calibration_due=r["calibration_due"],
                interval_s=int(r["interval_s"]),
                assigned_from=r["assigned_from"],
                assigned_to=r["assigned_to"],
                readings=tuple((ts, temp_c) for ts, temp_c, *_ in rows),
                details={ts: (rh, lat, lon) for ts, _t, rh, lat, lon in rows},
            )
        )
    return ReportInputs(
        as_of=as_of,
        shipment=ship,
        product=product,
        legs=q.legs(conn=conn, shipment_id=shipment_id),
        loggers=loggers,
        units=q.units(conn=conn, shipment_id=shipment_id),
        excursions=q.excursions(conn=conn, shipment_id=shipment_id, as_of=as_of),
        alerts=q.alerts(conn=conn, shipment_id=shipment_id, as_of=as_of),
        verdicts=q.verdicts(conn=conn, shipment_id=shipment_id, as_of=as_of),
        rules=_rules_in_force(conn, cfg, shipment_id, as_of),
        gap_factor=cfg.gap_factor,
    )


def live_evidence(
    conn: Conn, *, shipment_id: int, as_of: datetime, cfg: ReportSources
) -> tuple[dict[str, Any], str]:
    """The report's evidence as of ``as_of``, and its content hash."""
    evidence = assemble(load_inputs(conn, shipment_id=shipment_id, as_of=as_of, cfg=cfg))
    return evidence, evidence_hash(evidence)


def report_document(
    conn: Conn,
    *,
    shipment_id: int,
    as_of: datetime | None,
    cfg: ReportSources,
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


def verify_signature(
    row: Row, shipment_reference: str, policy: Mapping[str, Any] | None = None
) -> bool:
    """Whether a stored disposition still matches its signature hash (an automatic release:
    with ``policy``, its policy's ``policy_id`` and ``signature_hash``)."""
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
        policy=policy,
    )
    stored: str = row["signature_hash"]
    return signature_hash(payload) == stored
