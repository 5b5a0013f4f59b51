"""What products, loggers, locations, carriers and lanes share as master data: a ``version``
that each change names (lost updates refused), and retirement instead of deletion."""

from __future__ import annotations

from typing import Annotated

from pydantic import StringConstraints

from coldchain.errors import NotFoundError, RecordConflictError, VersionConflictError
from db.types import Row

#: Why a change is made: required, recorded in the audit trail with it.
Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]


def require_live(row: Row | None, what: str, expected_version: int) -> Row:
    """``row`` if it exists, is not retired and is at ``expected_version``; else NotFoundError,
    RecordConflictError (retired) or VersionConflictError (changed since the caller read it)."""
    if row is None:
        raise NotFoundError(f"{what} not found")
    if row["retired_at"] is not None:
        raise RecordConflictError(
            f"{what} was retired on {row['retired_at']:%Y-%m-%d}: a retired record is kept "
            "as it was and cannot change"
        )
    if row["version"] != expected_version:
        raise VersionConflictError(
            f"{what} is at version {row['version']}, not {expected_version}: it changed since "
            "you read it; read it again and redo your change"
        )
    return row
