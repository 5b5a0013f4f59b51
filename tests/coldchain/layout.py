"""The production packages, for the tests that read the source tree."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION = (
    "alerts",
    "api",
    "coldchain",
    "dashboard",
    "db",
    "ingest",
    "reports",
    "security",
    "simulator",
    "traceability",
)


def production_files() -> Iterator[tuple[str, Path]]:
    """Every production module: its path relative to the repository, and its path."""
    for package in PRODUCTION:
        for path in sorted((ROOT / package).rglob("*.py")):
            yield str(path.relative_to(ROOT)), path
