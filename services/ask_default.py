"""The default answerer (no model, no network): a placeholder until slice (a) of issue 17 lands.

It understands nothing yet, and says so; the real answerer replaces this module whole, with the
same signature (:func:`answer`).
"""

from __future__ import annotations

from datetime import datetime

from coldchain.ask.answer import Answer
from coldchain.settings import Settings
from db.types import Conn
from services.caller import Caller

SUGGESTIONS = (
    "What is the status of SHP-0001?",
    "Which shipments had excursions last week?",
    "Where is pallet 00106141412345678908?",
)


def answer(
    conn: Conn, caller: Caller, question: str, *, now: datetime, settings: Settings
) -> Answer:
    """The answer to ``question``: not understood, with questions that will be."""
    del conn, caller, now, settings  # read by the real answerer
    return Answer(
        question=question,
        understood=False,
        text="I could not understand that question yet.",
        suggestions=SUGGESTIONS,
    )
