"""Electronic signatures of QA dispositions (21 CFR Part 11 §11.50/§11.70 style).

A signature is a record, not a picture: printed name, user name, role, date and time (UTC), the
meaning of the signature and the reason, bound to the report's content hash and to the record it
supersedes. Its hash (SHA-256 of the canonical JSON of :func:`signature_payload`) is printed with
it on screen and on the PDF; changing any part of the record changes the hash. Signing needs two
components: the person's session (their id) and their password, entered again at signing.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final, Literal, get_args

from coldchain.canonical import content_hash

Decision = Literal["release", "quarantine", "reject", "return"]
DECISIONS: Final[tuple[Decision, ...]] = get_args(Decision)

#: The meaning each decision's signature carries (what the signer attests).
MEANINGS: Final[dict[Decision, str]] = {
    "release": "Approval: the product is released for sale or use",
    "quarantine": "Review: the product is held in quarantine pending investigation",
    "reject": "Rejection: the product must not be sold or used",
    "return": "Rejection: the product is to be returned to the supplier",
}

SIGNATURE_VERSION: Final = "coldchain-signature-v1"


def signature_payload(
    *,
    shipment_id: int,
    shipment_reference: str,
    lot: str | None,
    decision: Decision,
    reason: str,
    meaning: str,
    signer_user_id: int,
    signer_username: str,
    signer_name: str,
    signer_role: str,
    signed_at: datetime,
    report_hash: str,
    supersedes: int | None,
    policy: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Everything a signature attests, as JSON values. An automatic release adds ``policy``
    (its id and signature hash, :func:`auto_release_meaning`); a person's record has none, and
    its payload (and hash) is what it always was."""
    extra = {} if policy is None else {"policy": dict(policy)}
    return {
        "version": SIGNATURE_VERSION,
        "shipment_id": shipment_id,
        "shipment_reference": shipment_reference,
        "lot": lot,
        "decision": decision,
        "reason": reason,
        "meaning": meaning,
        "signer": {
            "user_id": signer_user_id,
            "username": signer_username,
            "printed_name": signer_name,
            "role": signer_role,
        },
        "signed_at": format_signed_at(signed_at),
        "report_hash": report_hash,
        "supersedes": supersedes,
        **extra,
    }


#: What a QA person attests by signing a release policy.
POLICY_MEANING: Final = (
    "Approval: every shipment in this scope whose arrival verdict is conforming is released "
    "for sale or use automatically, without a further signature"
)
#: What a QA person attests by revoking one.
REVOKE_MEANING: Final = "Withdrawal: shipments in this scope are no longer released automatically"


def auto_release_meaning(
    *, policy_id: int, signer_name: str, signer_username: str, signed_at: datetime
) -> str:
    """The meaning of an automatic release: no person signed it at that time; it rests on the
    policy QA signed earlier, named with its signer and date."""
    at = signed_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return (
        f"Automatic release under release policy {policy_id}, signed by {signer_name} "
        f"({signer_username}) on {at}; no person signed this release: the arrival verdict "
        "was conforming and the product is released for sale or use"
    )


def policy_payload(
    *,
    action: Literal["create", "revoke"],
    scope: Mapping[str, Any],
    reason: str,
    meaning: str,
    signer_user_id: int,
    signer_username: str,
    signer_name: str,
    signer_role: str,
    signed_at: datetime,
    policy: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Everything the signature of a release policy (``create``) or of its revocation
    (``revoke``: ``policy`` is the policy's id and signature hash) attests."""
    return {
        "version": SIGNATURE_VERSION,
        "kind": f"release-policy-{action}",
        "scope": dict(scope),
        "reason": reason,
        "meaning": meaning,
        "signer": {
            "user_id": signer_user_id,
            "username": signer_username,
            "printed_name": signer_name,
            "role": signer_role,
        },
        "signed_at": format_signed_at(signed_at),
        "policy": None if policy is None else dict(policy),
    }


def signature_hash(payload: dict[str, Any]) -> str:
    """SHA-256 of the payload's canonical JSON."""
    return content_hash(payload)


def format_signed_at(signed_at: datetime) -> str:
    """``2026-11-26T03:04:05.123456Z``: the exact instant, in UTC."""
    return signed_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def manifestation(row: Mapping[str, Any]) -> str:
    """The signature as people read it: ``Signed by Ana Ruiz (ana, qa) on 2026-11-26 03:04:05
    UTC — Approval: the product is released for sale or use``; an automatic release says
    ``Released automatically on … — Automatic release under release policy 3, signed by …``."""
    at = row["signed_at"].astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    if row.get("policy_id") is not None:
        return f"Released automatically on {at} — {row['meaning']}"
    return (
        f"Signed by {row['signer_name']} ({row['signer_username']}, {row['signer_role']}) "
        f"on {at} — {row['meaning']}"
    )
