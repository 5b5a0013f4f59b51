"""One-time acknowledgement links and SMS reply codes: the one definition of their form.

A notification sent while its alert can be acknowledged carries ``{base}/ack/{token}``: the
token is 256 random bits (URL-safe base64, 43 characters); the database keeps only its SHA-256
(``ack_links.token_hash``), so a stolen table gives no working link. An SMS carries a six-digit
reply code as well ("Reply ACK 123456"), matched together with the phone it was sent to. Who
writes the links is :mod:`alerts.outbox`; who uses them, :mod:`services.ack`.
"""

from __future__ import annotations

import hashlib
import re
import secrets

__all__ = [
    "ack_url",
    "alert_url",
    "looks_like_token",
    "new_reply_code",
    "new_token",
    "reply_code_of",
    "token_hash",
]

TOKEN_BYTES = 32
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{43}$")
_REPLY = re.compile(r"^\s*ACK\s+(\d{6})\s*[.!]?\s*$", re.IGNORECASE)


def new_token() -> str:
    """A fresh link token (256 random bits)."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def token_hash(token: str) -> str:
    """What the database keeps of a token: its SHA-256, hex."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def looks_like_token(token: str) -> bool:
    """Whether ``token`` has the form of one (anything else was cut or tampered with)."""
    return bool(_TOKEN.match(token))


def new_reply_code() -> str:
    """A random six-digit SMS reply code."""
    return f"{secrets.randbelow(10**6):06d}"


def reply_code_of(body: str) -> str | None:
    """The code of an SMS reply "ACK 123456" (any case, spaces around); None for anything else."""
    match = _REPLY.match(body or "")
    return match.group(1) if match else None


def ack_url(base: str, token: str) -> str:
    """The link a person opens to acknowledge."""
    return f"{base}/ack/{token}"


def alert_url(base: str, alert_id: int) -> str:
    """The alert's page on the dashboard."""
    return f"{base}/alerts?alert={alert_id}"
