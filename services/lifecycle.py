"""A shipment's life: start, arrive (with the verdict), cancel; the timeline; the QA queue.

Each transition runs in one transaction: the shipment is locked, :func:`coldchain.lifecycle.transition`
says whether the move is allowed (else :class:`~coldchain.errors.ShipmentStateError`), the state
changes (its version with it) and a timeline entry names the caller and why; the audit trigger
records the row change with the same who and why. QA's dispositions move the state in
:func:`services.reports.sign`, under the same rules.

The verdict at arrival
----------------------
``arrive`` moves the shipment to ``arrived``, judges every product on board (its items, and the
shipment's own product) with :func:`coldchain.thermal.stability.evaluate`, stores one
``shipment_verdicts`` row per product and moves the shipment to ``under_review`` (the ``review``
transition), all in the same transaction. The inputs:

* the readings of every logger assigned to the shipment, within its assignments, measured and
  received by the arrival (the report's own query, :func:`db.queries.reports.readings`); readings
  of several loggers are judged as one series, ordered by time (the report judges each logger
  apart: a product is in one place, and any logger's reading is a reading of its conditions);
* the product's stability profile: the ``product_profiles`` version in force when the shipment
  started (its number is stored with the verdict); without one, the product row's storage range
  and ``stability_budget_s`` (one allowance for any temperature outside the range), freeze limit
  and MKT limit, and the stored ``profile_version`` is NULL;
* the data-gap threshold: ``alerts.gap_factor`` × the longest logging interval of its loggers;
* the excursions still open (not ended, not superseded), each a reason of its own.

The QA queue: the shipments under review (and quarantined ones: held, still QA's), the riskiest
first: any exception before none, then the largest share of a band budget used by any product,
then the number of reasons, then the oldest arrival (:data:`db.queries.lifecycle.QA_QUEUE`).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from coldchain import lifecycle
from coldchain.errors import (
    ColdchainError,
    InvalidRecordError,
    NotFoundError,
    ShipmentStateError,
)
from coldchain.thermal.profile_doc import profile_from_doc
from coldchain.thermal.series import Point
from coldchain.thermal.stability import Allowance, StabilityProfile, Verdict, evaluate
from db.queries import bookings as booking_q
from db.queries import lifecycle as q
from db.queries import reports as report_q
from db.types import Conn, Row
from reports.service import ReportSources
from security.roles import Permission
from services import release_policies
from services.caller import Caller, acting

#: The permission of every booking and lifecycle change (operator and admin).
MANAGE: Permission = "shipments.manage"
#: The states the QA queue shows.
QA_STATES = ["under_review", "quarantined"]

log = logging.getLogger(__name__)


def move(
    conn: Conn,
    caller: Caller,
    *,
    shipment_id: int,
    event: lifecycle.Event,
    reason: str | None = None,
    now: datetime,
    data: dict[str, Any] | None = None,
) -> Row:
    """Apply transition ``event`` to the shipment in its own transaction; the new state row."""
    caller.require(MANAGE)
    with acting(conn, caller, reason), conn.transaction():
        return _move(conn, caller, shipment_id, event, reason=reason, now=now, data=data)


def _move(
    conn: Conn,
    caller: Caller,
    shipment_id: int,
    event: lifecycle.Event,
    *,
    reason: str | None,
    now: datetime,
    data: dict[str, Any] | None = None,
) -> Row:
    """The move inside the caller's transaction (the shipment gets locked)."""
    current = q.lock_state(conn=conn, shipment_id=shipment_id)
    if current is None:
        raise NotFoundError(f"shipment {shipment_id} not found")
    step = lifecycle.transition(current["status"], event)
    row = q.set_state(
        conn=conn,
        shipment_id=shipment_id,
        event=event,
        from_state=step.before,
        to_state=step.after,
        at=now,
    )
    if row is None:  # locked above: cannot happen unless the lock was not taken
        raise ShipmentStateError(f"shipment {shipment_id} changed state meanwhile; retry")
    q.add_event(
        conn=conn,
        shipment_id=shipment_id,
        at=now,
        event=event,
        actor=caller.actor,
        reason=reason,
        from_state=step.before,
        to_state=step.after,
        data=data,
    )
    return row


def start(
    conn: Conn, caller: Caller, *, shipment_id: int, now: datetime, reason: str | None = None
) -> Row:
    """The shipment leaves: planned → in_transit, ``started_at`` = now (its profiles' time)."""
    return move(conn, caller, shipment_id=shipment_id, event="start", reason=reason, now=now)


def cancel(conn: Conn, caller: Caller, *, shipment_id: int, now: datetime, reason: str) -> Row:
    """planned → cancelled; a reason is required (it is the audit trail's why)."""
    if not reason or not reason.strip():
        raise InvalidRecordError("reason", "a cancellation needs a reason")
    return move(conn, caller, shipment_id=shipment_id, event="cancel", reason=reason, now=now)


