"""The platform's exception vocabulary: every error it raises on purpose, in one module.

ColdchainError
├── SetupError              the local stack or a system dependency is missing or failed to start
├── ConfigError             a settings, rules or scenario file is invalid (names the file and field)
├── NotFoundError           a shipment, device, alert... that the caller named does not exist
├── IdentifierError         a GS1 identifier is malformed (also a ValueError, for pydantic)
├── AlertConflictError      an alert action its current state does not allow
├── InvalidAlertActionError an alert action asked with a bad value (no comment, assignee…): 422
├── EPCISRejected           an EPCIS document refused whole, with every reason; nothing stored
├── DeliveryError           one notification attempt failed (status and body, or network error)
├── ReportChangedError      the report no longer has the hash the signer saw
├── SignatureConflictError  another disposition of the same shipment/lot was signed at once
├── InvalidDispositionError a disposition that cannot be signed as asked
├── MasterDataError         a product, logger, location, carrier, lane or booking change refused
│   ├── InvalidRecordError      a value no such record may have (names the field): 422
│   ├── VersionConflictError    the record changed since the caller read it: 412
│   └── RecordConflictError     the natural key is taken by a different record, or the
│                               record is retired: 409 (also a shipment's reference or external
│                               reference, and a logger already riding in another shipment)
│       └── PolicyConflictError     an auto-release policy already active for the scope, or
│                                   one already revoked: 409
├── ShipmentStateError      a shipment transition or change its state does not allow (also a
│                           disposition while in transit, a release with an excursion open)
├── CalibrationExpiredError a logger past its calibration due date, attached without an override
├── InvalidQuestionError    a question asked of the platform that is empty or too long: 422
├── LanguageModelError      the language model's endpoint failed or answered outside the format
│                           (the default answerer answers instead)
└── SecurityError           who may do what: the API turns these into 401/403/429/422
    ├── AuthenticationError     unknown user, wrong password, invalid/expired/revoked credential
    │   └── RateLimitedError    too many failures: try again after ``retry_after`` seconds
    ├── PermissionDeniedError   the principal's role does not allow the action
    ├── WeakPasswordError       a new password breaks the policy (the message says which rule)
    ├── AccountError            a user or key that cannot be created or changed as asked
    └── AckRefusedError         a one-time acknowledgement link or SMS reply code refused
                                (``reason``: used, expired, unknown, other_person…): 403

The modules that raise them re-export the names their callers have always imported
(``coldchain.gs1.IdentifierError``, ``security.errors.*``, ``db.queries.alerts.AlertConflictError``,
``traceability.epcis_import.EPCISRejected``, ``reports.service.*Error``,
``alerts.delivery.DeliveryError``); the classes are these. The API maps them to HTTP statuses
(``api/errors.py``). Not here: the API's own ``PayloadTooLargeError`` (an ``HTTPException``, in
``api/middleware.py``), and private control-flow signals that never leave their module
(``ingest.service._Abandoned``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


class ColdchainError(Exception):
    """Base of every error the platform raises on purpose."""


class SetupError(ColdchainError):
    """The local stack or a system dependency is missing or failed; the message says what to do."""


class ConfigError(ColdchainError):
    """A settings, rules or scenario file is invalid; the message names the file and the field."""


class NotFoundError(ColdchainError):
    """A named object does not exist."""


class IdentifierError(ColdchainError, ValueError):
    """A GS1 identifier is malformed or invalid; the message says which part and why.

    Also a ``ValueError``, so that a pydantic validator that raises it reports a field error.
    """


class AlertConflictError(ColdchainError):
    """An alert action that its current state does not allow (e.g. acknowledging a resolved one)."""


class InvalidAlertActionError(ColdchainError):
    """An alert action asked with a value the rules refuse: no comment to acknowledge, a comment
    over the length limit, an assignee who is not an active user; ``field`` names it (the
    message starts with it). Nothing was changed."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


