"""A logger's calibration as people judge it: expired, due soon or fine (pure).

One definition for the loggers page and the answers to "which loggers are due for
calibration?" (:mod:`services.ask_default`).
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Final

__all__ = ["DUE_SOON", "calibration_status"]

#: A calibration due within this many days is flagged "due soon".
DUE_SOON: Final = timedelta(days=30)


def calibration_status(due: date | None, today: date) -> str | None:
    """``expired`` (due before today), ``due soon`` (within :data:`DUE_SOON`), ``ok``, or None
    when no due date is recorded."""
    if due is None:
        return None
    if due < today:
        return "expired"
    if due - today <= DUE_SOON:
        return "due soon"
    return "ok"