def arrive(
    conn: Conn,
    caller: Caller,
    *,
    shipment_id: int,
    now: datetime,
    gap_factor: float,
    reason: str | None = None,
    release: ReportSources | None = None,
    at: datetime | None = None,
    data: dict[str, Any] | None = None,
) -> list[Row]:
    """in_transit → arrived → under_review, with a verdict per product (module docstring);
    returns the verdicts stored.

    ``at`` is the arrival time when it is not ``now``: the time of the reading that showed the
    arrival (:mod:`services.automation`). The verdict then judges the readings measured by
    ``at`` among those received by ``now``, at ``at``; ``data`` goes on the arrive entry of the
    timeline. With ``release`` (the report's sources), a conforming shipment that QA's policies
    cover is then released automatically (:func:`services.release_policies.auto_release`, its
    own transaction: the arrival stands whatever happens to it); without, it waits in the QA
    queue."""
    caller.require(MANAGE)
    at = now if at is None else at
    with acting(conn, caller, reason), conn.transaction():
        arrived = _move(conn, caller, shipment_id, "arrive", reason=reason, now=at, data=data)
        verdicts = _judge(conn, caller, shipment_id, started_at=arrived["started_at"], now=now,
                          gap_factor=gap_factor, at=at)  # fmt: skip
        outcome = (
            "exception" if any(v["verdict"] == "exception" for v in verdicts) else "conforming"
        )
        _move(
            conn,
            caller,
            shipment_id,
            "review",
            reason=f"arrival verdict: {outcome}",
            now=at,
            data={"verdicts": {v["gtin"]: v["verdict"] for v in verdicts}},
        )
    if release is not None and outcome == "conforming":
        try:
            release_policies.auto_release(conn, release, shipment_id=shipment_id, now=now)
        except ColdchainError as exc:
            # The arrival and its verdicts stand (committed, or a savepoint of the caller's);
            # the shipment waits in the QA queue, and the log says why.
            log.warning("shipment %s arrived but was not released automatically: %s",
                        shipment_id, exc)  # fmt: skip
    return verdicts


def profile_from_row(product: Row, stored: Row | None) -> tuple[StabilityProfile, int | None]:
    """The profile to judge a product by: the stored version in force, else the product row's
    storage range and stability budget (see the module docstring); with the version used."""
    if stored is not None:
        return profile_from_doc(stored["profile"]), int(stored["version"])
    budget = product["stability_budget_s"]
    allowances = () if budget is None else (Allowance(None, None, timedelta(seconds=budget)),)
    profile = StabilityProfile(
        storage_low_c=product["temp_min_c"],
        storage_high_c=product["temp_max_c"],
        allowances=allowances,
        freeze_c=0.0 if product["freeze_limit_c"] is None else product["freeze_limit_c"],
        mkt_limit_c=product["mkt_limit_c"],
        delta_h_j_mol=product["mkt_delta_h_j_mol"],
    )
    return profile, None


def _judge(
    conn: Conn,
    caller: Caller,
    shipment_id: int,
    *,
    started_at: datetime | None,
    now: datetime,
    gap_factor: float,
    at: datetime,
) -> list[Row]:
    loggers = report_q.loggers(conn=conn, shipment_id=shipment_id, as_of=at)
    points: list[Point] = []
    for logger in loggers:
        points.extend(
            Point(ts, temp_c)
            for ts, temp_c in report_q.readings(
                conn=conn,
                device_id=logger["device_id"],
                lower=logger["assigned_from"],
                upper=logger["assigned_to"],
                as_of=now,
            )
            if ts <= at
        )
    interval_s = max((int(lg["interval_s"]) for lg in loggers), default=300)
    max_gap = timedelta(seconds=gap_factor * interval_s)
    still_open = [
        (row["direction"], row["start_ts"])
        for row in q.open_excursions(conn=conn, shipment_id=shipment_id)
    ]
    stored = []
    for product in q.products_to_judge(conn=conn, shipment_id=shipment_id):
        in_force = q.profile_in_force(conn=conn, gtin=product["gtin"], at=started_at or at)
        profile, version = profile_from_row(product, in_force)
        verdict: Verdict = evaluate(
            profile, points, now=at, max_gap=max_gap, open_excursions=still_open
        )
        figures = verdict.to_dict()
        row = q.insert_verdict(
            conn=conn,
            values={
                "id": shipment_id,
                "gtin": product["gtin"],
                "verdict": verdict.outcome,
                "reasons": figures.pop("reasons"),
                "figures": figures,
                "profile_version": version,
                "evaluated_at": now,
                "evaluated_by": caller.actor,
            },
        )
        q.add_event(
            conn=conn,
            shipment_id=shipment_id,
            at=at,
            event="verdict",
            actor=caller.actor,
            reason=f"{product['gtin']}: {verdict.outcome}",
            data={"gtin": product["gtin"], "verdict": verdict.outcome, "profile_version": version},
        )
        stored.append(row)
    return stored


def timeline(conn: Conn, *, shipment_id: int) -> list[Row]:
    """The shipment's timeline (transitions, booking changes, verdicts), oldest first."""
    if booking_q.booking(conn=conn, shipment_id=shipment_id) is None:
        raise NotFoundError(f"shipment {shipment_id} not found")
    return q.events(conn=conn, shipment_id=shipment_id)


def verdicts(conn: Conn, *, shipment_id: int) -> list[Row]:
    """The latest verdict of each product of the shipment."""
    return q.latest_verdicts(conn=conn, shipment_id=shipment_id)


def qa_queue(conn: Conn, *, limit: int = 100) -> list[Row]:
    """Shipments waiting for QA with their verdicts, the riskiest first (module docstring)."""
    return q.qa_queue(conn=conn, states=QA_STATES, limit=limit)
