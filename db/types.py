"""The connection and row types every query module and its callers share.

The web process lends connections whose rows come back as dicts (``row_factory=dict_row``);
the named queries in :mod:`db.queries` take such a connection as ``conn`` and return
:data:`Row` dicts, or a :class:`Page` of them for a filtered list.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from psycopg import Connection
from psycopg.rows import DictRow

#: A pooled connection of the web process; rows come back as dicts.
Conn = Connection[DictRow]
Row = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a filtered list, with the number of rows the filter matches in all."""

    items: list[Row]
    total: int
    limit: int
    offset: int
