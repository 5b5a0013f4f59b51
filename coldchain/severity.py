"""Alert severity: the one definition of its names, their order and their rank.

``info < warning < major < critical``. Ranks start at 1 so that 0 (or SQL's
``coalesce(rank, 0)``) can mean "no alert at all"; nothing stores a rank, only the name.

Where SQL needs the rank (the fleet's worst severity, the alert list's order), it uses the
``CASE`` expressions below, generated from :data:`SEVERITIES`, so SQL and Python cannot rank
differently. The database's own ``CHECK (severity IN (...))`` constraints (migrations 0003 and
0004) list the same names; ``tests/coldchain/test_severity.py`` checks them against the real
database.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Literal, get_args

Severity = Literal["info", "warning", "major", "critical"]

#: The names, weakest first.
SEVERITIES: tuple[Severity, ...] = get_args(Severity)

#: The names, strongest first (how lists and filters show them).
STRONGEST_FIRST: tuple[Severity, ...] = tuple(reversed(SEVERITIES))

#: Rank of each name: info 1 … critical 4 (0 is "none").
RANK: Mapping[str, int] = {name: i for i, name in enumerate(SEVERITIES, start=1)}


def stronger(a: str, b: str) -> str:
    """The stronger of two severities (``a`` when they are equal)."""
    return a if RANK[a] >= RANK[b] else b


def strongest(severities: Iterable[str | None]) -> str | None:
    """The strongest of some severities (None when there are none)."""
    found = [s for s in severities if s is not None]
    if not found:
        return None
    return max(found, key=RANK.__getitem__)


def rank_sql(column: str) -> str:
    """A SQL expression: the :data:`RANK` of the severity in ``column`` (NULL for NULL)."""
    whens = " ".join(f"WHEN '{name}' THEN {rank}" for name, rank in RANK.items())
    return f"CASE {column} {whens} END"


def name_sql(rank_column: str) -> str:
    """A SQL expression: the severity whose :data:`RANK` is in ``rank_column`` (NULL for none)."""
    whens = " ".join(f"WHEN {rank} THEN '{name}'" for name, rank in RANK.items())
    return f"CASE {rank_column} {whens} END"
