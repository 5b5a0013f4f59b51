"""Bulk files of master data (``coldchain products|loggers|locations import FILE.csv``): the whole
file is validated before anything is applied, and every bad row is reported with its line and
field.

Pure: text in, rows or problems out. A row is validated by the same pydantic model the API
validates a request body with (one definition of what a record may be); an empty cell is an
absent field (the model's default applies). Line numbers are the file's own (the header is line
1), also when a quoted cell spans lines. The services apply the good rows in one transaction,
and only when there is no problem, unless the caller asked to skip the bad ones.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from coldchain.errors import InvalidRecordError

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class RowProblem:
    """Why one row of a file cannot be applied: where (line, field) and what."""

    line: int
    field: str
    message: str

    def __str__(self) -> str:
        return f"line {self.line}, {self.field}: {self.message}"


@dataclass
class ImportResult:
    """What an import did: rows applied, rows already there as given, rows skipped and why."""

    applied: int = 0
    unchanged: int = 0
    problems: list[RowProblem] = field(default_factory=list)
    skipped_lines: list[int] = field(default_factory=list)
    # What each applied row produced that is shown once (a logger's MQTT password), by key.
    issued: dict[str, str] = field(default_factory=dict)


def message(text: str) -> str:
    """A validation message without pydantic's "Value error, " prefix."""
    return text.removeprefix("Value error, ")


def _loc(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "row"


def parse_rows(
    text: str,
    model: type[M],
    *,
    required_columns: tuple[str, ...],
    convert: Callable[[dict[str, str]], dict[str, Any]] | None = None,
    check: Callable[[M], object] | None = None,
) -> tuple[list[tuple[int, M]], list[RowProblem]]:
    """The valid rows of a CSV file (with their line) and a problem per bad cell or row.

    ``convert`` turns a row's non-empty cells into the model's input (a compact column into an
    object, say) and may raise :class:`InvalidRecordError` naming the column; ``check`` runs on
    a valid record for rules beyond the model (a stability profile's bands)."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    header = reader.fieldnames or []
    missing = [c for c in required_columns if c not in header]
    if missing:
        return [], [RowProblem(1, c, "required column missing from the header") for c in missing]
    unknown = [c for c in header if c not in model.model_fields and c not in required_columns]
    if convert is None and unknown:
        return [], [RowProblem(1, c, "unknown column") for c in unknown]
    good: list[tuple[int, M]] = []
    problems: list[RowProblem] = []
    line = 1
    for raw in reader:
        start = line + 1
        line = reader.line_num
        if None in raw:  # more cells than the header has columns
            problems.append(RowProblem(start, "row", "more cells than the header has columns"))
            continue
        cells = {k: v.strip() for k, v in raw.items() if v is not None and v.strip() != ""}
        if not cells:
            continue  # a blank line
        try:
            data: Mapping[str, Any] = convert(cells) if convert is not None else cells
            record = model.model_validate(data)
            if check is not None:
                check(record)
        except ValidationError as exc:
            problems += [
                RowProblem(start, _loc(tuple(e["loc"])), message(e["msg"])) for e in exc.errors()
            ]
            continue
        except InvalidRecordError as exc:
            problems.append(RowProblem(start, exc.field, str(exc).removeprefix(f"{exc.field}: ")))
            continue
        good.append((start, record))
    return good, problems
