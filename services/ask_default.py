"""The default answerer (issue 17): a question in plain words answered on this machine, with no
model and no network.

:func:`answer` reads the question (:func:`coldchain.ask.understand.understand`, with the names of
the master data as its vocabulary), resolves the reference-like words it found against the
database (a shipment, an external reference such as a purchase order, a logger), and hands the
question to the resolver of its intent (:mod:`services.ask_resolvers`). Every figure of the
answer comes from a read-only service function or a named query of :mod:`db.queries.ask`, whose
names the answer lists (:attr:`Answer.queries`, :attr:`Figure.source`); nothing is invented.

When it cannot answer, it says so: a reference that names nothing gets "I could not find …"
with the nearest references there are; a question it does not understand gets "I could not
understand …" with examples that work. Data that needs a permission (the audit trail:
``audit.read``; people and API keys: ``admin``) is answered only for callers who have it;
others get "You may not see …" and no data.

Read only: it writes nothing, not even a log (the log of questions is :mod:`services.ask`'s).
"""

from __future__ import annotations

import difflib
from datetime import datetime

from coldchain.ask.answer import Answer
from coldchain.ask.understand import Question, Vocabulary, understand
from coldchain.settings import Settings
from db.queries import ask as ask_q
from db.types import Conn
from services import ask_resolvers as resolve
from services.ask_draft import Context, Resolved
from services.caller import Caller

__all__ = ["EXAMPLES", "MAX_QUESTION_LENGTH", "answer"]

#: The longest question read (longer: "I could not understand …", nothing run).
MAX_QUESTION_LENGTH = 500

#: Questions the answerer understands: the help, and the suggestions when it understood nothing.
EXAMPLES: tuple[str, ...] = (
    "What is the status of SHP-0001?",
    "Which shipments from Basel had excursions last month?",
    "Where is pallet 00106141412345678908?",
    "How many shipments are in transit to Milan?",
    "Which alerts are unacknowledged?",
    "Which loggers have a low battery?",
    "Which shipments are awaiting QA review?",
    "Which shipments carried lot L123?",
)

_VOCABULARY_QUERY = "db.queries.ask.vocabulary"
_RESOLVE_QUERY = "db.queries.ask.resolve_keys"


def _vocabulary(conn: Conn) -> Vocabulary:
    rows = ask_q.vocabulary(conn=conn)
    return Vocabulary(
        sites=tuple(r["value"] for r in rows if r["kind"] == "site" and r["value"]),
        carriers=tuple(r["value"] for r in rows if r["kind"] == "carrier" and r["value"]),
        products=tuple((r["gtin"], r["value"]) for r in rows if r["kind"] == "product"),
        lanes=tuple(r["value"] for r in rows if r["kind"] == "lane"),
    )


def _keys(word: str, kind: str | None) -> list[str]:
    """The spellings an external reference may be stored under: "5829" after "PO" is also
    "PO5829", "PO-5829" and "PO 5829"."""
    keys = [word]
    if kind == "purchase_order" or (kind is None and word.isdigit()):
        keys += [f"PO{word}", f"PO-{word}", f"PO {word}"]
    if kind == "sales_order":
        keys += [f"SO{word}", f"SO-{word}", f"SO {word}"]
    return keys


def _resolve(conn: Conn, question: Question) -> Resolved:
    """The shipments and loggers the question's reference-like words name, and those that name
    nothing."""
    if not question.references:
        return Resolved()
    spellings = {w: _keys(w, kind) for w, kind in question.references}
    rows = ask_q.resolve_keys(conn=conn, keys=[k for ks in spellings.values() for k in ks])
    by_key: dict[str, list[dict[str, str]]] = {}
    for r in rows:
        by_key.setdefault(r["key"], []).append(r)
    shipments: list[tuple[str, str | None]] = []
    loggers: list[str] = []
    missing: list[str] = []
    for word, keys in spellings.items():
        found = [r for k in keys for r in by_key.get(k.upper(), [])]
        if not found:
            missing.append(word)
        for r in found:
            if r["kind"] == "logger":
                loggers.append(r["reference"])
            else:
                via = None if r["kind"] == "shipment" else _ref_label(r)
                shipments.append((r["reference"], via))
    return Resolved(tuple(dict.fromkeys(shipments)), tuple(dict.fromkeys(loggers)), tuple(missing))


