"""The ``coldchain`` command after the move to ``launcher/``: same name, same tree, both ways in."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import entry_points

import typer
from typer.main import get_command

from launcher.cli import app

TREE = {
    "ingest": None,
    "rules": None,
    "automate": None,
    "web": None,
    "simulate": None,
    "history": None,
    "logger": None,
    "up": None,
    "passport": None,
    "ask": None,
    "db": ["migrate"],
    "epcis": ["import", "export"],
    "recalls": ["add", "list"],
    "users": ["add", "list", "revoke", "ack-pin"],
    "apikeys": ["create", "revoke"],
    "devices": ["provision"],
    "products": ["list", "show", "add", "update", "retire", "import"],
    "loggers": ["list", "show", "add", "update", "retire", "import"],
    "locations": ["list", "show", "add", "update", "retire", "import"],
    "carriers": ["list", "show", "add", "update", "retire", "import"],
    "lanes": ["list", "show", "add", "update", "retire", "import"],
    "shipments": [
        "create",
        "show",
        "attach",
        "detach",
        "start",
        "arrive",
        "cancel",
        "timeline",
        "import",
    ],
    "policies": ["list", "add", "revoke"],
    "audit": ["verify"],
    "insight": ["lanes", "carriers", "report"],
    "oncall": ["list", "now", "add", "override"],
    "notify": ["test"],
}


def test_the_console_script_is_still_called_coldchain_and_loads_the_launcher() -> None:
    (script,) = entry_points(group="console_scripts", name="coldchain")
    assert script.value == "launcher.cli:app"
    assert script.load() is app


def test_the_command_tree_is_unchanged_in_its_order() -> None:
    root = get_command(app)
    assert isinstance(root, typer.core.TyperGroup)
    ctx = typer.Context(root)
    tree = {}
    for name in root.list_commands(ctx):
        command = root.get_command(ctx, name)
        assert command is not None
        tree[name] = (
            command.list_commands(ctx) if isinstance(command, typer.core.TyperGroup) else None
        )
    assert tree == TREE
    assert list(tree) == list(TREE)


def test_python_m_launcher_cli_runs_the_same_command() -> None:
    """How the supervisor, the tests and the benchmarks start a stage's process."""
    done = subprocess.run(
        [sys.executable, "-m", "launcher.cli", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    for name in TREE:
        assert name in done.stdout
