"""What the master-data commands share (``coldchain products|loggers|locations|carriers|lanes``):
``--set field=value`` options, the printing of records and import reports, and the refusals of
the services turned into one line on stderr and an exit code.

The commands act as :meth:`services.caller.Caller.console` (recorded as ``cli:<os user>``).
Exit codes: 0 done; 1 refused (a bad value, a stale version, a conflict, an import with bad
rows); 2 usage.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Mapping, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any

import typer

from coldchain.errors import ColdchainError
from services.csvimport import ImportResult

SetOption = typer.Option(
    "--set",
    "-s",
    metavar="FIELD=VALUE",
    help="A field and its value (repeat the option); an empty value clears the field.",
)


def parse_sets(pairs: list[str] | None) -> dict[str, Any]:
    """``["name=Vaxigrip", "temp_max_c=8"]`` as a dict (values as text: the models convert)."""
    out: dict[str, Any] = {}
    for pair in pairs or []:
        field, sep, value = pair.partition("=")
        if not sep or not field.strip():
            typer.echo(f"error: --set {pair!r} is not FIELD=VALUE", err=True)
            raise typer.Exit(2)
        out[field.strip()] = value.strip() or None
    return out


@contextlib.contextmanager
def refusals() -> Iterator[None]:
    """A refusal of the services (or of validation) as one line on stderr and exit code 1."""
    from pydantic import ValidationError

    try:
        yield
    except ValidationError as exc:
        for e in exc.errors():
            where = ".".join(str(p) for p in e["loc"]) or "record"
            typer.echo(f"error: {where}: {e['msg']}", err=True)
        raise typer.Exit(1) from None
    except ColdchainError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def show(row: Mapping[str, Any]) -> None:
    """A record as indented JSON."""
    typer.echo(json.dumps({k: _plain(v) for k, v in row.items()}, indent=2, default=str))


def table(rows: Sequence[Mapping[str, Any]], columns: tuple[str, ...]) -> None:
    """Records as aligned columns."""
    cells = [
        [str(_plain(r.get(c)) if r.get(c) is not None else "—") for c in columns] for r in rows
    ]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(columns)]
    typer.echo("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip())
    for row in cells:
        typer.echo("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())


def read_file(path: Path) -> str:
    """A CSV file's text (UTF-8, a byte-order mark allowed)."""
    try:
        return path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        typer.echo(f"error: cannot read {path}: {exc}", err=True)
        raise typer.Exit(2) from None


def report_import(result: ImportResult, path: Path, *, skip_bad: bool) -> None:
    """Every bad row with its line and field; what was applied; exit 1 when nothing was because
    of bad rows."""
    for problem in result.problems:
        typer.echo(f"{path}: {problem}", err=True)
    if result.problems and not skip_bad:
        typer.echo(
            f"{path}: {len(result.problems)} problem(s) in "
            f"{len({p.line for p in result.problems})} row(s); nothing applied "
            "(fix them, or --skip-bad to apply the good rows)",
            err=True,
        )
        raise typer.Exit(1)
    if result.skipped_lines:
        lines = ", ".join(str(n) for n in result.skipped_lines)
        typer.echo(f"{path}: skipped {len(result.skipped_lines)} bad row(s): lines {lines}")
    typer.echo(f"{path}: {result.applied} applied, {result.unchanged} already registered as given")
