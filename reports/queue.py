"""The QA exceptions queue: which shipments need a QA decision, and in which order (pure).

A shipment **needs a decision** when it is back under control and QA has not closed it:
``arrived`` or ``under_review`` (no disposition for the whole shipment yet: its report is
unsigned), or ``quarantined`` (held: still QA's) with an excursion or an exception verdict.

The queue is ordered by **risk**, the riskiest first:

1. the severity: the worst alert the shipment raised (:mod:`coldchain.severity`), raised to
   ``major`` by an exception verdict at arrival (a budget, limit or cycle broken is an alarm for
   QA whatever the alert said);
2. the time out of range (its current excursions, summed);
3. the largest share of a stability budget used (the arrival verdict's bands);
4. the waiting time: the longest waiting first (arrived earliest).

The rows are the service's merged reads (:func:`services.reports.qa_index`); this module only
judges and orders them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, Final

from coldchain import severity

#: The states in which a shipment may wait for QA.
QUEUE_STATES: Final[tuple[str, ...]] = ("arrived", "under_review", "quarantined")
#: The severity an exception verdict counts as, at least.
EXCEPTION_SEVERITY: Final[str] = "major"


def needs_decision(row: Mapping[str, Any]) -> bool:
    """Whether QA still has to decide about the shipment (module docstring)."""
    status = row["status"]
    if status in ("arrived", "under_review"):
        return True
    if status == "quarantined":
        return bool(row["excursions"]) or bool(row.get("has_exception"))
    return False


def risk_severity(row: Mapping[str, Any]) -> str | None:
    """The severity the queue ranks the shipment by: its worst alert, at least ``major`` with an
    exception verdict; None when nothing was raised."""
    found = [row.get("worst_severity")]
    if row.get("has_exception"):
        found.append(EXCEPTION_SEVERITY)
    return severity.strongest(found)


def risk_key(row: Mapping[str, Any]) -> tuple[float, float, float, float]:
    """A sort key, smallest first = riskiest first (module docstring)."""
    sev = risk_severity(row)
    share = row.get("max_budget_share")
    arrived: datetime | None = row.get("arrived_at")
    return (
        -(severity.RANK[sev] if sev else 0),
        -float(row.get("time_out_s") or 0.0),
        -(float(share) if share is not None and not math.isnan(share) else 0.0),
        arrived.timestamp() if arrived is not None else math.inf,
    )


def exceptions_first(rows: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The shipments needing a decision, riskiest first (ties: by reference)."""
    queue = [r for r in rows if needs_decision(r)]
    return sorted(queue, key=lambda r: (risk_key(r), r["reference"]))


def peak_c(row: Mapping[str, Any]) -> float | None:
    """The excursions' peak: the highest reading above the range, else the lowest below it."""
    high, low = row.get("peak_high_c"), row.get("peak_low_c")
    return float(high) if high is not None else (float(low) if low is not None else None)


def verdict_of(row: Mapping[str, Any]) -> str:
    """The arrival verdict in words: ``exception``, ``conforming`` or ``not judged``."""
    verdicts = row.get("verdicts") or []
    if not verdicts:
        return "not judged"
    return "exception" if row.get("has_exception") else "conforming"
