"""Canonical JSON and SHA-256: the byte form that content hashes and signatures are taken over.

Canonical here means: keys sorted, no insignificant whitespace, UTF-8 (not ``\\u`` escapes),
floats as Python writes them (shortest round-trip form), no NaN or infinity. Anyone can recompute
a report's hash from its JSON download with the same four rules.

Used for the reports' content hashes and the signatures over them (:mod:`reports`,
:mod:`security.signatures`, :mod:`security.audit`), and for EPCIS events: an event stored without
an ``eventID`` is keyed by the hash of its canonical JSON, an exported event's ``eventID`` is
derived from it (:mod:`traceability.epcis_parse`, :mod:`traceability.epcis_export`).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any


def canonical_json(value: Any) -> bytes:
    """``value`` (JSON types only) as canonical JSON bytes."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def sha256_hex(data: bytes) -> str:
    """SHA-256 of ``data``, lower-case hex."""
    return hashlib.sha256(data).hexdigest()


def content_hash(value: Any) -> str:
    """SHA-256 of ``value``'s canonical JSON."""
    return sha256_hex(canonical_json(value))
