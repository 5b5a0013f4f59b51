"""The official EPCIS 2.0 JSON schema, and validation against it with URI and date-time checks.

``schemas/EPCIS-JSON-Schema.json`` is a byte-for-byte copy of GS1's file (``gs1/EPCIS`` repository
at commit 2b888bef; see ``tests/data/epcis/PROVENANCE.md``, with its licence; a test keeps the copy
identical to the recorded hash). It declares JSON Schema **draft-07** and is
self-contained (every ``$ref`` is internal), so it is validated with ``Draft7Validator`` and no
network.

The schema leans on ``format: "uri"`` and ``format: "date-time"`` (eventTime, measurement types,
extension property names...), which ``jsonschema`` only enforces when optional packages are
installed; without them ``"type": "Temp"`` in a sensor report or ``"eventTime": "yesterday"``
would pass. The checker here enforces both with the standard library: an absolute URI per RFC 3986
(a scheme, then only URI characters and well-formed %-escapes) and an RFC 3339 timestamp with a
time zone.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any, Final

from jsonschema import Draft7Validator, FormatChecker
from jsonschema.exceptions import ValidationError, best_match

from coldchain.errors import Problem

__all__ = ["SCHEMA_PATH", "Problem", "format_checker", "schema", "schema_problems"]

SCHEMA_PATH: Final = Path(__file__).with_name("schemas") / "EPCIS-JSON-Schema.json"
MAX_PROBLEMS: Final = 50

_URI: Final = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]*$")
_BAD_PERCENT: Final = re.compile(r"%(?![0-9A-Fa-f]{2})")
_RFC3339: Final = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$"
)


def _is_uri(value: object) -> bool:
    if not isinstance(value, str):
        return True  # formats only constrain strings
    return bool(_URI.match(value)) and not _BAD_PERCENT.search(value)


def _is_date_time(value: object) -> bool:
    if not isinstance(value, str):
        return True
    if not _RFC3339.match(value):
        return False
    try:
        datetime.fromisoformat(value.upper())
    except ValueError:
        return False  # e.g. month 13, 25 o'clock
    return True


@cache
def format_checker() -> FormatChecker:
    """jsonschema's format checker plus strict ``uri`` and ``date-time`` (see module doc)."""
    checker = FormatChecker()
    checker.checks("uri")(_is_uri)
    checker.checks("date-time")(_is_date_time)
    return checker


@cache
def schema() -> dict[str, Any]:
    """The official EPCIS 2.0 JSON schema."""
    loaded: dict[str, Any] = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    return loaded


@cache
def _validator() -> Draft7Validator:
    Draft7Validator.check_schema(schema())
    return Draft7Validator(schema(), format_checker=format_checker())


def _pointer(error: ValidationError) -> str:
    return "".join(f"/{part}" for part in error.absolute_path)


def _describe(error: ValidationError) -> ValidationError:
    # anyOf/oneOf/if-then failures wrap the real reason; the most relevant sub-error says it.
    while error.context:
        deeper = best_match(error.context)
        if deeper is None or deeper is error:
            break
        error = deeper
    return error


def schema_problems(document: object) -> list[Problem]:
    """Every way ``document`` breaks the official schema (at most ``MAX_PROBLEMS``), by path."""
    errors = sorted(_validator().iter_errors(document), key=lambda e: list(e.absolute_path))
    problems: list[Problem] = []
    seen: set[tuple[str, str]] = set()
    for error in errors:
        specific = _describe(error)
        problem = Problem(_pointer(specific), specific.message)
        if (problem.path, problem.message) in seen:
            continue
        seen.add((problem.path, problem.message))
        problems.append(problem)
        if len(problems) >= MAX_PROBLEMS:
            break
    return problems
