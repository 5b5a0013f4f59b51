"""The production packages, for the tests that read the source tree: the top-level folders
``pyproject.toml`` ships (``[tool.setuptools.packages.find] include``), so a new package is
checked as soon as it is shipped, and ``tests/`` and ``bench/`` never are."""

from __future__ import annotations

import fnmatch
import tomllib
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _shipped() -> tuple[str, ...]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))
    patterns = config["tool"]["setuptools"]["packages"]["find"]["include"]
    return tuple(
        sorted(
            p.name
            for p in ROOT.iterdir()
            if p.is_dir()
            and (p / "__init__.py").exists()
            and any(fnmatch.fnmatch(p.name, pattern) for pattern in patterns)
        )
    )


PRODUCTION = _shipped()


def production_files() -> Iterator[tuple[str, Path]]:
    """Every production module: its path relative to the repository, and its path."""
    for package in PRODUCTION:
        for path in sorted((ROOT / package).rglob("*.py")):
            yield str(path.relative_to(ROOT)), path
