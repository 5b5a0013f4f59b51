"""The layers of the project, read from the source (ast, nothing imported): two rules hold.

- ``coldchain/`` is the core: it imports nothing else of the project, so every stage can use it
  without pulling in another stage.
- ``launcher/`` is the top: it imports every stage to start it, and no project package imports
  it back. Only the tests and the benchmarks may, for the local PostgreSQL and Mosquitto they
  start and the ``coldchain`` command they drive.

Every import counts, including those inside functions and under ``TYPE_CHECKING``: a lazy import
upward is still an upward arrow.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CORE = "coldchain"
TOP = "launcher"
MAY_IMPORT_TOP = {"tests", "bench"}
NOT_SOURCE = {".venv", ".coldchain", ".git", "build", "node_modules"}


def project_packages(root: Path = ROOT) -> set[str]:
    """The top-level packages: the folders beside the README with an ``__init__.py``."""
    return {p.parent.name for p in root.glob("*/__init__.py")}


def imported_modules(source: str, *, package: str) -> Iterator[tuple[int, str]]:
    """Each absolute module a source file imports, with its line; relative imports resolve to
    ``package`` (they cannot leave it without naming it)."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            yield node.lineno, package if node.level else (node.module or "")


def foreign_imports(source: str, *, package: str, forbidden: set[str]) -> list[tuple[int, str]]:
    """The imports of ``source`` (a file of ``package``) that reach a package in ``forbidden``."""
    return [
        (line, module)
        for line, module in imported_modules(source, package=package)
        if module.split(".")[0] in forbidden
    ]


def python_files(root: Path = ROOT) -> Iterator[Path]:
    for path in root.rglob("*.py"):
        if not NOT_SOURCE & set(path.relative_to(root).parts):
            yield path


def test_the_packages_are_found() -> None:
    """The rules below would pass vacuously if the discovery found nothing."""
    packages = project_packages()
    assert {CORE, TOP, "db", "ingest", "alerts", "api", "tests", "bench"} <= packages


def test_the_checker_sees_every_kind_of_import() -> None:
    source = (
        "import os\n"
        "import db.queries\n"
        "from alerts import engine\n"
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from api.app import create_app\n"
        "def f():\n"
        "    import launcher.cli\n"
        "from . import settings\n"
        "from coldchain.errors import SetupError\n"
        "import dbm\n"
    )
    found = foreign_imports(source, package=CORE, forbidden={"db", "alerts", "api", "launcher"})
    assert found == [(2, "db.queries"), (3, "alerts"), (6, "api.app"), (8, "launcher.cli")]


def test_the_core_imports_nothing_else_of_the_project() -> None:
    forbidden = project_packages() - {CORE}
    upward = {
        f"{path.relative_to(ROOT)}:{line} imports {module}"
        for path in sorted((ROOT / CORE).rglob("*.py"))
        for line, module in foreign_imports(
            path.read_text(encoding="utf-8"), package=CORE, forbidden=forbidden
        )
    }
    assert upward == set(), "coldchain/ is the core: move the code up or the dependency down"


@pytest.mark.parametrize("allowed", sorted(MAY_IMPORT_TOP))
def test_the_allowed_importers_of_the_launcher_are_packages(allowed: str) -> None:
    """An exception for a folder that no longer exists would hide nothing, but say so."""
    assert allowed in project_packages()


def test_nothing_but_tests_and_benchmarks_imports_the_launcher() -> None:
    downward = set()
    for path in python_files():
        top = path.relative_to(ROOT).parts[0]
        if top in MAY_IMPORT_TOP | {TOP}:
            continue
        package = top if path.parent != ROOT else path.stem
        downward |= {
            f"{path.relative_to(ROOT)}:{line} imports {module}"
            for line, module in foreign_imports(
                path.read_text(encoding="utf-8"), package=package, forbidden={TOP}
            )
        }
    assert downward == set(), "launcher/ is the top: no package of the project may import it"
