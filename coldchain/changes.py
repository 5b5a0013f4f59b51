"""Following the change log (``reading_changes``) without skipping a commit: the cursor's rule.

The ingester records what each commit of readings changed in ``reading_changes``; the rules
engine (one cursor per partition, :mod:`alerts.partitions`) and the lifecycle automation
(:mod:`services.automation`) follow it, each with its position in ``engine_cursor``, moved in the
same transaction as the work the changes caused. This module is the rule by which a position
moves; the statements are in :mod:`db.queries.rules` (``HORIZON``, ``PENDING_CHANGES``) and
:mod:`db.queries.partitions` (the cursor rows), the columns in db/migrations/0022.

**Why ``change_id > cursor`` is not enough.** ``change_id`` is an identity drawn when the row is
inserted, not when its transaction commits, and writers commit out of id order (the ingester
has two writer tasks). Writer A draws 100, writer B draws 101 and commits; a round sees 101,
takes it and moves to 101; A commits 100 afterwards, and no later ``change_id > 101`` returns
it. Its (shipment, logger) pair would be judged again only at its next change: a logger whose
last upload was passed over could keep an excursion unfound and an alert unraised.

**The horizon.** Each row records ``xid``, the top-level id of the transaction that wrote it
(``pg_current_xact_id()``, the column's default; subtransactions record their parent's). A
round reads the horizon ``H = pg_snapshot_xmin(pg_current_snapshot())``: the oldest transaction
id still running when the statement's snapshot was taken. Every transaction below ``H`` has
ended, committed or rolled back, so the rows of those that committed are all visible to this
snapshot and to every later one, and no row with ``xid < H`` can appear afterwards. (Ids are
given in increasing order and a transaction draws its id when it first writes, before its rows
exist, so a row that appears later belongs to a transaction that is running now, whose id is
``>= H``, or to one not started yet, whose id will be higher still.)

A position is the pair ``(xid, change_id)``, and the rows are taken in that order::

    WHERE (xid, change_id) > (cursor_xid, cursor_change_id) AND xid < H
    ORDER BY xid, change_id LIMIT n

- If ``n`` rows came back, the position moves to the last one: the rows of the same
  transactions after it, and of the later ones below ``H``, are taken by the next read.
- If fewer came back, every row below ``H`` after the position has been taken, and the position
  moves to ``(H, 0)`` (change ids start at 1): the next read starts with the transaction ``H``.

So no committed row is ever behind a position without having been taken (none skipped), and a
row is taken by the read that passes it and by no later one (none repeated; the consumer's work
and the position's move commit together). Rows of transactions still running are taken in a
later round, once their transaction has ended. The statement that reads ``H`` is the one whose
snapshot then reads the rows, or comes before it in the same transaction: in READ COMMITTED the
later statement's snapshot sees everything the earlier one did, in REPEATABLE READ they share it.

**The cost.** ``H`` is the oldest *writing* transaction in the whole PostgreSQL cluster (every
database of it; read-only transactions draw no id and hold nothing back). While one stays open,
the consumers take nothing written after it started: the alerts wait for it. The platform's
writers are short (a batch of the ingester, a round of the engine, one CSV import file); an
operator's ``BEGIN`` left open in psql holds the alerts back until it ends
(docs/RULES_PERFORMANCE.md, "The change log's horizon").
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from typing import NamedTuple


class Position(NamedTuple):
    """A place in the change log: after every row ``(xid, change_id) <= (xid, change_id)``."""

    xid: int
    change_id: int


START = Position(0, 0)


def next_position(taken: Sequence[Position], *, limit: int, horizon: int) -> Position:
    """Where a cursor moves after a read of at most ``limit`` rows below ``horizon`` returned
    ``taken`` (in order): the last row when the read was full, else ``(horizon, 0)``."""
    if len(taken) >= limit:
        return taken[-1]
    return Position(horizon, 0)


def first_after(taken: Sequence[Position], position: Position) -> int:
    """How many of ``taken`` (in order) are at or behind ``position``: those after it start there."""
    return bisect_right(taken, position)
