"""No production module over 600 lines without a reason written at its top (issue 12).

A long module is usually several things that grew together; the next person has to read all of
it to change one. Where a module is genuinely one thing (a data table, one state machine), its
docstring says so in a line starting with ``Why this module is long:``. The source is read and
parsed, never imported, so the check is cheap and cannot be fooled by import-time effects.

The production packages are the ones ``pyproject.toml`` ships (``[tool.setuptools.packages.find]``),
so a new package is checked without editing this file; ``tests/`` and ``bench/`` are not shipped.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.coldchain.layout import PRODUCTION, production_files

ROOT = Path(__file__).resolve().parents[1]
MAX_LINES = 600
REASON = "Why this module is long:"


def _modules() -> dict[str, Path]:
    return dict(production_files())


def line_count(source: str) -> int:
    return len(source.splitlines())


def has_reason(source: str) -> bool:
    """True if the module docstring has a line starting with the reason phrase."""
    doc = ast.get_docstring(ast.parse(source)) or ""
    return any(line.strip().startswith(REASON) for line in doc.splitlines())


def too_long(source: str) -> bool:
    return line_count(source) > MAX_LINES and not has_reason(source)


def test_the_shipped_packages_are_found() -> None:
    packages = PRODUCTION
    assert {"coldchain", "ingest", "launcher", "traceability"} <= set(packages), packages
    assert "tests" not in packages and "bench" not in packages


def test_no_production_module_is_long_without_a_reason() -> None:
    offenders = {
        where: line_count(path.read_text("utf-8"))
        for where, path in _modules().items()
        if too_long(path.read_text("utf-8"))
    }
    assert not offenders, (
        f"over {MAX_LINES} lines: split by what each part does, or write a line starting with "
        f"{REASON!r} in the module docstring: {offenders}"
    )


def test_the_check_tells_a_reason_from_its_absence() -> None:
    body = "x = 1\n" * MAX_LINES
    assert not too_long('"""Short."""\n' + "x = 1\n" * (MAX_LINES - 1))
    assert too_long('"""A module."""\n' + body)
    assert too_long(f'"""A module.\n\nIt mentions {REASON} mid-line only."""\n' + body)
    assert not too_long(f'"""A module.\n\n{REASON} it is one table.\n"""\n' + body)
