"""Helpers that used to be copied between stages are defined once, in the core."""

from __future__ import annotations

import ast

import pytest

from tests.coldchain.layout import production_files

#: Files allowed a copy for now (none).
PENDING: set[str] = set()

ONE_HOME = {
    "utcnow": "coldchain/runtime.py",
    "first_of": "coldchain/runtime.py",
    "first": "coldchain/runtime.py",
    "_first": "coldchain/runtime.py",
    "canonical_json": "coldchain/canonical.py",
    "sha256_hex": "coldchain/canonical.py",
    "_sha256": "coldchain/canonical.py",
    "format_validation_error": "coldchain/validation.py",
    "_format_errors": "coldchain/validation.py",
    "_loc": "coldchain/validation.py",
    "_fields_at": "coldchain/validation.py",
    "_inner_model": "coldchain/validation.py",
    "stronger": "coldchain/severity.py",
    "strongest": "coldchain/severity.py",
}


def _definitions() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for where, path in production_files():
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name in ONE_HOME:
                found.setdefault(node.name, set()).add(where)
    return found


DEFINED = _definitions()


@pytest.mark.parametrize("name", sorted(ONE_HOME))
def test_defined_once_in_the_core(name: str) -> None:
    assert DEFINED.get(name, set()) - PENDING <= {ONE_HOME[name]}


def test_the_core_homes_exist() -> None:
    for name in ("utcnow", "first_of", "canonical_json", "format_validation_error", "stronger"):
        assert DEFINED[name] - PENDING == {ONE_HOME[name]}