def _ref_label(row: dict[str, str]) -> str:
    kind = {"purchase_order": "purchase order", "sales_order": "sales order"}.get(
        row["ref_kind"], f"{row['ref_kind']} reference"
    )
    return f"{kind} {row['ref_value']}"


def _not_found(conn: Conn, question: Question, missing: tuple[str, ...]) -> Answer:
    """ "I could not find …", with the references most like the missing ones."""
    near: list[str] = []
    spelled: dict[str, str] = {}  # upper case -> as stored
    for word in missing:
        pool = ask_q.near_references(conn=conn, key=word)
        spelled |= {p.upper(): p for p in pool}
        near += difflib.get_close_matches(word.upper(), list(spelled), n=3, cutoff=0.5)
    near = [spelled[n] for n in dict.fromkeys(near)]
    suggestions = tuple(f"What is the status of {n}?" for n in near[:3])
    names = ", ".join(missing)
    hint = (
        f" Did you mean {', '.join(near[:3])}?"
        if near
        else " Check the reference, the purchase order or the logger serial."
    )
    return Answer(
        question=question.text,
        understood=True,
        text=f"I could not find a shipment, external reference or logger named {names}.{hint}",
        queries=(_VOCABULARY_QUERY, _RESOLVE_QUERY, "db.queries.ask.near_references"),
        suggestions=suggestions,
        intent=question.intent,
    )


def not_understood(question: str, words: tuple[str, ...] = ()) -> Answer:
    """ "I could not understand …", with examples that work."""
    said = f" (I did not recognise: {', '.join(words[:5])})" if words else ""
    return Answer(
        question=question,
        understood=False,
        text=(
            f"I could not understand the question{said}. I answer questions about shipments, "
            "excursions, alerts, units and lots, loggers and QA decisions; try one of these."
        ),
        suggestions=EXAMPLES[:5],
        intent=None,
    )


def answer(
    conn: Conn, caller: Caller, question: str, *, now: datetime, settings: Settings
) -> Answer:
    """The answer to ``question`` for ``caller`` as of ``now`` (module docstring)."""
    text = question.strip()
    if not text:
        return not_understood(question)
    if len(text) > MAX_QUESTION_LENGTH:
        return Answer(
            question=text[:MAX_QUESTION_LENGTH],
            understood=False,
            text=f"I could not understand the question: it is {len(text):,} characters long, "
            f"and a question has at most {MAX_QUESTION_LENGTH}.",
            suggestions=EXAMPLES[:5],
        )
    vocabulary = _vocabulary(conn)
    parsed = understand(text, vocabulary, now=now)
    if parsed.intent is None:
        return not_understood(text, parsed.unknown)
    if parsed.unreadable and not parsed.identifiers and not parsed.references:
        raw, why = parsed.unreadable[0]
        return Answer(
            question=text,
            understood=True,
            text=f"I could not read the identifier {raw}: {why}.",
            queries=(_VOCABULARY_QUERY,),
            suggestions=EXAMPLES[2:3],
            intent=parsed.intent,
        )
    resolved = _resolve(conn, parsed)
    intent = parsed.intent
    if resolved.loggers and not resolved.shipments and intent not in ("help", "audit", "people"):
        intent = "loggers"  # "excursions of LOG-7" is about the logger, not every excursion
    if resolved.missing and not resolved.shipments and not resolved.loggers:
        return _not_found(conn, parsed, resolved.missing)
    ctx = Context(conn, caller, parsed, resolved, now, settings)
    base = (_VOCABULARY_QUERY, _RESOLVE_QUERY) if parsed.references else (_VOCABULARY_QUERY,)
    if intent == "help":
        return Answer(
            question=text,
            understood=True,
            text="Ask me about shipments, excursions, alerts, units and lots, loggers and QA "
            "decisions, in plain words. For example:",
            suggestions=EXAMPLES,
            intent="help",
        )
    result = resolve.RESOLVERS[intent](ctx)
    if resolved.missing:
        result.text += f" I could not find {', '.join(resolved.missing)}."
    return Answer(
        question=text,
        understood=True,
        text=result.text,
        figures=tuple(result.figures),
        links=tuple(result.links),
        queries=tuple(dict.fromkeys((*base, *result.queries))),
        suggestions=tuple(result.suggestions),
        intent=intent,
        extra=result.extra,
    )
