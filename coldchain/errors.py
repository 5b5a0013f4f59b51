"""The platform's exception vocabulary.

ColdchainError
├── SetupError        the local stack or a system dependency is missing or failed to start
├── ConfigError       a settings, rules or scenario file is invalid (names the file and field)
└── NotFoundError     a shipment, device, alert... that the caller named does not exist
"""

from __future__ import annotations


class ColdchainError(Exception):
    """Base of every error the platform raises on purpose."""


class SetupError(ColdchainError):
    """The local stack or a system dependency is missing or failed; the message says what to do."""


class ConfigError(ColdchainError):
    """A settings, rules or scenario file is invalid; the message names the file and the field."""


class NotFoundError(ColdchainError):
    """A named object does not exist."""
