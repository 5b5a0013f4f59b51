"""QA's auto-release policies: sign one, revoke one, list them; and the automatic release
they allow (``db/migrations/0013_auto_release.sql``).

A policy covers one product (GTIN) or one lane. Only a QA person signs it (``policies.sign``),
with their password entered again, as a disposition is signed (:func:`services.reports.sign`):
the signature binds the signer, the instant, the scope, the reason and its meaning
(:data:`security.signatures.POLICY_MEANING`). A policy is never edited; it is revoked by a QA
person's signature too, with a reason. At most one policy is active per product and per lane.
Creation is idempotent: the same scope and reason while that policy is active returns it
(``created`` False); another reason for an active scope is refused (revoke it first).

The automatic release (:func:`auto_release`, called by :func:`services.lifecycle.arrive` right
after the arrival's own transaction): when the latest verdict of every product on board is
*conforming* and every product is covered by an active policy (the shipment's lane's, or its
own product's), the shipment is released as QA would release it (the same guard: no release
with an excursion still open, :func:`services.reports._disposition_move`), and stored by the
same function as a person's signature (:func:`services.reports.record_disposition`), in one
transaction:

* the report is frozen as of that instant (``report_snapshots``), as for a person's signature;
* a disposition ``release`` with ``policy_id`` set. Its signer columns name the policy's QA
  signer, because the release rests on their signature; but its meaning says in words that no
  person signed it then (:func:`security.signatures.auto_release_meaning`), its ``signed_at`` is
  the instant of the release, and its signature hash covers the policy's id and signature hash;
* the shipment moves to ``released`` with a timeline entry, and the policy's history gains a
  ``released`` entry;
* the actor of all of it, in the audit trail and on the timeline, is ``policy:<id>`` (recorded
  as claimed: no credential was presented).

An *exception* verdict is never released automatically: the shipment stays in the QA queue.
Neither is a shipment any product of which no active policy covers, nor one whose release the
guard refuses: they stay in the queue, and a person signs.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from coldchain.errors import (
    InvalidRecordError,
    NotFoundError,
    PolicyConflictError,
    RecordConflictError,
    ShipmentStateError,
    VersionConflictError,
)
from db.queries import lifecycle as lifecycle_q
from db.queries import locations as location_q
from db.queries import products as product_q
from db.queries import release_policies as q
from db.types import Conn, Row
from reports import render
from reports.service import ReportSources, live_evidence
from security import accounts
from security.ratelimit import LoginLimiter
from security.roles import Permission
from security.signatures import (
    POLICY_MEANING,
    REVOKE_MEANING,
    auto_release_meaning,
    policy_payload,
    signature_hash,
)
from services.caller import Caller, acting
from services.reports import Signer, _disposition_move, record_disposition

log = logging.getLogger(__name__)

#: Who may sign or revoke a policy (the qa role alone).
SIGN: Permission = "policies.sign"
#: The longest reason a policy or its revocation may give.
MAX_REASON = 2000


@dataclass(frozen=True, slots=True)
class Scope:
    """What a policy covers: one product (``gtin``) or one lane (``lane_id``), never both."""

    gtin: str | None = None
    lane_id: int | None = None

    def as_json(self) -> dict[str, Any]:
        """The scope as the signature names it."""
        return {"gtin": self.gtin, "lane_id": self.lane_id}


def _reason(reason: str, field: str = "reason") -> str:
    cleaned = " ".join((reason or "").split())
    if not cleaned:
        raise InvalidRecordError(field, "a policy needs a reason (it is what QA attests)")
    if len(cleaned) > MAX_REASON:
        raise InvalidRecordError(field, f"at most {MAX_REASON} characters")
    return cleaned


def _check_scope(conn: Conn, scope: Scope) -> None:
    """The scope names exactly one existing, unretired product or lane."""
    if (scope.gtin is None) == (scope.lane_id is None):
        raise InvalidRecordError("gtin", "name either a product (gtin) or a lane (lane_id)")
    if scope.gtin is not None:
        product = product_q.find_product(conn=conn, gtin=scope.gtin)
        if product is None:
            raise InvalidRecordError("gtin", f"no product with GTIN {scope.gtin}")
        if product["retired_at"] is not None:
            raise RecordConflictError(f"product {scope.gtin} is retired")
    else:
        lane = location_q.find_record(conn=conn, table="lanes", key=scope.lane_id)
        if lane is None:
            raise InvalidRecordError("lane_id", f"no lane with id {scope.lane_id}")
        if lane["retired_at"] is not None:
            raise RecordConflictError(f"lane {scope.lane_id} is retired")


# ---- reads ----------------------------------------------------------------------------------


def list_policies(conn: Conn, *, active: bool | None = None) -> list[Row]:
    """Every policy, oldest first (``active``: only those, or only the revoked ones)."""
    return q.list_policies(conn=conn, active=active)


def get(conn: Conn, *, policy_id: int) -> Row:
    """One policy with its history (``events``); NotFoundError if there is none."""
    row = q.policy(conn=conn, policy_id=policy_id)
    if row is None:
        raise NotFoundError(f"release policy {policy_id} not found")
    return {**row, "events": q.events(conn=conn, policy_id=policy_id)}


# ---- signing and revoking -------------------------------------------------------------------


def create(
    conn: Conn,
    caller: Caller,
    *,
    scope: Scope,
    reason: str,
    password: str,
    limiter: LoginLimiter,
    now: datetime,
) -> tuple[Row, bool]:
    """Sign a new policy (see the module docstring); the policy and whether it was created
    (False: the same policy was already active, a retried request)."""
    caller.require(SIGN)
    reason = _reason(reason)
    # Only people hold policies.sign (no API key has the qa role; the console is admin).
    signer = accounts.authenticate(
        conn, username=caller.actor, password=password, limiter=limiter, client=caller.source
    )
    try:
        with acting(conn, caller, f"auto-release policy: {reason}"), conn.transaction():
            _check_scope(conn, scope)
            existing = q.active_for_scope(conn=conn, gtin=scope.gtin, lane_id=scope.lane_id)
            if existing is not None:
                if existing["reason"] == reason:
                    return get(conn, policy_id=int(existing["policy_id"])), False
                raise PolicyConflictError(
                    f"release policy {existing['policy_id']} is already active for this "
                    f"{'product' if scope.gtin else 'lane'}: revoke it first"
                )
            payload = policy_payload(
                action="create",
                scope=scope.as_json(),
                reason=reason,
                meaning=POLICY_MEANING,
                signer_user_id=int(signer["user_id"]),
                signer_username=signer["username"],
                signer_name=signer["full_name"],
                signer_role=signer["role"],
                signed_at=now,
            )
            policy_id = q.insert_policy(
                conn=conn,
                values={
                    **scope.as_json(),
                    "reason": reason,
                    "meaning": POLICY_MEANING,
                    "signer_user_id": signer["user_id"],
                    "signer_username": signer["username"],
                    "signer_name": signer["full_name"],
                    "signer_role": signer["role"],
                    "signed_at": now,
                    "signature_hash": signature_hash(payload),
                },
            )
            q.add_event(
                conn=conn, policy_id=policy_id, at=now, event="created", actor=caller.actor,
                reason=reason,
            )  # fmt: skip
    except psycopg.errors.UniqueViolation:
        raise PolicyConflictError(
            "another policy for this scope was signed at the same moment; reload"
        ) from None
    return get(conn, policy_id=policy_id), True


def revoke(
    conn: Conn,
    caller: Caller,
    *,
    policy_id: int,
    reason: str,
    password: str,
    limiter: LoginLimiter,
    now: datetime,
    expected_version: int | None = None,
) -> Row:
    """Revoke an active policy, signed by a QA person with a reason; the revoked policy.
    ``expected_version`` (the API's If-Match) refuses a policy that changed meanwhile."""
    caller.require(SIGN)
    reason = _reason(reason)
    signer = accounts.authenticate(
        conn, username=caller.actor, password=password, limiter=limiter, client=caller.source
    )
    with (
        acting(conn, caller, f"revoke auto-release policy {policy_id}: {reason}"),
        conn.transaction(),
    ):
        current = q.policy(conn=conn, policy_id=policy_id, lock=True)
        if current is None:
            raise NotFoundError(f"release policy {policy_id} not found")
        if not current["active"]:
            raise PolicyConflictError(
                f"release policy {policy_id} was already revoked by "
                f"{current['revoked_by_username']} on {current['revoked_at'].isoformat()}"
            )
        version = int(current["version"])
        if expected_version is not None and expected_version != version:
            raise VersionConflictError(
                f"release policy {policy_id} is at version {version}, not {expected_version}"
            )
        payload = policy_payload(
            action="revoke",
            scope={"gtin": current["gtin"], "lane_id": current["lane_id"]},
            reason=reason,
            meaning=REVOKE_MEANING,
            signer_user_id=int(signer["user_id"]),
            signer_username=signer["username"],
            signer_name=signer["full_name"],
            signer_role=signer["role"],
            signed_at=now,
            policy={"policy_id": policy_id, "signature_hash": current["signature_hash"]},
        )
        q.revoke_policy(
            conn=conn,
            policy_id=policy_id,
            expected_version=version,
            at=now,
            user_id=int(signer["user_id"]),
            username=signer["username"],
            name=signer["full_name"],
            reason=reason,
            signature_hash=signature_hash(payload),
        )
        q.add_event(
            conn=conn, policy_id=policy_id, at=now, event="revoked", actor=caller.actor,
            reason=reason,
        )  # fmt: skip
    return get(conn, policy_id=policy_id)


# ---- the automatic release ------------------------------------------------------------------


def covering_policies(conn: Conn, *, shipment_id: int) -> list[int] | None:
    """The policies that together cover every product on board (the lane's alone if it has
    one), the first to be named on the disposition; None if some product is not covered."""
    rows = q.coverage(conn=conn, shipment_id=shipment_id)
    if not rows:
        return None
    lane = rows[0]["lane_policy_id"]
    if lane is not None:
        return [int(lane)]
    if any(r["product_policy_id"] is None for r in rows):
        return None
    return sorted({int(r["product_policy_id"]) for r in rows})


def auto_release(
    conn: Conn, cfg: ReportSources, *, shipment_id: int, now: datetime
) -> dict[str, Any] | None:
    """Release the shipment under its policies if it may be (module docstring); the
    disposition record (as :func:`reports.render.disposition_record`), or None: it stays in
    the QA queue."""
    verdicts = lifecycle_q.latest_verdicts(conn=conn, shipment_id=shipment_id)
    if not verdicts or any(v["verdict"] != "conforming" for v in verdicts):
        return None
    policy_ids = covering_policies(conn, shipment_id=shipment_id)
    if policy_ids is None:
        return None
    policy = q.policy(conn=conn, policy_id=policy_ids[0])
    assert policy is not None
    named = ", ".join(str(p) for p in policy_ids)
    reason = (
        f"arrival verdict conforming for every product on board; released automatically "
        f"under release polic{'ies' if len(policy_ids) > 1 else 'y'} {named}"
    )
    actor = f"policy:{policy['policy_id']}"
    machine = Caller(actor, "qa", f"auto-release (policy {policy['policy_id']})", actor)
    try:
        with acting(conn, machine, f"release: {reason}"), conn.transaction():
            move = _disposition_move(conn, shipment_id=shipment_id, lot=None, decision="release")
            # Revoked between the check above and the lock: nothing released.
            for pid in policy_ids:
                locked = q.policy(conn=conn, policy_id=pid, lock=True)
                if locked is None or not locked["active"]:
                    return None
            evidence, digest = live_evidence(conn, shipment_id=shipment_id, as_of=now, cfg=cfg)
            assert move is not None  # a whole-shipment release always moves
            row = record_disposition(
                conn,
                shipment_id=shipment_id,
                lot=None,
                decision="release",
                reason=reason,
                meaning=auto_release_meaning(
                    policy_id=int(policy["policy_id"]),
                    signer_name=policy["signer_name"],
                    signer_username=policy["signer_username"],
                    signed_at=policy["signed_at"],
                ),
                signer=Signer(
                    int(policy["signer_user_id"]),
                    policy["signer_username"],
                    policy["signer_name"],
                    policy["signer_role"],
                ),
                move=move,
                evidence=evidence,
                digest=digest,
                as_of=now,
                now=now,
                actor=actor,
                policy=policy,
                event_data={"policy_ids": policy_ids},
            )
            for pid in policy_ids:
                q.add_event(
                    conn=conn, policy_id=pid, at=now, event="released", actor=actor,
                    reason=reason, shipment_id=shipment_id,
                    disposition_id=int(row["disposition_id"]),
                )  # fmt: skip
    except (ShipmentStateError, psycopg.errors.UniqueViolation) as exc:
        # The guard refused (an excursion still open…) or QA signed at the same moment: the
        # shipment stays with QA, which is where a person decides.
        log.info("shipment %s not released automatically: %s", shipment_id, exc)
        return None
    return render.disposition_record(row)