@dataclass(frozen=True, slots=True)
class Problem:
    """One reason an EPCIS document is refused: where (a JSON pointer) and what."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path or '/'}: {self.message}"


class EPCISRejected(ColdchainError):
    """A document was refused whole; ``problems`` lists every reason (nothing was stored)."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        shown = "; ".join(str(p) for p in self.problems[:5])
        more = f" (and {len(self.problems) - 5} more)" if len(self.problems) > 5 else ""
        super().__init__(
            f"EPCIS document refused, nothing stored: {len(self.problems)} problem(s): "
            f"{shown}{more}"
        )


class DeliveryError(ColdchainError):
    """A notification attempt failed; the message says how (status and body, or the network
    error). The delivery worker records it on the notification and retries later: not before
    ``retry_after_s`` when the receiver said when (a 429's or 503's Retry-After), and never when
    ``permanent`` (a 4xx such as a wrong routing key or a revoked webhook: it will never work)."""

    def __init__(
        self, message: str, *, retry_after_s: float | None = None, permanent: bool = False
    ) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s
        self.permanent = permanent


class ReportChangedError(ColdchainError):
    """The report at the given ``as_of`` no longer has the hash the signer saw."""


class SignatureConflictError(ColdchainError):
    """Another disposition of the same shipment/lot was signed at the same moment."""


class InvalidDispositionError(ColdchainError):
    """A disposition that cannot be signed as asked (unknown lot, as_of in the future…)."""


class ShipmentStateError(ColdchainError):
    """A transition or change the shipment's state does not allow; the message names the state
    and the states the action may leave from (:mod:`coldchain.lifecycle`)."""


class CalibrationExpiredError(ColdchainError):
    """A logger whose calibration is past due, attached without an ``override_reason`` (EU GDP
    9.3): the message says how to override, and the override is audited."""


class InvalidQuestionError(ColdchainError, ValueError):
    """A question asked of the platform that cannot be taken (empty, too long); ``field``
    names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class LanguageModelError(ColdchainError):
    """The language model's endpoint failed or answered outside the chat-completions format;
    the message names the endpoint and what was wrong, never the key."""


class MasterDataError(ColdchainError):
    """Base of the refusals of a master-data change (products, loggers, locations, carriers,
    lanes) or of a shipment's booking; nothing was changed."""


class InvalidRecordError(MasterDataError, ValueError):
    """A value the record may not have; ``field`` names it (``allowances[1].low_c``)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class VersionConflictError(MasterDataError):
    """The record is no longer at the version the caller read: re-read it and apply the change
    again (the API's 412 on a stale ``If-Match``)."""


class RecordConflictError(MasterDataError):
    """Creation with a natural key (GTIN, serial, GLN, code; a shipment's reference or external
    reference, or Idempotency-Key) that a *different* record holds, a change to a retired record,
    or a logger attached while it rides in another shipment."""


class PolicyConflictError(RecordConflictError):
    """An auto-release policy that cannot be created or revoked as asked: another policy is
    already active for the same product or lane (revoke it first), or it is already revoked."""


class SecurityError(ColdchainError):
    """Base of the security errors; the API turns them into 401/403/429/422."""


class AuthenticationError(SecurityError):
    """Credentials that do not identify an active person or key. The message never says which
    part was wrong (user name or password), so it cannot be used to find user names."""


class RateLimitedError(AuthenticationError):
    """Too many failed attempts; ``retry_after`` seconds until the next one is considered."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermissionDeniedError(SecurityError):
    """The role does not allow this action."""


class WeakPasswordError(SecurityError):
    """A new password that breaks the policy."""


class AccountError(SecurityError):
    """A user or API key that cannot be created, found or changed as asked."""


class AckRefusedError(SecurityError):
    """A one-time acknowledgement link or SMS reply refused; ``reason`` is the short code the
    audit entry records (``used``, ``expired``, ``unknown``, ``other_person``, ``other_phone``,
    ``other_alert``, ``wrong_pin``, ``no_pin``, ``not_open``), the message says it in words."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
