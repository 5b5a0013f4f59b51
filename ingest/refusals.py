"""What a failed write means: the database is away (retry), or it refuses the data (split).

Pure functions of the exception, used by :class:`ingest.service.Ingester` when a commit fails
(issue 11; the ingester's docstring tells the whole policy): a batch the database is away for is
held and retried with backoff; one it refuses is split until the refused message is alone, and
that message is dead-lettered only if the refusal is about its own values.
"""

from __future__ import annotations

import struct

import psycopg

__all__ = ["caused_by_data", "refused_by_database"]

#: SQLSTATE classes that mean "the database is away or busy", not "it refuses this data":
#: connection (08), transaction rollback (40), resources (53), object state (55), operator
#: intervention (57), system (58), internal (XX).
_OUTAGE_CLASSES = frozenset(("08", "40", "53", "55", "57", "58", "XX"))


def refused_by_database(exc: BaseException) -> bool:
    """True when a write failed because of the data it carried, so retrying it cannot help."""
    if isinstance(exc, psycopg.Error):
        state = exc.sqlstate
        if state is None:  # raised by the driver: an encoding refusal, or a connection lost
            return not isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError)
        return state[:2] not in _OUTAGE_CLASSES
    # Encoding a value the parser let through (the array encoders, UTF-8) fails the same way
    # every time; anything else (OSError, a pool timeout) is treated as an outage.
    return isinstance(exc, ValueError | TypeError | OverflowError | struct.error)


#: SQLSTATE classes in which the data itself is at fault: data exception (22), integrity
#: constraint (23), program limit (54: a value too large to store). A lone message refused for
#: any other reason (say 42501, a missing grant, or 42P01, a missing table) points at the
#: deployment, which would refuse every message alike: it is retried, loudly, not dead-lettered.
_DATA_CLASSES = frozenset(("22", "23", "54"))


def caused_by_data(exc: BaseException) -> bool:
    """True when a refusal is about the message's own values, so dead-lettering it is right."""
    if isinstance(exc, psycopg.Error) and exc.sqlstate is not None:
        return exc.sqlstate[:2] in _DATA_CLASSES
    return refused_by_database(exc)  # the driver's own refusals: encoding, NUL, range
