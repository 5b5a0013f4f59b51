"""Passwords: argon2id hashes (argon2-cffi, RFC 9106 low-memory profile), the policy for new
passwords, and generated passwords for new accounts and the demo."""

from __future__ import annotations

import functools
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from security.errors import WeakPasswordError

# RFC 9106's second recommended profile (t=3, 64 MiB, p=4): argon2-cffi's defaults, named here so
# a change of library defaults cannot silently weaken stored hashes. Old hashes are re-hashed at
# the next login when these change (needs_rehash).
_HASHER = PasswordHasher(time_cost=3, memory_cost=64 * 1024, parallelism=4)

#: Letters and digits that cannot be mistaken for each other when read aloud or typed.
_ALPHABET = "abcdefghjkmnpqrstuvwxyzABCDEFGHJKMNPQRSTUVWXYZ23456789"
MAX_LENGTH = 1024  # bounds the work an attacker can ask of the hasher


def hash_password(password: str) -> str:
    """An argon2id hash in its self-describing text form (parameters and salt included)."""
    return _HASHER.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """Whether ``password`` matches ``password_hash`` (constant-time; False for a broken hash)."""
    if len(password) > MAX_LENGTH:
        return False
    try:
        return _HASHER.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    """Whether the hash was made with other parameters than today's (re-hash at next login)."""
    try:
        return _HASHER.check_needs_rehash(password_hash)
    except InvalidHashError:
        return True


@functools.cache
def dummy_hash() -> str:
    """A hash to verify against when the user does not exist, so that a login for an unknown
    user name takes as long as one with a wrong password."""
    return hash_password(secrets.token_urlsafe(16))


def check_policy(password: str, *, min_length: int, username: str | None = None) -> None:
    """Raise WeakPasswordError saying which rule a new password breaks.

    Length is what counts (NIST SP 800-63B): at least ``min_length`` characters, no composition
    rules; not the user name, not one character repeated.
    """
    if len(password) < min_length:
        raise WeakPasswordError(f"the password must have at least {min_length} characters")
    if len(password) > MAX_LENGTH:
        raise WeakPasswordError(f"the password must have at most {MAX_LENGTH} characters")
    if username and username.lower() in password.lower():
        raise WeakPasswordError("the password must not contain the user name")
    if len(set(password)) < 4:
        raise WeakPasswordError("the password must not be one or two characters repeated")


def generate_password(groups: int = 4, size: int = 5, *, username: str | None = None) -> str:
    """A random password like ``xK7pq-M2nbt-9YzrE-a4TvH`` (about 115 bits for the default).

    Drawn again until it passes :func:`check_policy` for ``username`` (a short name such as
    ``qa`` turns up inside a random password about once in fifty).
    """
    while True:
        password = "-".join(
            "".join(secrets.choice(_ALPHABET) for _ in range(size)) for _ in range(groups)
        )
        try:
            check_policy(password, min_length=len(password), username=username)
        except WeakPasswordError:
            continue
        return password
