"""The security exceptions; the API turns them into 401/403/429/422.

ColdchainError (coldchain.errors)
└── SecurityError
    ├── AuthenticationError   unknown user, wrong password, invalid/expired/revoked token or key
    │   └── RateLimitedError  too many failures: try again after ``retry_after`` seconds
    ├── PermissionDeniedError the principal's role does not allow the action
    ├── WeakPasswordError     a new password breaks the policy (the message says which rule)
    └── AccountError          a user or key that cannot be created or changed as asked
"""

from __future__ import annotations

from coldchain.errors import ColdchainError


class SecurityError(ColdchainError):
    """Base of the security errors."""


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
