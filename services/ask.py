"""Asking the platform in plain words (README "Ask"): the one entry the API
(``POST /api/v1/ask``), the dashboard's Ask box and ``coldchain ask`` call, and the log of
every question and answer that administrators read.

:func:`ask` checks the question (non-empty, at most :data:`MAX_QUESTION_LENGTH` characters, no
control character: :class:`~coldchain.errors.InvalidQuestionError` naming ``question``), picks the answerer, and
writes one ``ask_log`` row (who, when, from where, the answer whole, its queries, how long it
took) before returning the answer:

- the default answerer (:func:`services.ask_default.answer`: on this machine, no model, no
  network) unless the language model is enabled (``ask.llm_enabled`` and ``ask.llm_url``);
- the language model (:func:`services.ask_llm.answer`) when it is; if its endpoint fails, the
  default answerer answers and the answer says so (``extra["fallback"]``, and in its text).

Role checks: asking needs ``read`` (every role). What an answer may contain is decided where the
data is read: both answerers read through the service functions with the asker's caller, so a
restricted read (the audit trail: ``audit.read``) is refused for a role without it.

The log is the administrators' (``admin``): it holds every person's questions, which say what
they were looking into; QA's ``audit.read`` is about changes to records, and a question changes
nothing. :func:`list_ask_log` checks it.
"""

from __future__ import annotations

import dataclasses
import logging
import time
import unicodedata
from datetime import datetime

from coldchain.ask.answer import Answer
from coldchain.errors import InvalidQuestionError, LanguageModelError
from coldchain.settings import Settings
from db.queries import ask_log as q
from db.types import Conn, Row
from services import ask_default, ask_llm
from services.caller import Caller

log = logging.getLogger(__name__)

#: The longest question taken (characters, after trimming).
MAX_QUESTION_LENGTH = 500


def check_question(question: str | None) -> str:
    """The question with its runs of spaces and line breaks made one space; InvalidQuestionError
    (field ``question``) when empty, too long, or with a control character (NUL, escape…:
    nothing a person types, and NUL cannot be stored)."""
    text = " ".join((question or "").split())
    control = next((c for c in text if unicodedata.category(c) == "Cc"), None)
    if control is not None:
        raise InvalidQuestionError(
            "question", f"contains the control character U+{ord(control):04X}: remove it"
        )
    if not text:
        raise InvalidQuestionError("question", "ask something: the question is empty")
    if len(text) > MAX_QUESTION_LENGTH:
        raise InvalidQuestionError(
            "question",
            f"{len(text)} characters; at most {MAX_QUESTION_LENGTH}: ask a shorter question",
        )
    return text


def _with_fallback(
    conn: Conn, caller: Caller, question: str, *, now: datetime, settings: Settings
) -> Answer:
    """The model's answer, else the default answerer's with why."""
    try:
        return ask_llm.answer(conn, caller, question, now=now, settings=settings)
    except LanguageModelError as exc:
        log.warning("ask: the language model did not answer (%s); default answerer used", exc)
        answer = ask_default.answer(conn, caller, question, now=now, settings=settings)
        why = f"The language model did not answer ({exc}); this is the default answerer's answer."
        return dataclasses.replace(
            answer, text=f"{why} {answer.text}", extra={**answer.extra, "fallback": str(exc)}
        )


def ask(conn: Conn, caller: Caller, question: str, *, now: datetime, settings: Settings) -> Answer:
    """The answer to ``question`` for ``caller``, logged."""
    caller.require("read")
    text = check_question(question)
    started = time.perf_counter()
    if settings.ask.uses_llm:
        answer = _with_fallback(conn, caller, text, now=now, settings=settings)
    else:
        answer = ask_default.answer(conn, caller, text, now=now, settings=settings)
    duration_ms = (time.perf_counter() - started) * 1000
    q.insert_ask(
        conn=conn,
        asked_at=now,
        actor=caller.actor,
        role=caller.role,
        source=caller.source,
        question=text,
        answerer=answer.answerer,
        understood=answer.understood,
        intent=answer.intent,
        answer=answer.to_json(),
        queries=list(answer.queries),
        duration_ms=duration_ms,
    )
    return answer


def list_ask_log(
    conn: Conn, caller: Caller, *, actor: str | None = None, limit: int = 50, offset: int = 0
) -> tuple[list[Row], int]:
    """Questions and answers, newest first (optionally one person's), and how many in all;
    administrators only."""
    caller.require("admin")
    return q.list_asks(conn=conn, actor=actor, limit=limit, offset=offset)
