"""The security exceptions, under the names their callers import; the API turns them into
401/403/429/422. The classes and their tree are in :mod:`coldchain.errors`.
"""

from __future__ import annotations

from coldchain.errors import (
    AccountError,
    AuthenticationError,
    PermissionDeniedError,
    RateLimitedError,
    SecurityError,
    WeakPasswordError,
)

__all__ = [
    "AccountError",
    "AuthenticationError",
    "PermissionDeniedError",
    "RateLimitedError",
    "SecurityError",
    "WeakPasswordError",
]
