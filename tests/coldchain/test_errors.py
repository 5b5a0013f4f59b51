"""The exception vocabulary: one module defines it, its docstring draws all of it."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import coldchain.errors as errors
from alerts import delivery
from coldchain import gs1
from security import errors as security_errors
from tests.coldchain.layout import production_files
from traceability import epcis_import, epcis_schema

# Defined elsewhere on purpose: an HTTPException of the API, and a private signal that never
# leaves its module (both named in coldchain/errors.py's docstring).
ALLOWED = {("api/middleware.py", "PayloadTooLargeError"), ("ingest/service.py", "_Abandoned")}

CLASSES = {
    name: cls
    for name, cls in vars(errors).items()
    if inspect.isclass(cls) and issubclass(cls, Exception)
}


def _exception_classes(path: Path) -> list[str]:
    tree = ast.parse(path.read_text("utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            bases = [ast.unparse(b) for b in node.bases]
            if any(b.endswith(("Error", "Exception", "Rejected")) for b in bases):
                found.append(node.name)
    return found


def test_no_exception_class_is_defined_outside_coldchain_errors() -> None:
    stray = [
        (where, name)
        for where, path in production_files()
        if where != "coldchain/errors.py"
        for name in _exception_classes(path)
    ]
    assert set(stray) == ALLOWED, stray


def test_the_docstring_draws_every_class_under_its_parent() -> None:
    doc = errors.__doc__ or ""
    drawn = {
        line.split()[0]: line
        for raw in doc.splitlines()
        if (line := raw.lstrip(" │├└─")) and line.split()[0] in CLASSES
    }
    assert set(drawn) == set(CLASSES)
    lines = doc.splitlines()
    for name, cls in CLASSES.items():
        if cls is errors.ColdchainError:
            continue
        # The nearest line above it that is drawn less indented names its parent.
        row = next(i for i, raw in enumerate(lines) if raw.lstrip(" │├└─").startswith(name + " "))
        depth = len(lines[row]) - len(lines[row].lstrip(" │├└─"))
        parent = next(
            lines[i].lstrip(" │├└─").split()[0]
            for i in range(row - 1, -1, -1)
            if len(lines[i]) - len(lines[i].lstrip(" │├└─")) < depth
        )
        assert cls.__bases__[0] is CLASSES[parent], (name, parent)


def test_callers_old_names_are_the_same_classes() -> None:
    assert gs1.IdentifierError is errors.IdentifierError
    assert epcis_import.EPCISRejected is errors.EPCISRejected
    assert epcis_schema.Problem is errors.Problem
    assert delivery.DeliveryError is errors.DeliveryError
    for name in security_errors.__all__:
        assert getattr(security_errors, name) is CLASSES[name]


def test_an_identifier_error_is_still_a_value_error() -> None:
    """pydantic turns a ValueError raised in a validator into a field error."""
    assert issubclass(errors.IdentifierError, ValueError)
    try:
        gs1.normalize_gtin("123")
    except ValueError as exc:
        assert isinstance(exc, errors.ColdchainError)
    else:
        raise AssertionError("an invalid GTIN was accepted")
