"""Bearer tokens, dashboard sessions and API keys: random secrets, shown once, stored hashed.

A secret's prefix says what it is, so a leaked one is recognisable (secret scanners) and the
server knows which table to look in: ``cct_`` a person's token (API bearer or dashboard
session), ``cck_`` an API key. Secrets carry 256 random bits; only their SHA-256 is stored, which
is enough for a value nobody can guess (a slow hash protects low-entropy passwords, not these).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Final, Literal

PERSON_PREFIX: Final = "cct_"
API_KEY_PREFIX: Final = "cck_"
#: How many characters of a key are kept in clear, to tell keys apart in a list.
SHOWN_PREFIX_LENGTH: Final = 12
MAX_SECRET_LENGTH: Final = 200

SecretKind = Literal["person", "api_key"]


def new_secret(kind: SecretKind) -> str:
    """A fresh random token (``cct_…``) or API key (``cck_…``)."""
    prefix = PERSON_PREFIX if kind == "person" else API_KEY_PREFIX
    return prefix + secrets.token_urlsafe(32)


def secret_hash(secret: str) -> str:
    """What the database keeps of a token or key: its SHA-256, hex."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def kind_of(secret: str) -> SecretKind | None:
    """What a presented secret claims to be, from its prefix; None for anything else."""
    if len(secret) > MAX_SECRET_LENGTH or not secret.isascii():
        return None
    if secret.startswith(PERSON_PREFIX):
        return "person"
    if secret.startswith(API_KEY_PREFIX):
        return "api_key"
    return None


def same(a: str, b: str) -> bool:
    """Constant-time comparison of two hashes or secrets."""
    return hmac.compare_digest(a.encode(), b.encode())
