"""The platform's exception vocabulary: every error it raises on purpose, in one module.

ColdchainError
├── SetupError              the local stack or a system dependency is missing or failed to start
├── ConfigError             a settings, rules or scenario file is invalid (names the file and field)
├── NotFoundError           a shipment, device, alert... that the caller named does not exist
├── IdentifierError         a GS1 identifier is malformed (also a ValueError, for pydantic)
├── AlertConflictError      an alert action its current state does not allow
├── EPCISRejected           an EPCIS document refused whole, with every reason; nothing stored
├── DeliveryError           one notification attempt failed (status and body, or network error)
├── ReportChangedError      the report no longer has the hash the signer saw
├── SignatureConflictError  another disposition of the same shipment/lot was signed at once
├── InvalidDispositionError a disposition that cannot be signed as asked
├── ShipmentStateError      a shipment transition or change its state does not allow (also for
│                           a release while in transit or with an excursion still open)
├── StaleVersionError       an update sent with a version (If-Match) that is no longer current
├── DuplicateError          a create that collides with an existing record in another shape, or a
│                           logger already riding in another shipment
├── CalibrationExpiredError a logger past its calibration due date, attached without an override
├── InvalidInputError       a value refused by a service, naming the field (also a ValueError)
└── SecurityError           who may do what: the API turns these into 401/403/429/422
    ├── AuthenticationError     unknown user, wrong password, invalid/expired/revoked credential
    │   └── RateLimitedError    too many failures: try again after ``retry_after`` seconds
    ├── PermissionDeniedError   the principal's role does not allow the action
    ├── WeakPasswordError       a new password breaks the policy (the message says which rule)
    └── AccountError            a user or key that cannot be created or changed as asked

The modules that raise them re-export the names their callers have always imported
(``coldchain.gs1.IdentifierError``, ``security.errors.*``, ``db.queries.alerts.AlertConflictError``,
``traceability.epcis_import.EPCISRejected``, ``reports.service.*Error``,
``alerts.delivery.DeliveryError``); the classes are these. The API maps them to HTTP statuses
(``api/app.py``). Not here: the API's own ``PayloadTooLargeError`` (an ``HTTPException``), and
private control-flow signals that never leave their module (``ingest.service._Abandoned``).
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
    error). The delivery worker records it on the notification and retries later."""


class ReportChangedError(ColdchainError):
    """The report at the given ``as_of`` no longer has the hash the signer saw."""


class SignatureConflictError(ColdchainError):
    """Another disposition of the same shipment/lot was signed at the same moment."""


class InvalidDispositionError(ColdchainError):
    """A disposition that cannot be signed as asked (unknown lot, as_of in the future…)."""


class ShipmentStateError(ColdchainError):
    """A transition or change the shipment's state does not allow; the message names the state
    and the states the action may leave from (:mod:`coldchain.lifecycle`)."""


class StaleVersionError(ColdchainError):
    """The caller edited an older version than the stored one: re-read, then apply the change
    again (the API answers 412 Precondition Failed)."""

    def __init__(self, message: str, current_version: int) -> None:
        super().__init__(message)
        self.current_version = current_version


class DuplicateError(ColdchainError):
    """A create that names an existing record (by its natural key or external reference) with
    a different content, or a logger that already rides in another shipment (409)."""


class CalibrationExpiredError(ColdchainError):
    """A logger whose calibration is past due, attached without an ``override_reason`` (EU GDP
    9.3): the message says how to override, and the override is audited."""


class InvalidInputError(ColdchainError, ValueError):
    """A value a service refuses; ``field`` names it (a CSV import adds the line)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.problem = message


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
