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


# The packages from the bottom up. A package may import the core and the layers below its own,
# never one above, nor another package of its own layer: so there can be no cycle between
# packages. ``tests`` and ``bench`` stand outside and may import anything.
LAYERS: tuple[frozenset[str], ...] = (
    frozenset({"coldchain"}),
    frozenset({"db"}),
    frozenset({"security"}),
    frozenset({"ingest", "alerts", "simulator"}),
    frozenset({"reports", "traceability"}),
    frozenset({"services"}),
    frozenset({"dashboard"}),
    frozenset({"api"}),
    frozenset({"launcher"}),
)
OUTSIDE = {"tests", "bench"}

# The edges reach the stages only through ``services``: what each may import of the project.
# The CLI also starts the long-running stages and sets the database up, which is the launcher's
# own job, not an operation of the platform.
_EDGE_MAY_IMPORT = ("coldchain", "db.types", "security", "services")
EDGES: dict[str, tuple[str, ...]] = {
    "api": (*_EDGE_MAY_IMPORT, "api", "dashboard"),
    "dashboard": (*_EDGE_MAY_IMPORT, "dashboard"),
    "launcher/cli": (
        *_EDGE_MAY_IMPORT,
        "launcher",
        "db.migrate",
        "db.roles",
        "ingest.service",
        "ingest.sink",
        "alerts.service",
        "simulator.service",
        "api.app",
    ),
}

# Being moved behind the service layer right now (issue 12); each entry goes as its file does.
PENDING: set[str] = {
    "api/app.py",
    "api/deps.py",
    "api/routers/alerts.py",
    "api/routers/audit.py",
    "api/routers/dispositions.py",
    "api/routers/epcis.py",
    "api/routers/excursions.py",
    "api/routers/health.py",
    "api/routers/readings.py",
    "api/routers/recalls.py",
    "api/routers/reports.py",
    "api/routers/rules.py",
    "api/routers/shipments.py",
    "api/routers/units.py",
    "api/routers/users.py",
    "dashboard/pages/alerts.py",
    "dashboard/pages/fleet.py",
    "dashboard/pages/passport.py",
    "dashboard/pages/qa.py",
    "dashboard/pages/shipment.py",
    "launcher/cli/accounts.py",
    "launcher/cli/trace.py",
}


def _pending_file(finding: str) -> str:
    return finding.split(":")[0]


def layer_of(package: str) -> int:
    return next(i for i, layer in enumerate(LAYERS) if package in layer)


def test_every_package_has_a_layer() -> None:
    placed = set().union(*LAYERS)
    assert project_packages() - OUTSIDE == placed


def upward_imports(root: Path = ROOT) -> set[str]:
    """Every import of a package of the same layer or a higher one, as ``file:line imports x``."""
    found = set()
    packages = project_packages(root) - OUTSIDE
    for package in sorted(packages):
        for path in sorted((root / package).rglob("*.py")):
            for line, module in imported_modules(path.read_text(encoding="utf-8"), package=package):
                target = module.split(".")[0]
                upward = target in packages and layer_of(target) >= layer_of(package)
                if upward and target != package:
                    found.add(f"{path.relative_to(root)}:{line} imports {module}")
    return found


def test_no_package_imports_its_own_layer_or_one_above() -> None:
    pending = {_pending_file(p) for p in PENDING}
    assert {f for f in upward_imports() if _pending_file(f) not in pending} == set()


def edge_imports(root: Path = ROOT) -> set[str]:
    """Imports by the API, the dashboard and the CLI that bypass the service layer."""
    found = set()
    packages = project_packages(root)
    for edge, allowed in sorted(EDGES.items()):
        for path in sorted((root / edge).rglob("*.py")):
            package = edge.split("/")[0]
            for line, module in imported_modules(path.read_text(encoding="utf-8"), package=package):
                if module.split(".")[0] not in packages:
                    continue
                if not any(module == ok or module.startswith(ok + ".") for ok in allowed):
                    found.add(f"{path.relative_to(root)}:{line} imports {module}")
    return found


def test_the_api_the_dashboard_and_the_cli_go_through_services() -> None:
    pending = {_pending_file(p) for p in PENDING}
    found = {f for f in edge_imports() if _pending_file(f) not in pending}
    assert found == set()


def test_the_layer_rules_catch_a_planted_import(tmp_path: Path) -> None:
    """Both rules fail on a router that reads the database itself and a stage that imports the
    service layer."""
    for package in ("coldchain", "db", "security", "alerts", "services", "api", "tests"):
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
    (tmp_path / "api" / "routers.py").write_text("from db.queries import alerts\n")
    (tmp_path / "alerts" / "x.py").write_text("from services import caller\n")
    assert edge_imports(tmp_path) == {"api/routers.py:1 imports db.queries"}
    assert "alerts/x.py:1 imports services" in upward_imports(tmp_path)
